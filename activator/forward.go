package activator

import (
	"context"
	"errors"
	"net/http"
	"net/http/httputil"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/kgate/kgate/dataplane/tracing"
	"github.com/kgate/kgate/internal/idletimer"
)

// forward is one request proxied to one pod.
type forward struct {
	a        *Activator
	revision string
	pod      string
	tm       timeouts
	// startWhat and startAfter name the bound on the response's start,
	// for the answer.
	startWhat  string
	startAfter time.Duration
	// http1Client is true when the client speaks HTTP/1.x, which can carry
	// trailers only in a chunked body.
	http1Client bool
	// cancel ends the exchange with a cause. startTimer cancels it when
	// the pod has not started to respond in time; it stops at the
	// response headers, from which endTimer (the revision's timeout) and
	// idle (its idle timeout) bound the response.
	cancel     context.CancelCauseFunc
	startTimer *time.Timer
	endTimer   *time.Timer
	idle       *idletimer.Timer
	// status is what the client was answered, 0 if nothing was.
	status int
	// tracer, when set, passes the client span on in traceparent.
	tracer *tracing.Tracer
}

// proxy sends r to the pod at addr and returns the status the client was
// answered with.
func (a *Activator) proxy(w http.ResponseWriter, r *http.Request, rev *revision, cfg *RevisionConfig, addr string, tm timeouts) int {
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	f := &forward{a: a, revision: rev.key, pod: addr, tm: tm, http1Client: r.ProtoMajor == 1, cancel: cancel}
	startBy, what, d := tm.startBy()
	f.startWhat, f.startAfter = what, d
	f.startTimer = time.AfterFunc(time.Until(startBy), func() { cancel(errResponseTimeout) })
	defer f.stopTimers()
	if a.tracer != nil {
		var span trace.Span
		ctx, span = a.tracer.Client(ctx, r.Method, addr, attribute.String("kgate.revision", rev.key))
		f.tracer = a.tracer
		defer func() { tracing.End(span, f.status) }()
	}

	p := &httputil.ReverseProxy{
		Rewrite:        f.rewrite,
		Transport:      a.transports.forRequest(cfg.Protocol, r),
		BufferPool:     &a.buffers,
		ModifyResponse: f.responseStarted,
		ErrorHandler:   f.fail,
		ErrorLog:       a.proxyLog,
	}
	// ServeHTTP returns once the response body has been copied, or an
	// upgraded connection has closed: the request is in flight to the pod
	// until then.
	done := a.inflight.Begin(addr)
	defer done()
	p.ServeHTTP(w, r.WithContext(ctx))
	return f.status
}

// rewrite points the outbound request at the pod. The client's Host, path
// and query reach the application unchanged, the forwarding headers set by
// the gateway are kept and extended, and the routing headers, meant for
// the activator, are dropped as Knative's activator does.
func (f *forward) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = f.pod
	pr.Out.URL.RawQuery = pr.In.URL.RawQuery
	pr.Out.Header.Del(NamespaceHeader)
	pr.Out.Header.Del(RevisionHeader)
	if f.tracer != nil {
		f.tracer.Inject(pr.Out.Context(), pr.Out.Header)
	}

	pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
	pr.SetXForwarded()
	// The gateway knows the client's host and scheme (TLS ends there);
	// SetXForwarded only knows the gateway's.
	for _, h := range []string{"X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"} {
		if v, ok := pr.In.Header[h]; ok {
			pr.Out.Header[h] = v
		}
	}
}

// responseStarted stops the response-start deadline once the pod answered,
// and bounds the response by the revision's timeout and idle timeout,
// unless it is an accepted upgrade: the connection is then the client's.
func (f *forward) responseStarted(res *http.Response) error {
	f.startTimer.Stop()
	if res.StatusCode != http.StatusSwitchingProtocols {
		f.endTimer = time.AfterFunc(time.Until(f.tm.end()), func() { f.cancel(errRequestTimeout) })
		f.idle = idletimer.Start(f.tm.idle, func() { f.cancel(errIdleTimeout) })
		res.Body = f.idle.Reader(res.Body) // what the pod sends is what the client gets next
	}
	f.status = res.StatusCode
	if f.http1Client && len(res.Trailer) > 0 {
		// HTTP/2 lets a response have both a Content-Length and trailers
		// (Go's h2c servers send both); HTTP/1.1 sends trailers only after
		// a chunked body, so the length must go for the trailers to pass.
		res.Header.Del("Content-Length")
		res.ContentLength = -1
	}
	return nil
}

// stopTimers stops every timer of the exchange.
func (f *forward) stopTimers() {
	f.startTimer.Stop()
	if f.endTimer != nil {
		f.endTimer.Stop()
	}
	f.idle.Stop()
}

// fail answers a request whose pod could not be reached or did not answer.
// Once the response has started there is nothing to answer: a timeout
// then cuts it (ReverseProxy aborts the response when its body's read
// fails), as the gateways cut it.
func (f *forward) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch cause := context.Cause(r.Context()); {
	case errors.Is(cause, errResponseTimeout):
		f.status = reject(w, http.StatusGatewayTimeout,
			"revision %s: pod %s did not start responding within the revision's %s (%s)", f.revision, f.pod, f.startWhat, f.startAfter)
	case cause != nil:
		// The client went away: nobody reads an answer.
		f.status = 0
	default:
		f.a.log.Warn("proxying to pod failed", "revision", f.revision, "pod", f.pod, "error", err)
		f.status = reject(w, http.StatusBadGateway, "revision %s: proxying to pod %s: %v", f.revision, f.pod, err)
	}
}
