//go:build !linux

package knconformance

import "syscall"

// sysProcAttr puts a backend in its own process group.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
