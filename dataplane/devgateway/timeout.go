package devgateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
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
