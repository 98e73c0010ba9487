package devgateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// The access log: a connection manager's access_log, when it is Envoy's
// standard output logger (envoy.access_loggers.stdout) with a text or JSON
// format, writes one line per request to Options.AccessLog. The dev
// gateway knows the command operators of kgate's default formats and no
// others: a format with another is refused (the listener is NACKed), so
// that no line ever says less than the config asks.

// logOp is one command operator the dev gateway can write.
type logOp uint8

const (
	opLiteral logOp = iota
	opStartTime
	opReq
	opResp
	opProtocol
	opResponseCode
	opResponseFlags
	opBytesReceived
	opBytesSent
	opDuration
	opUpstreamHost
	opUpstreamCluster
)

// logOps are the operators without arguments, by name.
var logOps = map[string]logOp{
	"START_TIME":       opStartTime,
	"PROTOCOL":         opProtocol,
	"RESPONSE_CODE":    opResponseCode,
	"RESPONSE_FLAGS":   opResponseFlags,
	"BYTES_RECEIVED":   opBytesReceived,
	"BYTES_SENT":       opBytesSent,
	"DURATION":         opDuration,
	"UPSTREAM_HOST":    opUpstreamHost,
	"UPSTREAM_CLUSTER": opUpstreamCluster,
}

// supportedOps lists what the dev gateway writes, for its refusals.
const supportedOps = "START_TIME, REQ(H) or REQUEST_HEADER(H), REQ(H?ALT), RESP(H) or RESPONSE_HEADER(H), PROTOCOL, RESPONSE_CODE, RESPONSE_FLAGS, " +
	"BYTES_RECEIVED, BYTES_SENT, DURATION, UPSTREAM_HOST, UPSTREAM_CLUSTER"

// numeric operators are numbers in a JSON line.
func (o logOp) numeric() bool {
	switch o {
	case opResponseCode, opBytesReceived, opBytesSent, opDuration:
		return true
	}
	return false
}

// logPart is literal text or an operator; header and alt are REQ's and
// RESP's header names, canonical, or pseudo-headers in lower case.
type logPart struct {
	op          logOp
	text        string
	header, alt string
}

// logFormat is a compiled format string.
type logFormat []logPart

// jsonField is one key of a JSON line.
type jsonField struct {
	key    string
	keyRaw []byte // the key, JSON-quoted, with its colon
	format logFormat
}

// accessLog is a compiled access log: text lines, or JSON objects of
// fields sorted by key.
type accessLog struct {
	text   logFormat
	fields []jsonField
	// bodyBytes: the format counts the request body (BYTES_RECEIVED).
	bodyBytes bool
}

var operatorRE = regexp.MustCompile(`^([A-Z_]+)(?:\(([^)]*)\))?(:[0-9]+)?$`)

// parseLogFormat compiles an Envoy format string.
func parseLogFormat(s string) (logFormat, error) {
	var f logFormat
	for s != "" {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			f = append(f, logPart{text: s})
			break
		}
		if i > 0 {
			f = append(f, logPart{text: s[:i]})
		}
		s = s[i+1:]
		j := strings.IndexByte(s, '%')
		if j < 0 {
			return nil, fmt.Errorf("access log format: a %% opens no command operator: %q", "%"+s)
		}
		p, err := parseOperator(s[:j])
		if err != nil {
			return nil, err
		}
		f = append(f, p)
		s = s[j+1:]
	}
	return f, nil
}

func parseOperator(tok string) (logPart, error) {
	m := operatorRE.FindStringSubmatch(tok)
	if m == nil {
		return logPart{}, fmt.Errorf("access log format: %%%s%% is not a command operator the dev gateway knows (it writes %s)", tok, supportedOps)
	}
	name, arg, maxLen := m[1], m[2], m[3]
	if maxLen != "" {
		return logPart{}, fmt.Errorf("access log format: %%%s%%: a length limit is not supported by the dev gateway", tok)
	}
	switch name {
	case "REQ", "RESP", "REQUEST_HEADER", "RESPONSE_HEADER":
		if arg == "" {
			return logPart{}, fmt.Errorf("access log format: %%%s%% names no header", tok)
		}
		header, alt, _ := strings.Cut(arg, "?")
		op := opReq
		if name == "RESP" || name == "RESPONSE_HEADER" {
			op = opResp
		}
		return logPart{op: op, header: headerKey(header), alt: headerKey(alt)}, nil
	}
	op, ok := logOps[name]
	if !ok || strings.Contains(tok, "(") {
		return logPart{}, fmt.Errorf("access log format: %%%s%% is not supported by the dev gateway (it writes %s)", tok, supportedOps)
	}
	return logPart{op: op}, nil
}

// headerKey is how a header is looked up: pseudo-headers in lower case,
// others canonical.
func headerKey(h string) string {
	if h == "" || strings.HasPrefix(h, ":") {
		return strings.ToLower(h)
	}
	return http.CanonicalHeaderKey(h)
}

// compileAccessLogs compiles a connection manager's access_log.
func compileAccessLogs(logs []*accesslogv3.AccessLog) ([]*accessLog, error) {
	var out []*accessLog
	for _, l := range logs {
		if err := onlyFields(l, "name", "typed_config"); err != nil {
			return nil, err
		}
		var cfg streamv3.StdoutAccessLog
		if err := unpack(l.GetTypedConfig(), &cfg); err != nil {
			return nil, fmt.Errorf("access log %s: %w (the dev gateway writes the standard output logger alone)", l.GetName(), err)
		}
		al, err := compileLogFormat(cfg.GetLogFormat())
		if err != nil {
			return nil, fmt.Errorf("access log %s: %w", l.GetName(), err)
		}
		out = append(out, al)
	}
	return out, nil
}

// compileLogFormat compiles a log_format; none is Envoy's default format.
func compileLogFormat(sf *corev3.SubstitutionFormatString) (*accessLog, error) {
	al := &accessLog{}
	var err error
	if sf == nil {
		al.text, err = parseLogFormat(envoyDefaultFormat)
		return al, err
	}
	if err := onlyFields(sf, "text_format", "text_format_source", "json_format"); err != nil {
		return nil, err
	}
	switch f := sf.GetFormat().(type) {
	case *corev3.SubstitutionFormatString_TextFormat:
		al.text, err = parseLogFormat(f.TextFormat)
	case *corev3.SubstitutionFormatString_TextFormatSource:
		if err := onlyFields(f.TextFormatSource, "inline_string"); err != nil {
			return nil, err
		}
		al.text, err = parseLogFormat(f.TextFormatSource.GetInlineString())
	case *corev3.SubstitutionFormatString_JsonFormat:
		al.fields, err = compileJSONFields(f.JsonFormat)
	default:
		return nil, errors.New("log_format has no format")
	}
	if err != nil {
		return nil, err
	}
	for _, p := range al.parts() {
		al.bodyBytes = al.bodyBytes || p.op == opBytesReceived
	}
	return al, nil
}

func compileJSONFields(s *structpb.Struct) ([]jsonField, error) {
	var fields []jsonField
	for _, k := range slices.Sorted(maps.Keys(s.GetFields())) {
		v, ok := s.GetFields()[k].GetKind().(*structpb.Value_StringValue)
		if !ok {
			return nil, fmt.Errorf("json_format %q: the dev gateway writes string values (format strings) alone", k)
		}
		f, err := parseLogFormat(v.StringValue)
		if err != nil {
			return nil, fmt.Errorf("json_format %q: %w", k, err)
		}
		key, _ := json.Marshal(k)
		fields = append(fields, jsonField{key: k, keyRaw: append(key, ':'), format: f})
	}
	return fields, nil
}

func (al *accessLog) parts() []logPart {
	parts := slices.Clone(al.text)
	for _, f := range al.fields {
		parts = append(parts, f.format...)
	}
	return parts
}

// envoyDefaultFormat is Envoy's format when a logger names none.
const envoyDefaultFormat = `[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" ` +
	`%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% ` +
	`%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" ` +
	`"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"` + "\n"

// Envoy's response flags the dev gateway sets.
const (
	flagNoRoute            = "NR"
	flagNoCluster          = "NC"
	flagNoHealthyUpstream  = "UH"
	flagUpstreamTimeout    = "UT"
	flagStreamIdleTimeout  = "SI"
	flagConnectFailure     = "UF"
	flagUpstreamReset      = "UC"
	flagDownstreamGone     = "DC"
	flagOverloaded         = "OM"
	flagDownstreamProtocol = "DPE"
)

// requestRecord is what the access log and the metrics know of one
// request: it wraps the client's ResponseWriter to see the status and the
// bytes sent, and the proxy fills in where the request went.
type requestRecord struct {
	http.ResponseWriter
	start       time.Time
	status      int
	wroteHeader bool
	bytesSent   int64
	body        *countingBody // nil unless the format counts the body
	// upHeader is the request's header as sent upstream (with the
	// route's headers, Knative-Serving-Revision among them), nil when
	// nothing was sent.
	upHeader http.Header
	cluster  string
	host     string
	flags    string
}

func (rec *requestRecord) WriteHeader(code int) {
	if !rec.wroteHeader && (code >= 200 || code == http.StatusSwitchingProtocols) {
		rec.status, rec.wroteHeader = code, true
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *requestRecord) Write(b []byte) (int, error) {
	if !rec.wroteHeader {
		rec.status, rec.wroteHeader = http.StatusOK, true
	}
	n, err := rec.ResponseWriter.Write(b)
	rec.bytesSent += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController (which ReverseProxy flushes and
// hijacks through) reach the connection's writer.
func (rec *requestRecord) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// setFlag records a response flag; the first one set stands.
func (rec *requestRecord) setFlag(f string) {
	if rec != nil && rec.flags == "" {
		rec.flags = f
	}
}

// countingBody counts the request body bytes read.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// logSink writes whole lines to Options.AccessLog, one at a time.
type logSink struct {
	mu  sync.Mutex
	w   io.Writer
	buf sync.Pool
}

func newLogSink(w io.Writer) *logSink {
	if w == nil {
		return nil
	}
	return &logSink{w: w, buf: sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}}
}

// write formats the line of rec as al says and writes it.
func (s *logSink) write(al *accessLog, r *http.Request, rec *requestRecord, end time.Time) {
	bp := s.buf.Get().(*[]byte)
	b := (*bp)[:0]
	if al.fields == nil {
		for _, p := range al.text {
			b = appendPart(b, p, r, rec, end)
		}
	} else {
		b = append(b, '{')
		for i, f := range al.fields {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, f.keyRaw...)
			b = appendJSONValue(b, f.format, r, rec, end)
		}
		b = append(b, '}', '\n')
	}
	s.mu.Lock()
	_, _ = s.w.Write(b)
	s.mu.Unlock()
	*bp = b
	s.buf.Put(bp)
}

// appendJSONValue writes a format as a JSON value: a format that is one
// operator keeps its type (a number, or null when there is no value),
// others are strings.
func appendJSONValue(b []byte, f logFormat, r *http.Request, rec *requestRecord, end time.Time) []byte {
	if len(f) == 1 && f[0].op != opLiteral {
		v := appendPart(nil, f[0], r, rec, end)
		switch {
		case string(v) == "-":
			return append(b, "null"...)
		case f[0].op.numeric():
			return append(b, v...)
		}
		return strconv.AppendQuote(b, string(v))
	}
	var v []byte
	for _, p := range f {
		v = appendPart(v, p, r, rec, end)
	}
	q, _ := json.Marshal(string(v))
	return append(b, q...)
}

// appendPart writes one part of a line; an operator without a value is
// "-", as with Envoy.
func appendPart(b []byte, p logPart, r *http.Request, rec *requestRecord, end time.Time) []byte {
	dash := func(s string) []byte {
		if s == "" {
			return append(b, '-')
		}
		return append(b, s...)
	}
	switch p.op {
	case opLiteral:
		return append(b, p.text...)
	case opStartTime:
		return rec.start.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	case opReq:
		v := loggedHeader(r, rec, p.header)
		if v == "" && p.alt != "" {
			v = loggedHeader(r, rec, p.alt)
		}
		return dash(v)
	case opResp:
		v := rec.Header().Get(p.header)
		if v == "" && p.alt != "" {
			v = rec.Header().Get(p.alt)
		}
		return dash(v)
	case opProtocol:
		switch {
		case r.ProtoMajor == 2:
			return append(b, "HTTP/2"...)
		case r.ProtoMinor == 0:
			return append(b, "HTTP/1.0"...)
		}
		return append(b, "HTTP/1.1"...)
	case opResponseCode:
		return strconv.AppendInt(b, int64(rec.status), 10)
	case opResponseFlags:
		return dash(rec.flags)
	case opBytesReceived:
		if rec.body == nil {
			return append(b, '0')
		}
		return strconv.AppendInt(b, rec.body.n, 10)
	case opBytesSent:
		return strconv.AppendInt(b, rec.bytesSent, 10)
	case opDuration:
		return strconv.AppendInt(b, end.Sub(rec.start).Milliseconds(), 10)
	case opUpstreamHost:
		return dash(rec.host)
	case opUpstreamCluster:
		return dash(rec.cluster)
	}
	return b
}

// loggedHeader is a request header as Envoy's access log sees it: the
// pseudo-headers, and the headers as forwarded (the route's added) once
// the request went upstream.
func loggedHeader(r *http.Request, rec *requestRecord, key string) string {
	switch key {
	case ":authority":
		return r.Host
	case ":method":
		return r.Method
	case ":path":
		return r.URL.RequestURI()
	case ":scheme":
		return requestScheme(r)
	}
	if strings.HasPrefix(key, ":") {
		return ""
	}
	if rec.upHeader != nil {
		if v := rec.upHeader[key]; len(v) > 0 {
			return v[0]
		}
	}
	if v := r.Header[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// observes says whether requests on cm are recorded: for an access log
// the connection manager has and the gateway writes, or for metrics.
func (p *proxy) observes(cm *connManager) bool {
	return p.metrics != nil || (p.logs != nil && len(cm.accessLogs) > 0)
}

// startRecord starts the record of r, answered through w.
func (p *proxy) startRecord(cm *connManager, w http.ResponseWriter, r *http.Request) *requestRecord {
	rec := &requestRecord{ResponseWriter: w, start: time.Now()}
	if p.logs != nil {
		for _, al := range cm.accessLogs {
			if al.bodyBytes && r.Body != nil && r.Body != http.NoBody {
				rec.body = &countingBody{ReadCloser: r.Body}
				r.Body = rec.body
				break
			}
		}
	}
	return rec
}

// endRecord writes the access log lines and counts the request.
func (p *proxy) endRecord(cm *connManager, r *http.Request, rec *requestRecord) {
	end := time.Now()
	if p.logs != nil {
		for _, al := range cm.accessLogs {
			p.logs.write(al, r, rec, end)
		}
	}
	if p.metrics != nil {
		p.metrics.observe(rec, end.Sub(rec.start))
	}
}
