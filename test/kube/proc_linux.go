package kube

import "syscall"

// sysProcAttr puts each process in its own group, so stop reaches all of it,
// and kills it if the test binary dies without running its cleanups (a test
// timeout panics without them).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
