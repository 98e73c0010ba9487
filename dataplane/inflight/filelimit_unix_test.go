//go:build unix

package inflight

import (
	"syscall"
	"testing"
)

// FileLimit reads the soft limit, which a process may lower (as `ulimit
// -n` does for a shell's children).
func TestFileLimitReadsTheSoftLimit(t *testing.T) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	lowered := rl
	lowered.Cur = rl.Cur - 1
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lowered); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			t.Errorf("restoring RLIMIT_NOFILE: %v", err)
		}
	})
	if got, err := FileLimit(); err != nil || uint64(got) != uint64(lowered.Cur) {
		t.Errorf("FileLimit() = %d, %v; want the soft limit %d", got, err, lowered.Cur)
	}
}
