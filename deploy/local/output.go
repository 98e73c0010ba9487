package local

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
)

// maxLine is the longest line logged as one record; longer lines are
// logged in pieces of this size.
const maxLine = 16 << 10

// logLines logs each line r yields as a record of its own, at info level:
// a process's output, which need not be errors because it went to stderr.
// It returns at the end of r.
func logLines(r io.Reader, log *slog.Logger) {
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		if line = bytes.TrimRight(line, "\r\n"); len(line) > 0 {
			log.Info(string(line))
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}
