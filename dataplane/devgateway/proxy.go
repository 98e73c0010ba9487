package devgateway

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/kgate/kgate/dataplane/inflight"
	"github.com/kgate/kgate/dataplane/tracing"
	"github.com/kgate/kgate/internal/idletimer"
)

// Envoy's local reply bodies, which clients and tests recognize.
const (
	bodyNoHealthyUpstream = "no healthy upstream"
	bodyTimeout           = "upstream request timeout"
	bodyResetPrefix       = "upstream connect error or disconnect/reset before headers. reset reason: "
	// bodyOverloaded is Envoy's overload manager's answer.
	bodyOverloaded = "envoy overloaded"
)

// proxy routes and forwards the requests of every listener.
type proxy struct {
	tables   *tables
	errorLog *log.Logger
	// maxRequests is Options.MaxRequests with its default; requests counts
	// the requests being served.
	maxRequests int64
	requests    atomic.Int64
	// inflight is Options.Inflight, nil when unset.
	inflight *inflight.Counter
	// tracer is Options.TracerProvider's, nil when unset.
	tracer *tracing.Tracer
	// logs is where access logs go and metrics what counts requests,
	// nil when none (see accesslog.go, metrics.go).
	logs    *logSink
	metrics *requestMetrics
}

// serve routes r as the connection manager says and forwards it, or
// answers it locally as Envoy's router would. Beyond the gateway's
// ceiling on requests, it answers 503 without routing. rec, when not
// nil, learns where the request went, for the access log and metrics.
func (p *proxy) serve(cm *connManager, w http.ResponseWriter, r *http.Request, rec *requestRecord) {
	if n := p.requests.Add(1); n > p.maxRequests {
		p.requests.Add(-1)
		rec.setFlag(flagOverloaded)
		closeAfter(w, r)
		localReply(w, http.StatusServiceUnavailable, bodyOverloaded, nil)
		return
	}
	defer p.requests.Add(-1)
	if p.tracer != nil && cm.tracing {
		var end func()
		w, r, end = p.tracer.Serve(w, r)
		defer end()
	}
	cm.early.apply(r.Header)
	cm.setForwardedProto(r)
	rt := cm.routes.table(p.tables, r)
	if rt == nil {
		rec.setFlag(flagNoRoute)
		localReply(w, http.StatusNotFound, "", nil) // no scope, or its routes have not arrived
		return
	}
	vh := rt.virtualHost(r.Host)
	if vh == nil {
		rec.setFlag(flagNoRoute)
		localReply(w, http.StatusNotFound, "", nil)
		return
	}
	rte := vh.route(r)
	if rte == nil {
		rec.setFlag(flagNoRoute)
		localReply(w, http.StatusNotFound, "", nil)
		return
	}
	x := &exchange{cm: cm, levels: []levelOps{
		{rte.request, rte.response}, {vh.request, vh.response}, {rt.request, rt.response},
	}}
	if rte.direct != nil {
		localReply(w, rte.direct.status, rte.direct.body, x.responseOps)
		return
	}
	if rte.redirect != nil {
		// Envoy's redirect is a local reply with no body, the route's
		// response headers applied after Location.
		w.Header().Set("Location", rte.redirect.location(r))
		localReply(w, rte.redirect.status, "", x.responseOps)
		return
	}
	fa := rte.forward
	x.upgrade = upgradeType(r)
	if x.upgrade != "" && !cm.upgradeAllowed(x.upgrade, fa) {
		localReply(w, http.StatusForbidden, "", x.responseOps)
		return
	}
	wc := fa.pick()
	// The weighted cluster's headers come first: Envoy applies the most
	// specific level first, so the less specific win on overwrite.
	x.levels = append([]levelOps{{wc.request, wc.response}}, x.levels...)
	c, hosts := p.tables.cluster(wc.name)
	if c == nil {
		rec.setFlag(flagNoCluster)
		localReply(w, http.StatusServiceUnavailable, "", x.responseOps)
		return
	}
	if rec != nil {
		rec.cluster = wc.name
	}
	h := c.pick(hosts)
	if h == nil {
		rec.setFlag(flagNoHealthyUpstream)
		localReply(w, http.StatusServiceUnavailable, bodyNoHealthyUpstream, x.responseOps)
		return
	}
	x.cluster, x.host, x.timeout, x.http1Client = c, h, fa.timeout, r.ProtoMajor == 1
	x.streamIdle = cm.streamIdle
	if fa.idle != nil {
		x.streamIdle = *fa.idle // the route's replaces the connection manager's
	}
	x.hostRewrite, x.retries, x.rec = fa.hostRewrite, fa.retries, rec
	p.forward(w, r, x)
}

// levelOps are one level's request and response header mutations.
type levelOps struct{ request, response headerOps }

// exchange is one request forwarded to one host.
type exchange struct {
	cm      *connManager
	cluster *cluster
	host    *host
	// hold counts the exchange in flight to host.
	hold hostHold
	// retries is the route's retry policy, nil for none.
	retries *retryPolicy
	// levels are the header mutations from the most specific level (the
	// weighted cluster) to the least (the route configuration).
	levels  []levelOps
	upgrade string
	// hostRewrite replaces the client's :authority upstream unless empty.
	hostRewrite string
	timeout     time.Duration
	timer       *routeTimer
	// streamIdle is the stream's idle timeout (the route's idle_timeout,
	// else the connection manager's stream_idle_timeout); idle enforces it.
	streamIdle time.Duration
	idle       *idletimer.Timer
	// requestEnded is set once the client's request has been read in
	// full: an idle timeout then answers 504 rather than 408.
	requestEnded atomic.Bool
	// http1Client is true when the client speaks HTTP/1.x, which carries
	// trailers only after a chunked body.
	http1Client bool
	// status is what the client was answered, 0 if nothing was.
	status int
	// tracer, when set, passes the client span on in traceparent.
	tracer *tracing.Tracer
	// rec is the request's record, nil when nothing observes requests.
	rec *requestRecord
}

func (p *proxy) forward(w http.ResponseWriter, r *http.Request, x *exchange) {
	up := x.cluster.up
	end := x.cluster.load.start()
	// ReverseProxy returns once the response body has been copied, or an
	// upgraded connection has closed: in flight to the host until then (a
	// retry moves the hold to the host it picks).
	x.hold = p.holdHost(x.host)
	failed := true // unless the exchange ends normally: a panic is a response cut short
	defer func() {
		x.hold.release()
		up.done()
		end(failed)
	}()

	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	x.timer = &routeTimer{d: x.timeout, cancel: cancel}
	defer x.timer.stop()
	// The stream's idle timer runs from its request's headers and starts
	// again with every byte of the request body and of the response.
	x.idle = idletimer.New(x.streamIdle, func() { cancel(errStreamIdleTimeout) })
	defer x.idle.Stop()
	x.idle.Arm()
	r = r.WithContext(ctx)
	x.watchRequestBody(r)
	x.timer.armAtRequestEnd(r, x.upgrade != "")
	if p.tracer != nil && x.cm.tracing {
		spanCtx, span := p.tracer.Client(ctx, r.Method, x.host.addr, attribute.String("envoy.cluster", x.cluster.name))
		r, x.tracer = r.WithContext(spanCtx), p.tracer
		defer func() { tracing.End(span, x.status) }()
	}

	var transport http.RoundTripper = up.transport(r, x.upgrade != "")
	if x.retries != nil && x.upgrade == "" {
		// An upgrade is not retried: its request has no end to buffer.
		transport = &retrier{p: p, x: x, policy: x.retries, next: transport, bufferLimit: x.cm.bufferLimit}
	}
	rp := &httputil.ReverseProxy{
		Rewrite:   x.rewrite,
		Transport: transport,
		// FlushInterval stays 0: ReverseProxy flushes every write of a
		// response of unknown length (gRPC, chunked, server-sent events)
		// anyway, and flushing the others (-1) would flush from a timer
		// before the handler ends, splitting a gRPC trailers-only
		// response (HEADERS with END_STREAM) into headers and an empty
		// end of stream, which gRPC clients reject for want of trailers.
		ModifyResponse: x.modifyResponse,
		ErrorHandler:   x.fail,
		ErrorLog:       p.errorLog,
	}
	rp.ServeHTTP(w, r)
	failed = x.status >= 500
	if x.rec != nil {
		x.rec.host = x.host.addr
	}
}

// watchRequestBody has every read of r's body count as the stream's
// activity, and records the end of the request.
func (x *exchange) watchRequestBody(r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		x.requestEnded.Store(true)
		return
	}
	r.Body = &eofHook{
		ReadCloser: x.idle.Reader(r.Body),
		onEOF:      func() { x.requestEnded.Store(true) },
	}
}

// rewrite points the outbound request at the host. The client's
// :authority (unless the route rewrites it) and path go upstream
// unchanged, as with Envoy; a rewrite adds no X-Forwarded-Host
// (append_x_forwarded_host is not supported).
func (x *exchange) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = x.host.addr
	if x.hostRewrite != "" {
		pr.Out.Host = x.hostRewrite
	}
	x.forwardedHeaders(pr.In, pr.Out.Header)
	for _, l := range x.levels {
		l.request.apply(pr.Out.Header)
	}
	if x.tracer != nil {
		x.tracer.Inject(pr.Out.Context(), pr.Out.Header)
	}
	if x.rec != nil {
		x.rec.upHeader = pr.Out.Header
	}
}

// forwardedHeaders passes the X-Forwarded-* headers on as Envoy's
// connection manager does (ReverseProxy's Rewrite starts without them):
// an edge proxy (use_remote_address) appends the client's address to
// X-Forwarded-For, which passes as it came otherwise; X-Forwarded-Proto is
// what setForwardedProto left before routing.
func (x *exchange) forwardedHeaders(in *http.Request, out http.Header) {
	for _, name := range []string{"X-Forwarded-Host", "X-Forwarded-Proto"} {
		if v, ok := in.Header[name]; ok {
			out[name] = v
		}
	}
	xff := strings.Join(in.Header.Values("X-Forwarded-For"), ", ")
	if x.cm.useRemoteAddress && !x.cm.skipXFFAppend {
		if ip, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
			if xff != "" {
				xff += ", "
			}
			xff += ip
		}
	}
	if xff != "" {
		out.Set("X-Forwarded-For", xff)
	}
}

// setForwardedProto sets X-Forwarded-Proto before routing, as Envoy's
// connection manager does when it decodes a request, so that routes
// matching it (http-protocol Redirected and Disabled) see the result: an
// edge proxy (use_remote_address) trusting no hop in front of it
// (xff_num_trusted_hops 0) overwrites what the client sent with the
// connection's scheme; otherwise a value the client sent stands, and the
// connection's scheme is set when there is none.
func (cm *connManager) setForwardedProto(r *http.Request) {
	present := len(r.Header["X-Forwarded-Proto"]) > 0
	if present && !(cm.useRemoteAddress && cm.xffTrustedHops == 0) {
		return
	}
	r.Header.Set("X-Forwarded-Proto", connectionScheme(r))
}

// connectionScheme is the scheme of the connection r came on.
func connectionScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// requestScheme is r's :scheme once setForwardedProto has run: for
// HTTP/1, Envoy takes it from X-Forwarded-Proto; a value that is no
// scheme, which only a trusted hop can have left, and HTTP/2 requests
// (whose :scheme Go's server does not hand over) take the connection's.
func requestScheme(r *http.Request) string {
	if r.ProtoMajor == 1 {
		switch p := strings.ToLower(r.Header.Get("X-Forwarded-Proto")); p {
		case "http", "https":
			return p
		}
	}
	return connectionScheme(r)
}

// modifyResponse applies the response header mutations.
func (x *exchange) modifyResponse(res *http.Response) error {
	if x.upgrade != "" && res.StatusCode == http.StatusSwitchingProtocols {
		x.timer.stop() // the timeout bounds the upgrade, not the connection
		// The idle timeout is not enforced on an upgraded connection (see
		// the package doc): its body is the connection itself.
		x.idle.Stop()
	} else {
		x.idle.Touch() // the response headers
		res.Body = x.idle.Reader(res.Body)
	}
	x.status = res.StatusCode
	x.responseOps(res.Header)
	if res.StatusCode == http.StatusServiceUnavailable && x.http1Client {
		// An upstream that answers 503 is overloaded (the activator
		// shedding a flood, say): the client's connection goes back too,
		// rather than bringing the flood's next request. Go's server
		// closes the connection after a response that says so.
		res.Header.Set("Connection", "close")
	}
	if x.http1Client && len(res.Trailer) > 0 {
		// HTTP/2 lets a response have both a Content-Length and trailers
		// (Go's h2c servers send both); HTTP/1.1 sends trailers only after
		// a chunked body, so the length must go for the trailers to pass.
		res.Header.Del("Content-Length")
		res.ContentLength = -1
	}
	return nil
}

func (x *exchange) responseOps(h http.Header) {
	for _, l := range x.levels {
		l.response.apply(h)
	}
}

// fail answers a request whose host could not be reached or did not
// answer in time, with Envoy's status and body.
func (x *exchange) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch cause := context.Cause(r.Context()); {
	case errors.Is(cause, errRouteTimeout):
		x.rec.setFlag(flagUpstreamTimeout)
		x.status = http.StatusGatewayTimeout
		localReply(w, x.status, bodyTimeout, x.responseOps)
	case errors.Is(cause, errStreamIdleTimeout):
		// Envoy answers 504 once the request is in, 408 while it is not.
		x.rec.setFlag(flagStreamIdleTimeout)
		x.status = http.StatusRequestTimeout
		if x.requestEnded.Load() {
			x.status = http.StatusGatewayTimeout
		}
		localReply(w, x.status, bodyStreamTimeout, x.responseOps)
	case cause != nil:
		x.rec.setFlag(flagDownstreamGone)
		x.status = 0 // the client went away: nobody reads an answer
	case errors.Is(err, errPerTryTimeout), errors.Is(err, errPerTryIdleTimeout):
		// The last try outlived its per_try_timeout, or its upstream was
		// silent for its per_try_idle_timeout, before a response.
		x.rec.setFlag(flagUpstreamTimeout)
		x.status = http.StatusGatewayTimeout
		localReply(w, x.status, bodyTimeout, x.responseOps)
	case errors.Is(err, errNoHealthyUpstream):
		x.rec.setFlag(flagNoHealthyUpstream)
		x.status = http.StatusServiceUnavailable
		localReply(w, x.status, bodyNoHealthyUpstream, x.responseOps)
	default:
		if isDialError(err) {
			x.rec.setFlag(flagConnectFailure)
		} else {
			x.rec.setFlag(flagUpstreamReset)
		}
		x.status = http.StatusServiceUnavailable
		localReply(w, x.status, bodyResetPrefix+resetReason(err), x.responseOps)
	}
}

// hostHold counts one exchange in flight to a host: for least-request
// balancing and for Options.Inflight.
type hostHold struct {
	h   *host
	end func()
}

func (p *proxy) holdHost(h *host) hostHold {
	h.inFlight.Add(1)
	return hostHold{h: h, end: p.inflight.Begin(h.addr)}
}

func (hh hostHold) release() {
	hh.end()
	hh.h.inFlight.Add(-1)
}

// closeAfter has an HTTP/1 connection closed after the response to r, so
// that an overloaded gateway gets its connection back. An HTTP/2
// connection is left open: it carries other streams.
func closeAfter(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
}

// resetReason names an upstream failure as Envoy's local reply does.
func resetReason(err error) string {
	if isDialError(err) {
		return "connection failure"
	}
	return "connection termination"
}

// localReply answers without an upstream, mutating the response headers
// as the matched route says (mutate is nil when no route matched).
func localReply(w http.ResponseWriter, status int, body string, mutate func(http.Header)) {
	h := w.Header()
	if body != "" {
		h.Set("Content-Type", "text/plain")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if mutate != nil {
		mutate(h)
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// upgradeType returns the protocol an HTTP/1.1 request asks to upgrade
// to, "" if none.
func upgradeType(r *http.Request) string {
	for _, v := range r.Header.Values("Connection") {
		for token := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(token), "upgrade") {
				return r.Header.Get("Upgrade")
			}
		}
	}
	return ""
}
