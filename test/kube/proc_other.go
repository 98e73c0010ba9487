//go:build !linux

package kube

import "syscall"

// sysProcAttr puts each process in its own group, so stop reaches all of it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
