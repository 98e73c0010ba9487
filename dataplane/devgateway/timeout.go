package devgateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// errRouteTimeout cancels an upstream exchange that outlived its route's
// timeout.
var errRouteTimeout = errors.New("route timeout")

// routeTimer is a route timeout as Envoy arms it: from the end of the
// request (its body read in full; a request without a body at once)
// until the response ends; for an upgrade, from the request until the
// upgrade is accepted. When it fires, the exchange is cancelled: the
// client gets 504 if no response started, a reset otherwise.
type routeTimer struct {
	d      time.Duration
	cancel context.CancelCauseFunc

	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

// armAtRequestEnd arms the timer now, or once r's body has been read.
func (rt *routeTimer) armAtRequestEnd(r *http.Request, upgrade bool) {
	if upgrade || r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		rt.arm()
		return
	}
	r.Body = &eofHook{ReadCloser: r.Body, onEOF: rt.arm}
}

func (rt *routeTimer) arm() {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.d <= 0 || rt.stopped || rt.t != nil {
		return
	}
	rt.t = time.AfterFunc(rt.d, func() { rt.cancel(errRouteTimeout) })
}

func (rt *routeTimer) stop() {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.stopped = true
	if rt.t != nil {
		rt.t.Stop()
	}
}

// eofHook calls onEOF when its reader reaches the end.
type eofHook struct {
	io.ReadCloser
	once  sync.Once
	onEOF func()
}

func (e *eofHook) Read(p []byte) (int, error) {
	n, err := e.ReadCloser.Read(p)
	if err == io.EOF {
		e.once.Do(e.onEOF)
	}
	return n, err
}

// Envoy's idle timeouts: the connection manager's stream_idle_timeout,
// which a route's idle_timeout replaces, and a retry policy's
// per_try_idle_timeout.
var (
	// errStreamIdleTimeout cancels an exchange on which nothing moved, in
	// either direction, for the stream's idle timeout.
	errStreamIdleTimeout = errors.New("stream idle timeout")
	// errPerTryIdleTimeout cancels a try whose upstream sent nothing for
	// the per-try idle timeout.
	errPerTryIdleTimeout = errors.New("per-try idle timeout")
)

// defaultStreamIdleTimeout is Envoy's stream_idle_timeout when a
// connection manager sets none.
const defaultStreamIdleTimeout = 5 * time.Minute

// bodyStreamTimeout is Envoy's local reply when a stream's idle timeout
// fires before the response started.
const bodyStreamTimeout = "stream timeout"

// idleTimer fires once nothing moved for d: from arm, every touch starts
// the count again. Touches are an atomic store, cheap enough for every
// read of a body; the timer itself wakes only when d may have passed and
// sleeps again for what is left, as Envoy's and Knative's idle timers do.
type idleTimer struct {
	d    time.Duration
	fire func()
	// base is when the timer was made; last is the last activity, as an
	// offset from base (monotonic).
	base time.Time
	last atomic.Int64

	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

// newIdleTimer returns a timer calling fire once nothing moved for d
// after arm; d of 0 or less never fires.
func newIdleTimer(d time.Duration, fire func()) *idleTimer {
	return &idleTimer{d: d, fire: fire, base: time.Now()}
}

// arm starts counting, from now; a second arm does nothing.
func (it *idleTimer) arm() {
	if it == nil || it.d <= 0 {
		return
	}
	it.touch()
	it.mu.Lock()
	defer it.mu.Unlock()
	if it.stopped || it.t != nil {
		return
	}
	it.t = time.AfterFunc(it.d, it.check)
}

// touch records activity now.
func (it *idleTimer) touch() {
	if it != nil && it.d > 0 {
		it.last.Store(int64(time.Since(it.base)))
	}
}

func (it *idleTimer) check() {
	it.mu.Lock()
	if it.stopped {
		it.mu.Unlock()
		return
	}
	idle := time.Since(it.base) - time.Duration(it.last.Load())
	if idle < it.d {
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
	if it.t != nil {
		it.t.Stop()
	}
}

// activity calls touch after every read that returned bytes.
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
