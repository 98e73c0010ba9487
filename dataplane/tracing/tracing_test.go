package tracing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestNewProviderRate(t *testing.T) {
	for _, rate := range []float64{-0.1, 1.1} {
		if _, err := NewProvider(context.Background(), ProviderOptions{Endpoint: "127.0.0.1:1", SampleRate: rate}); err == nil {
			t.Errorf("rate %v: no error", rate)
		}
	}
	tp, err := NewProvider(context.Background(), ProviderOptions{Endpoint: "127.0.0.1:1", SampleRate: 0.5, ServiceName: "x"})
	if err != nil {
		t.Fatal(err)
	}
	_ = tp.Shutdown(context.Background())
}

func TestNilProvider(t *testing.T) {
	if New(nil, "x") != nil {
		t.Error("a nil provider must give a nil Tracer")
	}
}

// Serve continues the client's trace, records the status written, and
// marks server errors from 500 and client errors from 400.
func TestSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tr := New(tp, "test")
	const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	for _, status := range []int{200, 404, 503} {
		req := httptest.NewRequest(http.MethodGet, "/p", nil)
		req.Header.Set("Traceparent", parent)
		w, r, end := tr.Serve(httptest.NewRecorder(), req)
		ctx, client := tr.Client(r.Context(), "GET", "10.0.0.1:80")
		out := http.Header{"Traceparent": {"00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01"}}
		tr.Inject(ctx, out)
		if got, want := out.Get("Traceparent"), "00-0af7651916cd43dd8448eb211c80319c-"+client.SpanContext().SpanID().String()+"-01"; got != want {
			t.Errorf("injected %q, want %q", got, want)
		}
		End(client, status)
		w.WriteHeader(status)
		end()
	}
	spans := rec.Ended()
	if len(spans) != 6 {
		t.Fatalf("%d spans, want 6", len(spans))
	}
	for i, want := range []struct{ client, server codes.Code }{{codes.Unset, codes.Unset}, {codes.Error, codes.Unset}, {codes.Error, codes.Error}} {
		client, server := spans[2*i], spans[2*i+1]
		if server.Parent().SpanID().String() != "b7ad6b7169203331" || client.Parent().SpanID() != server.SpanContext().SpanID() {
			t.Errorf("request %d: parents %s and %s", i, server.Parent().SpanID(), client.Parent().SpanID())
		}
		if client.Status().Code != want.client || server.Status().Code != want.server {
			t.Errorf("request %d: status client %v server %v, want %v %v", i, client.Status().Code, server.Status().Code, want.client, want.server)
		}
	}
}
