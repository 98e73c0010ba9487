//go:build !unix

package local

import (
	"os"
	"syscall"
)

// groupAttr is nil where there are no process groups: the process alone is
// signalled.
func groupAttr() *syscall.SysProcAttr { return nil }

// signalGroup signals the process alone; where SIGTERM cannot be sent the
// caller's grace period runs out and SIGKILL follows.
func signalGroup(p *os.Process, sig syscall.Signal) error {
	if sig == syscall.SIGKILL {
		return p.Kill()
	}
	return p.Signal(sig)
}

// groupGone is true: without process groups there is nothing to wait for
// once the process has exited.
func groupGone(*os.Process) bool { return true }
