package local

import "syscall"

// groupAttr puts the process in a process group of its own, so that
// signals reach whatever it starts too (a shell's children, a dev
// server's workers) and nothing outlives a stop; and has the kernel
// SIGKILL it should kgate die, even of SIGKILL, so that no replica
// outlives kgate. The death signal reaches the replica, not the rest of
// its group: what the replica started is left to Reap at the next start.
// It is tied to the thread that forks (see spawner).
func groupAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
