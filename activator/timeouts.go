package activator

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// timeouts are one request's bounds, from the revision's three timeouts
// counted from the request's arrival, as Knative's activator and
// queue-proxy count them (docs/timeouts.md):
//
//   - timeoutSeconds bounds the whole request: 504 when no response has
//     started by then, the response cut when one is under way;
//   - responseStartTimeoutSeconds: 504 when no response has started by
//     then, waiting for a pod included;
//   - idleTimeoutSeconds: 504 when nothing has come back since arrival
//     for that long, the response cut when it then stays silent as long.
//
// An upgraded connection (WebSocket) is bounded only until the upgrade is
// accepted, as the gateways bound it.
type timeouts struct {
	arrived time.Time
	// timeout, start and idle are the revision's; start and idle are 0
	// when it has none.
	timeout, start, idle time.Duration
}

func timeoutsOf(arrived time.Time, cfg *RevisionConfig) timeouts {
	return timeouts{arrived: arrived, timeout: cfg.Timeout, start: cfg.ResponseStartTimeout, idle: cfg.IdleTimeout}
}

// startBy is the earliest of the three bounds on the response's start:
// when, which one (in words, for the answer) and how long it is.
func (t timeouts) startBy() (time.Time, string, time.Duration) {
	d, what := t.timeout, "timeout"
	if t.start > 0 && t.start < d {
		d, what = t.start, "response start timeout"
	}
	if t.idle > 0 && t.idle < d {
		d, what = t.idle, "idle timeout"
	}
	return t.arrived.Add(d), what, d
}

// end is when the whole request must be over.
func (t timeouts) end() time.Time { return t.arrived.Add(t.timeout) }

// idleTimer calls fire once nothing moved for d after arm; each touch
// starts the count again. A touch is an atomic store, cheap enough for
// every read of a body: the timer wakes only when d may have passed and
// sleeps again for what is left.
type idleTimer struct {
	d    time.Duration
	fire func()
	// base is when the timer was made; last is the last activity as an
	// offset from base (monotonic).
	base time.Time
	last atomic.Int64

	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

// newIdleTimer returns an armed timer; d of 0 or less is nil, which never
// fires.
func newIdleTimer(d time.Duration, fire func()) *idleTimer {
	if d <= 0 {
		return nil
	}
	it := &idleTimer{d: d, fire: fire, base: time.Now()}
	it.mu.Lock()
	defer it.mu.Unlock()
	it.t = time.AfterFunc(d, it.check)
	return it
}

// touch records activity now.
func (it *idleTimer) touch() {
	if it != nil {
		it.last.Store(int64(time.Since(it.base)))
	}
}

func (it *idleTimer) check() {
	it.mu.Lock()
	if it.stopped {
		it.mu.Unlock()
		return
	}
	if idle := time.Since(it.base) - time.Duration(it.last.Load()); idle < it.d {
		it.t.Reset(it.d - idle)
		it.mu.Unlock()
		return
	}
	it.stopped = true
	it.mu.Unlock()
	it.fire()
}

// stop disarms the timer for good.
func (it *idleTimer) stop() {
	if it == nil {
		return
	}
	it.mu.Lock()
	defer it.mu.Unlock()
	it.stopped = true
	it.t.Stop()
}

// activity calls touch after every read that returned bytes: what the pod
// sends is what the client gets next.
type activity struct {
	io.ReadCloser
	touch func()
}

func (a *activity) Read(p []byte) (int, error) {
	n, err := a.ReadCloser.Read(p)
	if n > 0 {
		a.touch()
	}
	return n, err
}
