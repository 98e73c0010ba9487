// Package tracing is the OpenTelemetry tracing of kgate's own data path:
// the dev gateway and the activator continue the W3C trace context
// (traceparent) a request carries, record a server span for the request
// they take and a client span for the request they send on, and put the
// client span's context in what they send.
//
// Nothing here is global: a component traces when it is given a
// TracerProvider (NewProvider builds one exporting over OTLP/gRPC), and a
// nil *Tracer costs its caller one comparison per request.
package tracing

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// ProviderOptions say where spans go and how many requests are traced.
type ProviderOptions struct {
	// Endpoint is the collector's OTLP/gRPC "host:port" (plaintext).
	Endpoint string
	// SampleRate is the probability, from 0 to 1, that a request arriving
	// without a trace decision is traced; one whose traceparent carries a
	// decision keeps it (parent-based sampling), so the components of one
	// request agree.
	SampleRate float64
	// ServiceName is the spans' service.name ("kgate-activator", ...).
	ServiceName string
	// BatchTimeout is how long spans wait to be sent in a batch; 0 means
	// the SDK's default (5 s).
	BatchTimeout time.Duration
}

// NewProvider returns a TracerProvider exporting spans in batches to the
// collector over OTLP/gRPC. It connects lazily: a collector that is down
// costs dropped spans, never a request. Shutdown flushes it.
func NewProvider(ctx context.Context, opts ProviderOptions) (*sdktrace.TracerProvider, error) {
	if opts.SampleRate < 0 || opts.SampleRate > 1 || opts.SampleRate != opts.SampleRate {
		return nil, fmt.Errorf("tracing: sample rate %v is not between 0 and 1", opts.SampleRate)
	}
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(opts.Endpoint), otlptracegrpc.WithInsecure())
	if err != nil {
		return nil, fmt.Errorf("tracing: the OTLP/gRPC exporter to %s: %w", opts.Endpoint, err)
	}
	var batch []sdktrace.BatchSpanProcessorOption
	if opts.BatchTimeout > 0 {
		batch = append(batch, sdktrace.WithBatchTimeout(opts.BatchTimeout))
	}
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, batch...),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(opts.SampleRate))),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", opts.ServiceName))),
	), nil
}

// Tracer records a component's spans. A nil *Tracer is no tracing; its
// callers check for nil before each use rather than paying for calls.
type Tracer struct {
	t    trace.Tracer
	prop propagation.TraceContext
}

// New returns the Tracer of the component named scope (its
// instrumentation scope) on tp, nil when tp is nil.
func New(tp trace.TracerProvider, scope string) *Tracer {
	if tp == nil {
		return nil
	}
	return &Tracer{t: tp.Tracer(scope)}
}

// Server starts the server span of r, a child of the trace context r's
// traceparent carries (a new trace without one), and returns r with the
// span in its context.
func (t *Tracer) Server(r *http.Request, name string) (*http.Request, trace.Span) {
	ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := t.t.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer))
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("http.request.method", r.Method),
			attribute.String("url.path", r.URL.Path),
			attribute.String("server.address", r.Host),
			attribute.String("network.protocol.version", fmt.Sprintf("%d.%d", r.ProtoMajor, r.ProtoMinor)),
		)
	}
	return r.WithContext(ctx), span
}

// Serve starts r's server span (see Server) and returns w and r to serve
// the request with, and the func that ends the span with the status w
// answered. The returned w unwraps (http.ResponseController) to the given
// one, so flushing and upgrades pass through.
func (t *Tracer) Serve(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, *http.Request, func()) {
	r, span := t.Server(r, r.Method)
	sw := &statusWriter{ResponseWriter: w}
	return sw, r, func() { End(span, sw.status) }
}

// statusWriter remembers the final status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	// 1xx are interim, but for 101 Switching Protocols.
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap is for http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Client starts the client span of a request sent on to addr (the
// upstream's "host:port") as a child of ctx's span.
func (t *Tracer) Client(ctx context.Context, name, addr string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	ctx, span := t.t.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() {
		span.SetAttributes(attribute.String("network.peer.address", addr))
		span.SetAttributes(attrs...)
	}
	return ctx, span
}

// Inject writes ctx's span context into h as traceparent (and
// tracestate), replacing what the client sent: the next hop's parent is
// the span that sent it.
func (t *Tracer) Inject(ctx context.Context, h http.Header) {
	h.Del("Traceparent")
	h.Del("Tracestate")
	t.prop.Inject(ctx, propagation.HeaderCarrier(h))
}

// End ends span with the response status (0: none was sent, the client
// went away). A server span is an error from 500 up, a client span from
// 400 up, as OpenTelemetry's HTTP conventions say.
func End(span trace.Span, status int) {
	if span.IsRecording() {
		threshold := 500
		if span.SpanContext().IsValid() && isClient(span) {
			threshold = 400
		}
		switch {
		case status == 0:
			span.SetStatus(codes.Error, "no response: the client went away")
		default:
			span.SetAttributes(attribute.Int("http.response.status_code", status))
			if status >= threshold {
				span.SetStatus(codes.Error, http.StatusText(status))
			}
		}
	}
	span.End()
}

// isClient says whether span is a client span, when the SDK tells.
func isClient(span trace.Span) bool {
	ro, ok := span.(sdktrace.ReadOnlySpan)
	return ok && ro.SpanKind() == trace.SpanKindClient
}
