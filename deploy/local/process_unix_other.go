//go:build unix && !linux

package local

import "syscall"

// groupAttr puts the process in a process group of its own, so that
// signals reach whatever it starts too (a shell's children, a dev
// server's workers) and nothing outlives a stop. Outside Linux there is
// no parent-death signal here: a replica outlives a kgate that is killed
// without a chance to stop it, and Reap does not find it either.
func groupAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
