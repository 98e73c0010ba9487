package local

import (
	"os/exec"
	"runtime"
)

// spawner starts processes from one goroutine locked to its OS thread for
// as long as the Deployer runs processes.
//
// On Linux a process started with a parent-death signal (Pdeathsig) gets
// it when the *thread* that forked it ends, not the process
// (https://go.dev/issue/27505), and the Go runtime ends a thread whenever
// a goroutine locked to it returns, which any code in the program may do.
// Started from an ordinary goroutine, a replica could then be killed at any
// time by chance. The spawner's thread is its own and ends only once Close
// has seen every process gone.
type spawner struct {
	reqs chan spawnRequest
}

type spawnRequest struct {
	cmd   *exec.Cmd
	reply chan error
}

// newSpawner starts the spawner's goroutine; close ends it.
func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnRequest)}
	go s.run()
	return s
}

func (s *spawner) run() {
	// Never unlocked: returning while locked ends the thread, which is
	// what should happen once nothing it started runs, rather than have
	// the runtime hand the thread to other goroutines.
	runtime.LockOSThread()
	for req := range s.reqs {
		req.reply <- req.cmd.Start()
	}
}

// start starts cmd from the spawner's thread.
func (s *spawner) start(cmd *exec.Cmd) error {
	reply := make(chan error, 1)
	s.reqs <- spawnRequest{cmd: cmd, reply: reply}
	return <-reply
}

// close ends the spawner, and its thread: it must be called only once no
// process it started is running, and no start is coming.
func (s *spawner) close() { close(s.reqs) }
