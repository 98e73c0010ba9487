package devgateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/kgate/kgate/internal/idletimer"
)

// Envoy's retry back-off when retry_back_off is unset: jittered
// exponential from 25 ms, at most 250 ms.
const (
	retryBaseInterval = 25 * time.Millisecond
	retryMaxInterval  = 10 * retryBaseInterval
)

// errPerTryTimeout cancels a try that outlived its per_try_timeout.
var errPerTryTimeout = errors.New("per-try timeout")

// errNoHealthyUpstream is a retry, or a DNS cluster's connection, that
// finds no host: Envoy answers 503 "no healthy upstream" and does not
// retry.
var errNoHealthyUpstream = errors.New(bodyNoHealthyUpstream)

// retryOn is a set of Envoy retry conditions.
type retryOn uint8

const (
	// retryOn5xx: a 5xx response, or none (connect failure, reset,
	// per-try timeout).
	retryOn5xx retryOn = 1 << iota
	// retryOnGatewayError: a 502, 503 or 504 response, or none.
	retryOnGatewayError
	// retryOnReset: no response (connect failure, reset, per-try timeout).
	retryOnReset
	// retryOnConnectFailure: the connection could not be opened.
	retryOnConnectFailure
)

var retryConditions = map[string]retryOn{
	"5xx":             retryOn5xx,
	"gateway-error":   retryOnGatewayError,
	"reset":           retryOnReset,
	"connect-failure": retryOnConnectFailure,
}

// retryPolicy is a compiled RetryPolicy.
type retryPolicy struct {
	on retryOn
	// retries is how many times a failed try is tried again.
	retries int
	// perTry bounds each try, 0 for none (the route timeout only).
	perTry time.Duration
	// perTryIdle ends a try whose upstream sent nothing for that long,
	// before its response or during it; 0 is none.
	perTryIdle time.Duration
}

func compileRetryPolicy(rp *routev3.RetryPolicy) (*retryPolicy, error) {
	if rp == nil {
		return nil, nil
	}
	// Back-off, host predicates, retriable status codes or headers,
	// budgets and hedging would retry differently: refused.
	if err := onlyFields(rp, "retry_on", "num_retries", "per_try_timeout", "per_try_idle_timeout"); err != nil {
		return nil, err
	}
	p := &retryPolicy{retries: 1} // Envoy's num_retries default
	if n := rp.GetNumRetries(); n != nil {
		p.retries = int(n.GetValue())
	}
	if t := rp.GetPerTryTimeout(); t != nil {
		p.perTry = t.AsDuration()
	}
	if t := rp.GetPerTryIdleTimeout(); t != nil {
		p.perTryIdle = t.AsDuration()
	}
	for c := range strings.SplitSeq(rp.GetRetryOn(), ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		on, ok := retryConditions[c]
		if !ok {
			return nil, fmt.Errorf("retry_on %q is not supported by the dev gateway", c)
		}
		p.on |= on
	}
	return p, nil
}

// failure is why a try got no usable answer.
type failure int

const (
	connectFailure failure = iota
	reset
	perTryTimeout
)

// retriesStatus says whether a response with this status is retried.
func (p *retryPolicy) retriesStatus(status int) bool {
	switch {
	case p.on&retryOn5xx != 0 && status >= 500:
		return true
	case p.on&retryOnGatewayError != 0:
		return status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
	}
	return false
}

// retriesFailure says whether a try that got no response is retried.
func (p *retryPolicy) retriesFailure(f failure) bool {
	if p.on&(retryOn5xx|retryOnGatewayError|retryOnReset) != 0 {
		return true
	}
	return f == connectFailure && p.on&retryOnConnectFailure != 0
}

// backOff is Envoy's jittered exponential back-off before retry n (1 for
// the first): random below (2^n - 1) × 25 ms, at most 250 ms.
func backOff(n int) time.Duration {
	ceiling := time.Duration(1<<min(n, 16)-1) * retryBaseInterval
	return min(rand.N(ceiling), retryMaxInterval)
}

// retrier is an exchange's transport when its route retries: it sends the
// request up to 1 + retries times, to a host the cluster picks anew each
// time, and hands ReverseProxy the first answer that is not retried (or
// the last one). As with Envoy, the request body is buffered for the
// retries up to the listener's buffer limit; a larger body is sent once,
// unretried. The route timeout bounds every try together.
type retrier struct {
	p      *proxy
	x      *exchange
	policy *retryPolicy
	next   http.RoundTripper
	// bufferLimit is how much of a request body is kept for retries.
	bufferLimit int64
}

func (rt *retrier) RoundTrip(req *http.Request) (*http.Response, error) {
	body, retries, err := rt.buffer(req)
	if err != nil {
		return nil, err
	}
	for try := 0; ; try++ {
		last := try >= retries
		out := req
		if body != nil {
			out = req.Clone(req.Context())
			out.Body = io.NopCloser(bytes.NewReader(body))
			out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			out.ContentLength = int64(len(body))
		}
		out.URL.Host = rt.x.host.addr
		res, f, err := rt.try(out, body != nil)
		if err == nil && (last || !rt.policy.retriesStatus(res.StatusCode)) {
			return res, nil
		}
		if err != nil && (last || req.Context().Err() != nil || errors.Is(err, errNoHealthyUpstream) || !rt.policy.retriesFailure(f)) {
			return nil, err
		}
		if res != nil {
			// Read a little of the body so that the connection can serve
			// the retry, then let it go.
			_, _ = io.CopyN(io.Discard, res.Body, 64<<10)
			res.Body.Close()
		}
		// The failed try counts as one request to the cluster, as Envoy's
		// upstream stats count each try.
		rt.x.cluster.load.start()(true)
		if err := sleep(req.Context(), backOff(try+1)); err != nil {
			return nil, err
		}
		if err := rt.repick(); err != nil {
			return nil, err
		}
	}
}

// buffer reads the request body for the retries: the body and the number
// of retries left to do; a body beyond the limit is not retried. A policy
// without retry conditions retries nothing and buffers nothing, as Envoy
// keeps no retry state without retry_on: its body streams (a policy that
// only sets per-try timeouts).
func (rt *retrier) buffer(req *http.Request) ([]byte, int, error) {
	if rt.policy.on == 0 {
		return nil, 0, nil
	}
	if req.Body == nil || req.Body == http.NoBody {
		return nil, rt.policy.retries, nil
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, rt.bufferLimit+1))
	if err != nil {
		return nil, 0, err
	}
	if int64(len(b)) > rt.bufferLimit {
		req.Body = readCloser{io.MultiReader(bytes.NewReader(b), req.Body), req.Body}
		return nil, 0, nil
	}
	req.Body.Close()
	return b, rt.policy.retries, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// try sends one try, bounded by the per-try timeout from the end of the
// request (now when the body is buffered or there is none) until its
// response ends, and by the per-try idle timeout from the end of the
// request until the upstream has sent nothing for that long, before its
// response or during it.
func (rt *retrier) try(req *http.Request, buffered bool) (*http.Response, failure, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	idle := idletimer.New(rt.policy.perTryIdle, func() { cancel(errPerTryIdleTimeout) })
	var mu sync.Mutex
	var timer *time.Timer
	stopped := false
	armed := func() {
		idle.Arm()
		mu.Lock()
		defer mu.Unlock()
		if rt.policy.perTry > 0 && timer == nil && !stopped {
			timer = time.AfterFunc(rt.policy.perTry, func() { cancel(errPerTryTimeout) })
		}
	}
	stop := func() {
		idle.Stop()
		mu.Lock()
		stopped = true
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		cancel(nil)
	}
	if buffered || req.Body == nil || req.Body == http.NoBody || req.ContentLength == 0 {
		armed()
	} else {
		req.Body = &eofHook{ReadCloser: req.Body, onEOF: armed}
	}
	res, err := rt.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		stop()
		switch cause := context.Cause(ctx); {
		case errors.Is(cause, errPerTryTimeout) && req.Context().Err() == nil:
			return nil, perTryTimeout, fmt.Errorf("%w: %w", errPerTryTimeout, err)
		case errors.Is(cause, errPerTryIdleTimeout) && req.Context().Err() == nil:
			return nil, perTryTimeout, fmt.Errorf("%w: %w", errPerTryIdleTimeout, err)
		case isDialError(err):
			return nil, connectFailure, err
		}
		return nil, reset, err
	}
	idle.Touch() // the response headers
	res.Body = &endHook{ReadCloser: idle.Reader(res.Body), end: stop}
	return res, 0, nil
}

// repick has the cluster choose the host of the next try.
func (rt *retrier) repick() error {
	c, hosts := rt.p.tables.cluster(rt.x.cluster.name)
	if c == nil {
		c = rt.x.cluster
	}
	h := c.pick(hosts)
	if h == nil {
		return errNoHealthyUpstream
	}
	rt.x.hold.release()
	rt.x.host, rt.x.hold = h, rt.p.holdHost(h)
	return nil
}

// endHook calls end once its reader is closed.
type endHook struct {
	io.ReadCloser
	end func()
}

func (e *endHook) Close() error {
	err := e.ReadCloser.Close()
	e.end()
	return err
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
