package devgateway

import (
	"errors"
	"net/http"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// Envoy's defaults where the connection manager sets no limit.
const (
	defaultMaxRequestHeadersKiB = 60
	defaultMaxHeadersCount      = 100
	defaultIdleTimeout          = time.Hour
)

// serverLimits are the connection manager's limits that the gateway hands
// to Go's http.Server, which reads them when it serves a connection: a
// listener whose limits change gets a new server (see applyListeners).
// Comparable, so that a change is seen with ==.
type serverLimits struct {
	// readHeaderTimeout is request_headers_timeout: the time from the
	// first byte of an HTTP/1 request to the end of its headers (Go's
	// server drops the connection; Envoy answers 408 first). 0 is none.
	readHeaderTimeout time.Duration
	// idleTimeout is common_http_protocol_options.idle_timeout: a
	// connection without requests is closed after it. 0 is none.
	idleTimeout time.Duration
	// maxHeaderBytes bounds what Go's server reads of a request's line and
	// headers (it adds 4 KiB of its own) before answering 431 itself; the
	// exact limit is requestLimits'.
	maxHeaderBytes int
	// HTTP/2 settings; 0 keeps Go's default (Envoy's defaults, 2^31-1
	// streams and 256 MiB windows, are no limits for a dev gateway).
	maxConcurrentStreams  int
	streamWindowBytes     int
	connectionWindowBytes int
}

// server returns an http.Server with the limits l, for TLS connections
// (HTTP/1.1, and HTTP/2 when ALPN chooses it) when secure, for plaintext
// ones (HTTP/1.1 and h2c with prior knowledge) otherwise.
func (l serverLimits) server(h http.Handler, secure bool) *http.Server {
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	if secure {
		protocols.SetHTTP2(true)
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	return &http.Server{
		Handler:           h,
		Protocols:         protocols,
		ReadHeaderTimeout: l.readHeaderTimeout,
		IdleTimeout:       l.idleTimeout,
		MaxHeaderBytes:    l.maxHeaderBytes,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams:          l.maxConcurrentStreams,
			MaxReceiveBufferPerStream:     l.streamWindowBytes,
			MaxReceiveBufferPerConnection: l.connectionWindowBytes,
		},
	}
}

// requestLimits are the checks the gateway makes on each request before
// routing it, as Envoy's codec and connection manager do.
type requestLimits struct {
	// maxHeaderBytes bounds the names and values of the headers, Host
	// included (max_request_headers_kb): 431 beyond.
	maxHeaderBytes int
	// maxHeadersCount bounds the header fields, Host included
	// (max_headers_count): 431 beyond for HTTP/1, a reset for HTTP/2.
	maxHeadersCount int
	// underscores is what to do with a header whose name holds "_".
	underscores corev3.HttpProtocolOptions_HeadersWithUnderscoresAction
	// paths says how a path is normalized before routing.
	paths pathRules
}

// compileLimits reads the connection manager's limits, refusing the
// settings the gateway cannot honour.
func compileLimits(h *hcmv3.HttpConnectionManager) (serverLimits, requestLimits, error) {
	common := h.GetCommonHttpProtocolOptions()
	if err := onlyFields(common, "idle_timeout", "max_headers_count", "headers_with_underscores_action"); err != nil {
		return serverLimits{}, requestLimits{}, err
	}
	h2 := h.GetHttp2ProtocolOptions()
	if err := onlyFields(h2, "max_concurrent_streams", "initial_stream_window_size", "initial_connection_window_size"); err != nil {
		return serverLimits{}, requestLimits{}, err
	}
	headerBytes := int(uint32Or(h.GetMaxRequestHeadersKb().GetValue(), defaultMaxRequestHeadersKiB)) << 10
	srv := serverLimits{
		readHeaderTimeout:     h.GetRequestHeadersTimeout().AsDuration(),
		idleTimeout:           defaultIdleTimeout,
		maxHeaderBytes:        headerBytes,
		maxConcurrentStreams:  int(h2.GetMaxConcurrentStreams().GetValue()),
		streamWindowBytes:     int(h2.GetInitialStreamWindowSize().GetValue()),
		connectionWindowBytes: int(h2.GetInitialConnectionWindowSize().GetValue()),
	}
	if t := common.GetIdleTimeout(); t != nil {
		srv.idleTimeout = t.AsDuration()
	}
	paths, err := compilePathRules(h)
	if err != nil {
		return serverLimits{}, requestLimits{}, err
	}
	req := requestLimits{
		maxHeaderBytes:  headerBytes,
		maxHeadersCount: int(uint32Or(common.GetMaxHeadersCount().GetValue(), defaultMaxHeadersCount)),
		underscores:     common.GetHeadersWithUnderscoresAction(),
		paths:           paths,
	}
	return srv, req, nil
}

func uint32Or(v, def uint32) uint32 {
	if v == 0 {
		return def
	}
	return v
}

// Errors a request's headers can fail the checks with, and how Envoy
// answers each over HTTP/1 (HTTP/2 resets the stream instead, but for the
// size, which the codec answers 431 on both).
var (
	errHeadersTooLarge = errors.New("headers too large")
	errTooManyHeaders  = errors.New("too many headers")
	errUnderscore      = errors.New("header name with an underscore")
)

// checkHeaders applies the header limits to r, dropping the headers whose
// names hold an underscore when the connection manager says so.
func (l requestLimits) checkHeaders(r *http.Request) error {
	size, count := len("host")+len(r.Host), 1
	if r.Host == "" {
		size, count = 0, 0
	}
	for name, values := range r.Header {
		count += len(values)
		for _, v := range values {
			size += len(name) + len(v)
		}
	}
	switch {
	case size > l.maxHeaderBytes:
		return errHeadersTooLarge
	case count > l.maxHeadersCount:
		return errTooManyHeaders
	}
	return l.checkUnderscores(r.Header)
}

func (l requestLimits) checkUnderscores(h http.Header) error {
	if l.underscores == corev3.HttpProtocolOptions_ALLOW {
		return nil
	}
	for name := range h {
		if !containsUnderscore(name) {
			continue
		}
		if l.underscores == corev3.HttpProtocolOptions_REJECT_REQUEST {
			return errUnderscore
		}
		h.Del(name) // DROP_HEADER
	}
	return nil
}

func containsUnderscore(s string) bool {
	for i := range len(s) {
		if s[i] == '_' {
			return true
		}
	}
	return false
}

// refuse answers a request that failed a header check as Envoy does: 431
// for the size on any protocol and for the count over HTTP/1, 400 for an
// underscore over HTTP/1; a stream reset otherwise.
func refuse(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusBadRequest
	if errors.Is(err, errHeadersTooLarge) || errors.Is(err, errTooManyHeaders) {
		status = http.StatusRequestHeaderFieldsTooLarge
	}
	if r.ProtoMajor == 2 && !errors.Is(err, errHeadersTooLarge) {
		panic(http.ErrAbortHandler)
	}
	w.Header().Set("Connection", "close")
	localReply(w, status, "", nil)
}
