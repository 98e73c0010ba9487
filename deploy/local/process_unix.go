//go:build unix

package local

import (
	"errors"
	"os"
	"syscall"
)

// signalGroup signals the process group p leads.
func signalGroup(p *os.Process, sig syscall.Signal) error {
	return syscall.Kill(-p.Pid, sig)
}

// groupGone says whether no process is left in the group p led.
func groupGone(p *os.Process) bool {
	return errors.Is(syscall.Kill(-p.Pid, 0), syscall.ESRCH)
}
