package knconformance

import "syscall"

// sysProcAttr puts a backend in its own process group, killed with the
// test binary if that dies first (a -timeout panic runs no cleanup).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
