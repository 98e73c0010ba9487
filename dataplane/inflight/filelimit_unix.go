//go:build unix

package inflight

import (
	"fmt"
	"math"
	"syscall"
)

// FileLimit returns the process's soft limit on open files
// (RLIMIT_NOFILE), which Go raises to the hard limit at start on Unix
// systems. An unlimited one reads as math.MaxInt.
func FileLimit() (int, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("reading RLIMIT_NOFILE: %w", err)
	}
	if uint64(rl.Cur) > math.MaxInt {
		return math.MaxInt, nil
	}
	return int(rl.Cur), nil
}
