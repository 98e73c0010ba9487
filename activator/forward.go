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
)

// forward is one request proxied to one pod.
type forward struct {
	a        *Activator
	revision string
	pod      string
	timeout  time.Duration
	// http1Client is true when the client speaks HTTP/1.x, which can carry
	// trailers only in a chunked body.
	http1Client bool
	// startTimer cancels the request when the pod has not started to
	// respond by the revision's deadline; it stops at the response headers,
	// after which a response may stream for as long as it lasts.
	startTimer *time.Timer
	// status is what the client was answered, 0 if nothing was.
	status int
	// tracer, when set, passes the client span on in traceparent.
	tracer *tracing.Tracer
}

// proxy sends r to the pod at addr and returns the status the client was
// answered with.
func (a *Activator) proxy(w http.ResponseWriter, r *http.Request, rev *revision, cfg *RevisionConfig, addr string, deadline time.Time) int {
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	f := &forward{a: a, revision: rev.key, pod: addr, timeout: cfg.Timeout, http1Client: r.ProtoMajor == 1}
	f.startTimer = time.AfterFunc(time.Until(deadline), func() { cancel(errResponseTimeout) })
	defer f.startTimer.Stop()
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

// responseStarted stops the response-start deadline once the pod answered.
func (f *forward) responseStarted(res *http.Response) error {
	f.startTimer.Stop()
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

// fail answers a request whose pod could not be reached or did not answer.
func (f *forward) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch cause := context.Cause(r.Context()); {
	case errors.Is(cause, errResponseTimeout):
		f.status = reject(w, http.StatusGatewayTimeout,
			"revision %s: pod %s did not start responding within the revision's timeout (%s)", f.revision, f.pod, f.timeout)
	case cause != nil:
		// The client went away: nobody reads an answer.
		f.status = 0
	default:
		f.a.log.Warn("proxying to pod failed", "revision", f.revision, "pod", f.pod, "error", err)
		f.status = reject(w, http.StatusBadGateway, "revision %s: proxying to pod %s: %v", f.revision, f.pod, err)
	}
}
