//go:build unix

package scale

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time this process has used so far, user and system:
// the server's and the client's together, since both run here. On a
// shared machine it says what a sync costs better than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
