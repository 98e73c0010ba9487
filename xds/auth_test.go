package xds

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/pki"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/xds/auth"
)

// The authentication tests run the server with mutual TLS, as every mode
// but the development server does, and connect as each role.

// tlsHarness is a server requiring client certificates from ca.
type tlsHarness struct {
	*harness
	ca   *pki.CA
	addr string
	// server is the server's certificate source, for rotation tests.
	server *pki.Issuer
	now    *time.Time
}

func newTLSHarness(t *testing.T, cfg model.Config, opts ServerOptions) *tlsHarness {
	t.Helper()
	ca, err := pki.NewCA("test", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	server := pki.NewIssuer(func() *pki.CA { return ca },
		pki.Request{Identity: pki.Identity{Role: pki.Server, ID: "kgate"}, Lifetime: time.Hour},
		func() time.Time { return now })
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testrun.Buffer{}
	opts.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	opts.TLS = pki.ServerConfig(server)
	if opts.Gate != nil { // the test's limits, logging where the test reads
		opts.Gate = auth.NewGate(opts.Gate.Limits, opts.Logger)
	}
	srv := NewServer(ctx, opts)
	eng, err := NewEngine(srv, EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Update(cfg); err != nil {
		t.Fatal(err)
	}
	lis := testrun.Listen(t)
	testrun.Go(t, ctx, "Serve", waitFor, func(ctx context.Context) error { return srv.Serve(ctx, lis) })
	t.Cleanup(cancel)
	return &tlsHarness{harness: &harness{srv: srv, eng: eng, logs: logs}, ca: ca, addr: lis.Addr().String(), server: server, now: &now}
}

// dialAs connects with a certificate for id.
func (h *tlsHarness) dialAs(t *testing.T, id pki.Identity) *grpc.ClientConn {
	t.Helper()
	b, err := h.ca.Issue(pki.Request{Identity: id, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return h.dialWith(t, pki.ClientConfig(pki.Static{B: b}))
}

func (h *tlsHarness) dialWith(t *testing.T, cfg *tls.Config) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// endedWith waits for the stream to end and checks its status code.
func (c *deltaClient) endedWith(code codes.Code) error {
	c.t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case resp, ok := <-c.recv:
			if ok {
				c.t.Fatalf("got a %s response %v, want the stream to end with %s", resp.GetTypeUrl(), deltaNames(resp), code)
			}
			_, err := c.stream.Recv()
			if status.Code(err) != code {
				c.t.Fatalf("stream ended with %v, want %s", err, code)
			}
			return err
		case <-deadline:
			c.t.Fatalf("the stream did not end within %s (want %s)", waitFor, code)
		}
	}
}

func nodeAs(id, agent string) *corev3.Node { return &corev3.Node{Id: id, UserAgentName: agent} }

func TestAConnectionWithoutACertificateFails(t *testing.T) {
	h := newTLSHarness(t, hello(), ServerOptions{})
	for name, creds := range map[string]credentials.TransportCredentials{
		"plaintext":           nil,
		"TLS, no certificate": credentials.NewTLS(&tls.Config{InsecureSkipVerify: true}),
	} {
		t.Run(name, func(t *testing.T) {
			var conn *grpc.ClientConn
			if creds == nil {
				conn = testrun.Dial(t, h.addr)
			} else {
				var err error
				if conn, err = grpc.NewClient(h.addr, grpc.WithTransportCredentials(creds)); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { conn.Close() })
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
			if err == nil {
				err = stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: gatewayNode, TypeUrl: resource.ListenerType})
			}
			if err == nil {
				_, err = stream.Recv()
			}
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("got %v, want the connection refused (Unavailable)", err)
			}
		})
	}
}

// TestRolesReceiveWhatTheyMay: each role subscribes to each type; a role
// gets the types it may receive, and a stream asking for another ends
// with PermissionDenied, counted.
func TestRolesReceiveWhatTheyMay(t *testing.T) {
	h := newTLSHarness(t, hello(), ServerOptions{})
	types := []string{resource.ListenerType, resource.ScopedRouteType, resource.RouteType, resource.ClusterType, resource.EndpointType, resource.SecretType}
	allowed := map[pki.Role][]string{
		pki.Gateway:   {resource.ListenerType, resource.ScopedRouteType, resource.RouteType, resource.ClusterType, resource.EndpointType, resource.SecretType},
		pki.Activator: {resource.ClusterType, resource.EndpointType},
		pki.Proxyless: {resource.ListenerType, resource.RouteType, resource.ClusterType, resource.EndpointType},
		pki.Observer:  {resource.ListenerType, resource.ScopedRouteType, resource.RouteType, resource.ClusterType, resource.EndpointType},
	}
	agents := map[pki.Role]string{pki.Gateway: "envoy", pki.Activator: "kgate-activator", pki.Proxyless: "gRPC Go", pki.Observer: "kgate"}
	refused := 0
	for _, role := range []pki.Role{pki.Gateway, pki.Activator, pki.Proxyless, pki.Observer} {
		conn := h.dialAs(t, pki.Identity{Role: role, ID: string(role) + "-1"})
		for _, typeURL := range types {
			t.Run(fmt.Sprintf("%s/%s", role, typeURL[strings.LastIndex(typeURL, ".")+1:]), func(t *testing.T) {
				c := deltaOn(t, conn, nodeAs(string(role)+"-1", agents[role]))
				if typeURL == resource.SecretType && role == pki.Gateway {
					// Allowed; no secrets cache yet, so the server ends the
					// stream for lack of one, not for the role.
					return
				}
				c.subscribe(typeURL, "*")
				if !contains(allowed[role], typeURL) {
					c.endedWith(codes.PermissionDenied)
					refused++
					return
				}
				c.next(typeURL)
			})
		}
	}
	if got := h.srv.Refusals()[auth.ReasonType]; got != uint64(refused) {
		t.Errorf("refusals of %s = %d, want %d", auth.ReasonType, got, refused)
	}
	if !strings.Contains(h.logs.String(), "control plane refused a client") {
		t.Errorf("no refusal logged:\n%s", h.logs.String())
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestTheNodeIDMustBeTheCertificates: a certificate speaks for its node
// id (or prefix) and its kind of client only.
func TestTheNodeIDMustBeTheCertificates(t *testing.T) {
	h := newTLSHarness(t, hello(), ServerOptions{})
	for _, tc := range []struct {
		name string
		id   pki.Identity
		node *corev3.Node
		ok   bool
	}{
		{"its own id", pki.Identity{Role: pki.Gateway, ID: "gw-1"}, nodeAs("gw-1", "envoy"), true},
		{"a prefix id", pki.Identity{Role: pki.Gateway, ID: "kgate-gateway-*"}, nodeAs("kgate-gateway-7f9c", "envoy"), true},
		{"another id", pki.Identity{Role: pki.Gateway, ID: "gw-1"}, nodeAs("gw-2", "envoy"), false},
		{"no node", pki.Identity{Role: pki.Gateway, ID: "gw-1"}, nil, false},
		{"a gateway posing as a gRPC client", pki.Identity{Role: pki.Gateway, ID: "gw-1"}, nodeAs("gw-1", "gRPC Go"), false},
		{"a gRPC client posing as a gateway", pki.Identity{Role: pki.Proxyless, ID: "app"}, nodeAs("app", "envoy"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := deltaOn(t, h.dialAs(t, tc.id), tc.node)
			c.subscribe(resource.ClusterType, "*")
			if tc.ok {
				c.next(resource.ClusterType)
				return
			}
			c.endedWith(codes.PermissionDenied)
		})
	}
}

// TestLimitsHold: with low limits, streams past the per-node limit and
// names past the per-stream limit are refused, logged and counted, and
// the refused streams end.
func TestLimitsHold(t *testing.T) {
	h := newTLSHarness(t, hello(), ServerOptions{Gate: auth.NewGate(auth.Limits{StreamsPerNode: 2, NamesPerStream: 100}, nil)})
	conn := h.dialAs(t, pki.Identity{Role: pki.Gateway, ID: "gw-*"})

	t.Run("streams per node", func(t *testing.T) {
		var open []*deltaClient
		for range 2 {
			c := deltaOn(t, conn, nodeAs("gw-a", "envoy"))
			c.subscribe(resource.ClusterType, "*")
			c.next(resource.ClusterType)
			open = append(open, c)
		}
		third := deltaOn(t, conn, nodeAs("gw-a", "envoy"))
		third.subscribe(resource.ClusterType, "*")
		third.endedWith(codes.ResourceExhausted)
		// Another node has its own allowance.
		other := deltaOn(t, conn, nodeAs("gw-b", "envoy"))
		other.subscribe(resource.ClusterType, "*")
		other.next(resource.ClusterType)
		// A proxyless client opens a stream per channel target: its role
		// has a higher limit of its own.
		app := h.dialAs(t, pki.Identity{Role: pki.Proxyless, ID: "app"})
		for range 3 {
			c := deltaOn(t, app, nodeAs("app", "gRPC Go"))
			c.subscribe(resource.ClusterType, "*")
			c.next(resource.ClusterType)
		}
	})
	t.Run("names per stream", func(t *testing.T) {
		c := deltaOn(t, conn, nodeAs("gw-c", "envoy"))
		names := make([]string, 60)
		for i := range names {
			names[i] = fmt.Sprintf("made-up-%d", i)
		}
		c.subscribe(resource.RouteType, names...) // none exists: no response
		// Re-subscribing the same names costs nothing; new ones past 100 do.
		c.subscribe(resource.RouteType, names...)
		more := make([]string, 50)
		for i := range more {
			more[i] = fmt.Sprintf("more-%d", i)
		}
		c.subscribe(resource.EndpointType, more...)
		c.endedWith(codes.ResourceExhausted)
	})
	got := h.srv.Refusals()
	if got[auth.ReasonStreams] != 1 || got[auth.ReasonNames] != 1 {
		t.Errorf("refusals = %v, want one of %s and one of %s", got, auth.ReasonStreams, auth.ReasonNames)
	}
}

// TestRotationKeepsOpenStreams: once the server's certificate is renewed,
// an open gateway stream keeps its config and gets the next change, and a
// new connection is served the new certificate.
func TestRotationKeepsOpenStreams(t *testing.T) {
	h := newTLSHarness(t, hello(), ServerOptions{})
	conn := h.dialAs(t, pki.Identity{Role: pki.Gateway, ID: "gw-1"})
	c := deltaOn(t, conn, nodeAs("gw-1", "envoy"))
	c.subscribe(resource.ClusterType, "*")
	c.ack(c.next(resource.ClusterType))
	before, err := h.server.Bundle()
	if err != nil {
		t.Fatal(err)
	}

	*h.now = h.now.Add(50 * time.Minute) // past two thirds of the hour
	var seen *tls.Certificate
	cfg := pki.ClientConfig(pki.Static{B: mustIssue(t, h.ca, pki.Identity{Role: pki.Observer, ID: "probe"})})
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		seen = &tls.Certificate{Leaf: cs.PeerCertificates[0]}
		return nil
	}
	probe := deltaOn(t, h.dialWith(t, cfg), nodeAs("probe", "kgate"))
	probe.subscribe(resource.ClusterType, "*")
	probe.next(resource.ClusterType)
	if seen == nil || seen.Leaf.SerialNumber.Cmp(before.Certificate().Leaf.SerialNumber) == 0 {
		t.Fatal("a new connection was not served the renewed certificate")
	}

	if err := h.eng.SetRevision(revision("hello-00002")); err != nil {
		t.Fatal(err)
	}
	resp := c.next(resource.ClusterType)
	if got := deltaNames(resp); !contains(got, "default/hello-00002") {
		t.Errorf("after rotation the open stream got %v, want the new revision's cluster", got)
	}
}

func mustIssue(t *testing.T, ca *pki.CA, id pki.Identity) *pki.Bundle {
	t.Helper()
	b, err := ca.Issue(pki.Request{Identity: id, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOnlyGatewaysHoldReadiness: an activator and an observer that never
// ACK do not hold a Route's readiness; a gateway that never ACKs holds it
// until StaleAfter, then is named instead.
func TestOnlyGatewaysHoldReadiness(t *testing.T) {
	svc := service("hello", 0, vhost("hello.example.com", model.External, split("default/hello-00001", 100)))
	h := newTLSHarness(t, model.Config{}, ServerOptions{StaleAfter: 500 * time.Millisecond})
	if err := h.eng.SetService(svc); err != nil {
		t.Fatal(err)
	}
	good := deltaOn(t, h.dialAs(t, pki.Identity{Role: pki.Gateway, ID: "gw-good"}), nodeAs("gw-good", "envoy"))
	for _, typ := range []string{resource.RouteType, resource.ScopedRouteType} {
		good.subscribe(typ, "*")
		good.ack(good.next(typ))
	}
	observer := deltaOn(t, h.dialAs(t, pki.Identity{Role: pki.Observer, ID: "ops"}), nodeAs("ops", "kgate"))
	observer.subscribe(resource.RouteType, "*")
	observer.next(resource.RouteType) // never ACKed
	if msg, _ := waitWaiting(t, h.eng, svc, false); msg != "" {
		t.Errorf("Waiting = %q with only the observer behind, want nothing", msg)
	}

	stuck := deltaOn(t, h.dialAs(t, pki.Identity{Role: pki.Gateway, ID: "gw-stuck"}), nodeAs("gw-stuck", "envoy"))
	stuck.subscribe(resource.RouteType, "*")
	stuck.next(resource.RouteType) // never ACKed
	if msg, _ := waitWaiting(t, h.eng, svc, true); !strings.Contains(msg, "pending") {
		t.Errorf("Waiting = %q, want the stuck gateway held for first", msg)
	}
	if msg, _ := waitWaiting(t, h.eng, svc, false); !strings.Contains(msg, "gw-stuck") {
		t.Errorf("Waiting = %q, want the stuck gateway named once stale", msg)
	}
}

// waitWaiting waits until Engine.Waiting's hold is as wanted.
func waitWaiting(t *testing.T, e *Engine, svc model.Service, hold bool) (string, bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		msg, h := e.Waiting(svc)
		if h == hold {
			return msg, h
		}
		if time.Now().After(deadline) {
			t.Fatalf("Waiting = %q, hold %v; want hold %v", msg, h, hold)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAFloodOfNamesIsBounded is the attack of 200 streams each subscribing
// 6,000 made-up names, with an observer's certificate (any node id with
// its prefix): with low limits every stream is refused as it passes the
// names limit, each refusal is counted and logged (at most once a second
// per reason, with the count), and the server holds nothing of them.
func TestAFloodOfNamesIsBounded(t *testing.T) {
	h := newTLSHarness(t, hello(), ServerOptions{Gate: auth.NewGate(auth.Limits{NamesPerStream: 1000, StreamsPerNode: 2}, nil)})
	conn := h.dialAs(t, pki.Identity{Role: pki.Observer, ID: "operator-*"})
	names := make([]string, 6000)
	for i := range names {
		names[i] = fmt.Sprintf("made-up-route-configuration-name-%06d", i)
	}
	before := heapInUse()
	for i := range 200 {
		c := deltaOn(t, conn, nodeAs(fmt.Sprintf("operator-%d", i), "kgate"))
		c.subscribe(resource.RouteType, names...)
		c.endedWith(codes.ResourceExhausted)
	}
	if got := h.srv.Refusals()[auth.ReasonNames]; got != 200 {
		t.Errorf("names refusals = %d, want 200", got)
	}
	if !strings.Contains(h.logs.String(), `"refused_so_far"`) {
		t.Error("no refusal was logged")
	}
	h.srv.guard.mu.Lock()
	open := len(h.srv.guard.open)
	h.srv.guard.mu.Unlock()
	if open != 0 {
		t.Errorf("the guard still holds %d streams", open)
	}
	// 200 × 6,000 names held would be well over 100 MB.
	if grew := heapInUse() - before; grew > 32<<20 {
		t.Errorf("the heap grew by %d MiB", grew>>20)
	}
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}
