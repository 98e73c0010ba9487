package local

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kgate/kgate/translator/model"
)

// replica is one pod of a revision: a process, restarted whenever it
// exits, until the replica is stopped.
type replica struct {
	d      *Deployer
	rev    string
	n      int // its number in the revision, from 1
	launch *launch
	log    *slog.Logger
	stop   chan struct{} // closed by markStopping

	// Guarded by d.mu.
	endpoint model.Endpoint
	ready    bool
	stopping bool
}

// markStopping takes the replica out of service: not ready, and its
// process to be stopped. d.mu is held.
func (r *replica) markStopping() {
	r.ready = false
	r.stopping = true
	close(r.stop)
}

// run runs the replica's process, and restarts it with a backoff whenever
// it exits, until the replica is stopped.
func (r *replica) run() {
	backoff := r.restartBackoff()
	for {
		started := time.Now()
		err := r.runProcess()
		if err == nil {
			return
		}
		delay := r.nextBackoff(&backoff, time.Since(started))
		r.log.Warn("replica restarting", "error", err, "in", delay)
		if !r.wait(delay) {
			return
		}
	}
}

// restartBackoff is the waits before the restarts of a run of exits in a
// row: RestartBackoff, doubling with each exit up to MaxRestartBackoff,
// without jitter. It is apimachinery's wait.Backoff, as the xDS client's
// reconnections are: one well-tested backoff in kgate rather than one
// written per package.
func (r *replica) restartBackoff() wait.Backoff {
	o := r.d.opts
	return wait.Backoff{
		Duration: o.RestartBackoff,
		Factor:   2,
		Cap:      o.MaxRestartBackoff,
		Steps:    math.MaxInt, // no end but the cap
	}
}

// nextBackoff is the wait before restarting a process that exited after
// running for ran: the next step of b, which starts over after a process
// that ran for as long as the maximum wait.
func (r *replica) nextBackoff(b *wait.Backoff, ran time.Duration) time.Duration {
	if ran >= r.d.opts.MaxRestartBackoff {
		*b = r.restartBackoff()
	}
	return b.Step()
}

// wait waits d unless the replica is stopped first; it reports whether the
// replica is still to run.
func (r *replica) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.stop:
		return false
	}
}

// runProcess runs one process of the replica, ready while its probe says
// so, until the replica is stopped (nil) or the process exits or fails to
// start (the error says how).
func (r *replica) runProcess() error {
	port, err := r.d.ports.take()
	if err != nil {
		return err
	}
	defer r.d.ports.release(port)
	argv, env := r.launch.command(port)
	p, err := startProcess(r.d.spawner, argv, env, r.log)
	if err != nil {
		return err
	}
	// Listed while it may run: untracked once finish or stop has seen
	// its group gone.
	r.d.track(p, Record{Revision: r.rev, PID: p.pid(), Started: p.started, Mark: p.mark})
	defer r.d.untrack(p)
	r.d.setEndpoint(r, port)
	log := r.log.With("pid", p.pid(), "port", port)
	log.Info("replica started", "command", argv)

	ctx, cancel := context.WithCancel(context.Background())
	probed := make(chan struct{})
	go func() {
		defer close(probed)
		r.launch.probe.run(ctx, port, func(ready bool, err error) {
			switch {
			case !r.d.setReady(r, ready):
			case ready:
				log.Info("replica ready")
			default:
				log.Warn("replica not ready", "error", err)
			}
		})
	}()
	stopProbing := func() {
		cancel()
		<-probed
	}

	select {
	case <-p.done:
		stopProbing()
		r.d.setReady(r, false)
		p.finish()
		return fmt.Errorf("pid %d exited: %s", p.pid(), p.cmd.ProcessState)
	case <-r.stop:
		stopProbing()
		r.drain(p, "127.0.0.1:"+strconv.Itoa(port), log)
		return nil
	}
}

// drain stops a process whose replica was scaled away or forgotten, at
// addr: it is not ready and that was notified already. It keeps running
// for the stop delay, for the gateways to hear of it, then while requests
// are in flight to it, up to the revision's timeout; then it gets SIGTERM
// and the grace period to exit. Close cuts the waits short, the process
// exiting too.
func (r *replica) drain(p *process, addr string, log *slog.Logger) {
	if r.pause(p, r.d.opts.StopDelay) && r.d.opts.InFlight != nil {
		r.awaitIdle(p, addr, log)
	}
	killed := p.stop(r.launch.grace)
	if killed {
		log.Warn("replica killed: it did not stop within the grace period", "grace", r.launch.grace)
	}
	log.Info("replica stopped", "exit", p.cmd.ProcessState.String())
}

// pause waits d, unless the process exits or the deployer closes first;
// it reports whether it waited d.
func (r *replica) pause(p *process, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.done:
	case <-r.d.closing:
	}
	return false
}

// awaitIdle waits until no request is in flight to addr, asking InFlight
// every drainPoll, for up to the revision's timeout: the longest that a
// request sent before the gateways heard of the removal can last. It
// stops waiting if the process exits or the deployer closes.
func (r *replica) awaitIdle(p *process, addr string, log *slog.Logger) {
	deadline := time.Now().Add(r.launch.timeout)
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for {
		n := r.d.opts.InFlight(addr)
		if n <= 0 {
			return
		}
		if !time.Now().Before(deadline) {
			log.Warn("replica stopping with requests in flight: they outlasted the revision's timeout",
				"in_flight", n, "timeout", r.launch.timeout)
			return
		}
		select {
		case <-tick.C:
		case <-p.done:
			return
		case <-r.d.closing:
			return
		}
	}
}
