package local

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// leftoverGrace bounds the wait, once a process has exited, for the rest
// of its group to die of SIGKILL and for its output to be logged: only a
// process that left the group can hold the pipes longer, and it is not
// waited for.
const leftoverGrace = time.Second

// process is one run of a replica's command, in a process group of its
// own, its output logged line by line.
type process struct {
	cmd     *exec.Cmd
	done    chan struct{} // closed once the process has exited and been reaped
	mark    string        // its Record's Mark, in its environment
	started ProcessStart  // zero if it could not be read

	outputs []*os.File     // the read ends of stdout and stderr
	logging sync.WaitGroup // the goroutines that log them
}

// startProcess starts argv with env, and a mark of its own, from s,
// logging its output to log.
func startProcess(s *spawner, argv, env []string, log *slog.Logger) (*process, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	mark := newMark()
	cmd.Env = append(env[:len(env):len(env)], markVar+"="+mark)
	cmd.SysProcAttr = groupAttr()
	p := &process{cmd: cmd, done: make(chan struct{}), mark: mark}

	// Pipes of our own rather than io.Writers: with those, Wait would also
	// wait for every process holding the pipes, a child that outlived its
	// parent too, before telling us of the exit.
	streams := []string{"stdout", "stderr"}
	writers := make([]*os.File, 0, len(streams))
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			f.Close()
		}
	}
	for range streams {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll(p.outputs)
			closeAll(writers)
			return nil, fmt.Errorf("starting %s: %w", argv[0], err)
		}
		p.outputs = append(p.outputs, r)
		writers = append(writers, w)
	}
	cmd.Stdout, cmd.Stderr = writers[0], writers[1]
	err := s.start(cmd)
	closeAll(writers) // the child has its own copies
	if err != nil {
		closeAll(p.outputs)
		return nil, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	log = log.With("pid", cmd.Process.Pid)
	// Read before Wait can reap it: until then the pid is the process's,
	// if only as a zombie.
	if p.started, err = processStart(cmd.Process.Pid); err != nil {
		log.Warn("a restart of kgate will not recognize this process to reap it", "error", err)
	}
	for i, r := range p.outputs {
		p.logging.Go(func() { logLines(r, log.With("stream", streams[i])) })
	}
	go func() {
		_ = cmd.Wait() // cmd.ProcessState says how it ended
		close(p.done)
	}()
	return p, nil
}

// pid is the process's id, which is its group's id too.
func (p *process) pid() int { return p.cmd.Process.Pid }

// signal signals the process's group. A group that is gone already is no
// error.
func (p *process) signal(sig syscall.Signal) {
	_ = signalGroup(p.cmd.Process, sig)
}

// stop sends SIGTERM and waits up to grace for the process to exit, then
// kills its group; it reports whether it had to. It returns once the
// process has exited, as finish does.
func (p *process) stop(grace time.Duration) (killed bool) {
	defer p.finish()
	select {
	case <-p.done:
		return false // it exited by itself
	default:
	}
	p.signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.signal(syscall.SIGKILL)
		<-p.done
		return true
	}
	return false
}

// finish cleans up after the process exited: it kills what is left of its
// group (children that outlived it), waits for them to be gone and for
// the output to be logged.
func (p *process) finish() {
	<-p.done
	// The leader is reaped, but while its group has members its pid
	// stays taken (it is their group id), so this reaches only them.
	p.signal(syscall.SIGKILL)
	deadline := time.Now().Add(leftoverGrace)
	for !groupGone(p.cmd.Process) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	logged := make(chan struct{})
	go func() {
		p.logging.Wait()
		close(logged)
	}()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-logged:
	case <-t.C:
		// Something outside the group holds the pipes; closing our ends
		// stops the reading.
	}
	for _, f := range p.outputs {
		f.Close()
	}
	<-logged
}
