package devgateway_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"

	"github.com/kgate/kgate/activator"
	"github.com/kgate/kgate/dataplane/devgateway"
	"github.com/kgate/kgate/dataplane/tracing"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
)

// A request through the dev gateway, the activator and the app makes one
// trace: the gateway's server and client spans, the activator's, and the
// app's, each the child of the span before it, exported over OTLP/gRPC to
// an in-process receiver. At sample rate 0 nothing is exported, and the
// app still gets a traceparent (not sampled).
func TestTracingThroughActivator(t *testing.T) {
	t.Run("sampled", func(t *testing.T) {
		rcv, app, _ := tracedPath(t, 1)
		spans := rcv.await(t, 5)
		// Requests sent before the routes arrived (404) are traces of
		// their own: the app's is the one that went through.
		var trace string
		for _, s := range spans {
			if s.service == "app" {
				trace = s.traceID
			}
		}
		byName := map[string]recorded{}
		for _, s := range spans {
			if s.traceID != trace {
				continue
			}
			key := s.service + " " + s.kind.String()
			if _, dup := byName[key]; dup {
				t.Errorf("two spans %s", key)
			}
			byName[key] = s
		}
		gwServer := byName["kgate-gateway SPAN_KIND_SERVER"]
		gwClient := byName["kgate-gateway SPAN_KIND_CLIENT"]
		actServer := byName["kgate-activator SPAN_KIND_SERVER"]
		actClient := byName["kgate-activator SPAN_KIND_CLIENT"]
		appServer := byName["app SPAN_KIND_SERVER"]
		chain := []struct {
			name string
			span recorded
		}{{"gateway server", gwServer}, {"gateway client", gwClient}, {"activator server", actServer}, {"activator client", actClient}, {"app server", appServer}}
		for i, c := range chain {
			if c.span.spanID == "" {
				t.Fatalf("no %s span; got %v", c.name, spans)
			}
			if c.span.traceID != gwServer.traceID {
				t.Errorf("%s: trace %s, want the gateway's %s", c.name, c.span.traceID, gwServer.traceID)
			}
			wantParent := ""
			if i > 0 {
				wantParent = chain[i-1].span.spanID
			}
			if c.span.parentID != wantParent {
				t.Errorf("%s: parent %q, want %q (%s)", c.name, c.span.parentID, wantParent, chainName(chain, i-1))
			}
			if c.span.status != 200 {
				t.Errorf("%s: http.response.status_code %d, want 200", c.name, c.span.status)
			}
		}
		// What the app received names the activator's client span.
		want := fmt.Sprintf("00-%s-%s-01", actClient.traceID, actClient.spanID)
		if tp := app.traceparent(); tp != want {
			t.Errorf("the app received traceparent %q, want %q", tp, want)
		}
	})
	t.Run("rate 0", func(t *testing.T) {
		rcv, app, flush := tracedPath(t, 0)
		flush()
		if spans := rcv.all(); len(spans) != 0 {
			t.Errorf("sample rate 0 exported %d spans: %v", len(spans), spans)
		}
		tp := app.traceparent()
		if !strings.HasPrefix(tp, "00-") || !strings.HasSuffix(tp, "-00") {
			t.Errorf("the app received traceparent %q, want one not sampled (flags 00)", tp)
		}
	})
}

// A gateway given a TracerProvider traces only the listeners whose
// connection manager says to, as Envoy: without tracing in the config, no
// span, and the client's traceparent reaches the app as it was sent.
func TestTracingFollowsTheConfig(t *testing.T) {
	rcv := newOTLPReceiver(t)
	tp, err := tracing.NewProvider(context.Background(), tracing.ProviderOptions{Endpoint: rcv.addr, SampleRate: 1, ServiceName: "kgate-gateway"})
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Shutdown(context.Background())
	pod := &tracedApp{}
	podSrv := httptest.NewServer(pod)
	defer podSrv.Close()
	e := newEnv(t, envOptions{gateway: func(o *devgateway.Options) { o.TracerProvider = tp }})
	e.update(apps(app{name: "hello", pods: []model.Endpoint{endpointOf(podSrv.Listener.Addr())}}))
	c := client(t)
	ext := e.addr(translator.ExternalListener)
	awaitBody(t, c, ext, externalHost("hello"), "/", "traced")
	const sent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	if r := get(t, c, ext, externalHost("hello"), "/", http.Header{"Traceparent": {sent}}); r.status != http.StatusOK {
		t.Fatalf("got %d %q", r.status, r.body)
	}
	if got := pod.traceparent(); got != sent {
		t.Errorf("the app received traceparent %q, want the client's %q", got, sent)
	}
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if spans := rcv.all(); len(spans) != 0 {
		t.Errorf("a listener without tracing exported %d spans: %v", len(spans), spans)
	}
}

func chainName(chain []struct {
	name string
	span recorded
}, i int) string {
	if i < 0 {
		return "a root"
	}
	return chain[i].name
}

// tracedPath runs gateway → activator → app, each tracing at rate to one
// receiver, sends one request through it, and returns the receiver, the
// app and a func that flushes every provider.
func tracedPath(t *testing.T, rate float64) (*otlpReceiver, *tracedApp, func()) {
	t.Helper()
	rcv := newOTLPReceiver(t)
	provider := func(service string) *sdktrace.TracerProvider {
		tp, err := tracing.NewProvider(context.Background(), tracing.ProviderOptions{
			Endpoint: rcv.addr, SampleRate: rate, ServiceName: service, BatchTimeout: 50 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		return tp
	}
	gwTP, actTP, appTP := provider("kgate-gateway"), provider("kgate-activator"), provider("app")
	flush := func() {
		for _, tp := range []*sdktrace.TracerProvider{gwTP, actTP, appTP} {
			if err := tp.ForceFlush(context.Background()); err != nil {
				t.Fatalf("flush: %v", err)
			}
		}
	}

	pod := &tracedApp{tracer: tracing.New(appTP, "app")}
	appSrv := httptest.NewServer(pod)
	t.Cleanup(appSrv.Close)

	act := activator.New(activator.Options{TracerProvider: actTP})
	key := revKey("hello-00001")
	act.SetRevision(key, activator.RevisionConfig{})
	act.SetEndpoints(key, []model.Endpoint{endpointOf(appSrv.Listener.Addr())})
	actSrv := httptest.NewServer(act)
	t.Cleanup(actSrv.Close)

	host, port, _ := net.SplitHostPort(rcv.addr)
	var portN uint32
	fmt.Sscan(port, &portN)
	e := newEnv(t, envOptions{
		translator: translator.Options{Tracing: translator.Tracing{CollectorHost: host, CollectorPort: portN, SampleRate: rate}},
		gateway:    func(o *devgateway.Options) { o.TracerProvider = gwTP },
	})
	cfg := apps(app{name: "hello"})
	cfg.Endpoints[0] = model.RevisionEndpoints{Revision: key, Mode: model.Proxy, Activators: []model.Endpoint{endpointOf(actSrv.Listener.Addr())}}
	e.update(cfg)
	awaitBody(t, client(t), e.addr(translator.ExternalListener), externalHost("hello"), "/", "traced")
	flush()
	return rcv, pod, flush
}

// tracedApp is an application that traces with its own provider and keeps
// the last traceparent it received.
type tracedApp struct {
	tracer *tracing.Tracer
	mu     sync.Mutex
	last   string
}

func (a *tracedApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.last = r.Header.Get("Traceparent")
	a.mu.Unlock()
	if a.tracer != nil {
		var end func()
		w, _, end = a.tracer.Serve(w, r)
		defer end()
	}
	fmt.Fprint(w, "traced")
}

func (a *tracedApp) traceparent() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

// otlpReceiver is an OTLP/gRPC trace collector on loopback.
type otlpReceiver struct {
	collectorpb.UnimplementedTraceServiceServer
	addr  string
	mu    sync.Mutex
	spans []recorded
}

// recorded is a span as the receiver got it.
type recorded struct {
	service, name             string
	kind                      tracepb.Span_SpanKind
	traceID, spanID, parentID string
	status                    int64
}

func (s recorded) String() string {
	return fmt.Sprintf("%s %s %s trace=%s span=%s parent=%s", s.service, s.kind, s.name, s.traceID, s.spanID, s.parentID)
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &otlpReceiver{addr: lis.Addr().String()}
	srv := grpc.NewServer()
	collectorpb.RegisterTraceServiceServer(srv, r)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return r
}

func (r *otlpReceiver) Export(_ context.Context, req *collectorpb.ExportTraceServiceRequest) (*collectorpb.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				rec := recorded{service: service, name: s.GetName(), kind: s.GetKind(),
					traceID: hex.EncodeToString(s.GetTraceId()), spanID: hex.EncodeToString(s.GetSpanId())}
				if len(s.GetParentSpanId()) > 0 {
					rec.parentID = hex.EncodeToString(s.GetParentSpanId())
				}
				for _, kv := range s.GetAttributes() {
					if kv.GetKey() == "http.response.status_code" {
						rec.status = kv.GetValue().GetIntValue()
					}
				}
				r.spans = append(r.spans, rec)
			}
		}
	}
	return &collectorpb.ExportTraceServiceResponse{}, nil
}

func (r *otlpReceiver) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.spans...)
}

// await waits for n spans and returns them.
func (r *otlpReceiver) await(t *testing.T, n int) []recorded {
	t.Helper()
	eventually(t, fmt.Sprintf("%d spans exported", n), func() error {
		if got := len(r.all()); got < n {
			return fmt.Errorf("%d spans", got)
		}
		return nil
	})
	return r.all()
}
