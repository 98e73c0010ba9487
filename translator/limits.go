package translator

import (
	"time"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Limits are what the gateway listeners allow one client, following
// Envoy's guidance for an edge proxy: Envoy's defaults suit a service
// mesh, where clients are trusted, and leave an edge open to slow or
// oversized requests. A zero field takes its default (the Default*
// constants); a negative duration disables that timeout.
type Limits struct {
	// BufferBytes bounds what Envoy buffers per connection before it
	// stops reading from it (per_connection_buffer_limit_bytes), on the
	// gateway listeners and the revision clusters: Envoy's 1 MiB lets a
	// slow reader hold that much memory per connection.
	BufferBytes uint32
	// RequestHeadersTimeout bounds the time from the first byte of a
	// request to the end of its headers (request_headers_timeout); Envoy
	// has none, so a client trickling headers holds a stream forever.
	RequestHeadersTimeout time.Duration
	// StreamIdleTimeout ends a stream on which nothing moved for that long
	// (stream_idle_timeout). A route whose timeout is longer waits as long
	// as its timeout instead (see Service), so that a response may start
	// as late as the revision's timeoutSeconds allows.
	StreamIdleTimeout time.Duration
	// ConnectionIdleTimeout closes a connection without streams for that
	// long (common_http_protocol_options.idle_timeout).
	ConnectionIdleTimeout time.Duration
	// MaxRequestHeadersKiB bounds the size of a request's headers
	// (max_request_headers_kb); beyond it Envoy answers 431.
	MaxRequestHeadersKiB uint32
	// MaxHeadersCount bounds the number of a request's headers
	// (common_http_protocol_options.max_headers_count); beyond it Envoy
	// answers 431 (HTTP/1) or resets the stream (HTTP/2).
	MaxHeadersCount uint32
	// MaxConcurrentStreams bounds the streams of one HTTP/2 connection
	// (Envoy's default is 2^31-1).
	MaxConcurrentStreams uint32
	// InitialStreamWindowBytes and InitialConnectionWindowBytes are the
	// HTTP/2 flow-control windows a client may fill before Envoy reads
	// (Envoy's default is 256 MiB each).
	InitialStreamWindowBytes     uint32
	InitialConnectionWindowBytes uint32
	// PathWithEscapedSlashes is what Envoy does with %2F and %5C in a path
	// (path_with_escaped_slashes_action); the zero value, Envoy's
	// IMPLEMENTATION_SPECIFIC_DEFAULT, means
	// DefaultPathWithEscapedSlashes, set explicitly.
	PathWithEscapedSlashes hcmv3.HttpConnectionManager_PathWithEscapedSlashesAction
	// AllowHeadersWithUnderscores lets request headers whose names hold an
	// underscore through. By default such a request is rejected (400):
	// applications that read headers through CGI-style names treat "_" and
	// "-" alike, so "x_user" could pass for "x-user", a header the gateway
	// or a filter is meant to control.
	AllowHeadersWithUnderscores bool
}

// Defaults of Limits: Envoy's "Configuring Envoy as an edge proxy".
const (
	DefaultBufferBytes                  = 32 << 10
	DefaultRequestHeadersTimeout        = 10 * time.Second
	DefaultStreamIdleTimeout            = 300 * time.Second
	DefaultConnectionIdleTimeout        = time.Hour
	DefaultMaxRequestHeadersKiB         = 60
	DefaultMaxHeadersCount              = 100
	DefaultMaxConcurrentStreams         = 100
	DefaultInitialStreamWindowBytes     = 64 << 10
	DefaultInitialConnectionWindowBytes = 1 << 20
)

// DefaultPathWithEscapedSlashes keeps escaped slashes as they are. Knative
// routes by path prefix only and the gateway makes no access decision on
// the path, so an escaped slash cannot send a request where its raw path
// does not match; the revision gets the path as the client wrote it.
// REJECT_REQUEST (400) or unescaping would break applications that carry
// encoded slashes inside a segment (object keys, URLs as path parameters),
// and UNESCAPE_AND_REDIRECT answers a redirect that gRPC and most non-GET
// clients do not follow. Envoy's own default is KEEP_UNCHANGED today but
// may change, hence explicit.
const DefaultPathWithEscapedSlashes = hcmv3.HttpConnectionManager_KEEP_UNCHANGED

// Bounds Envoy's validation puts on Limits.
const (
	maxRequestHeadersKiB = 8192
	minWindowBytes       = 65535
	maxWindowBytes       = 1<<31 - 1
)

// WithDefaults returns l with its zero fields set to their defaults.
func (l Limits) WithDefaults() Limits {
	l.BufferBytes = orDefault(l.BufferBytes, DefaultBufferBytes)
	l.RequestHeadersTimeout = orDefault(l.RequestHeadersTimeout, DefaultRequestHeadersTimeout)
	l.StreamIdleTimeout = orDefault(l.StreamIdleTimeout, DefaultStreamIdleTimeout)
	l.ConnectionIdleTimeout = orDefault(l.ConnectionIdleTimeout, DefaultConnectionIdleTimeout)
	l.MaxRequestHeadersKiB = orDefault(l.MaxRequestHeadersKiB, DefaultMaxRequestHeadersKiB)
	l.MaxHeadersCount = orDefault(l.MaxHeadersCount, DefaultMaxHeadersCount)
	l.MaxConcurrentStreams = orDefault(l.MaxConcurrentStreams, DefaultMaxConcurrentStreams)
	l.InitialStreamWindowBytes = orDefault(l.InitialStreamWindowBytes, DefaultInitialStreamWindowBytes)
	l.InitialConnectionWindowBytes = orDefault(l.InitialConnectionWindowBytes, DefaultInitialConnectionWindowBytes)
	l.PathWithEscapedSlashes = orDefault(l.PathWithEscapedSlashes, DefaultPathWithEscapedSlashes)
	return l
}

// Validate reports the limits Envoy would reject, so that a bad setting
// fails where it is made rather than as a NACK from every gateway.
func (l Limits) Validate() error {
	l = l.WithDefaults()
	p := field.NewPath("limits")
	var errs field.ErrorList
	if l.MaxRequestHeadersKiB > maxRequestHeadersKiB {
		errs = append(errs, field.Invalid(p.Child("maxRequestHeadersKiB"), l.MaxRequestHeadersKiB, "must be at most 8192"))
	}
	if l.MaxConcurrentStreams > maxWindowBytes {
		errs = append(errs, field.Invalid(p.Child("maxConcurrentStreams"), l.MaxConcurrentStreams, "must be at most 2147483647"))
	}
	errs = append(errs, windowError(p.Child("initialStreamWindowBytes"), l.InitialStreamWindowBytes)...)
	errs = append(errs, windowError(p.Child("initialConnectionWindowBytes"), l.InitialConnectionWindowBytes)...)
	if _, known := hcmv3.HttpConnectionManager_PathWithEscapedSlashesAction_name[int32(l.PathWithEscapedSlashes)]; !known {
		errs = append(errs, field.Invalid(p.Child("pathWithEscapedSlashes"), l.PathWithEscapedSlashes.String(), "unknown action"))
	}
	return errs.ToAggregate()
}

func windowError(p *field.Path, v uint32) field.ErrorList {
	if v < minWindowBytes || v > maxWindowBytes {
		return field.ErrorList{field.Invalid(p, v, "must be between 65535 and 2147483647")}
	}
	return nil
}
