package xds

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/translator/model"
)

// The feature tests drive a real Engine and Server over loopback gRPC, the
// way Envoy and grpc-go talk to it, and assert the exact resources each
// response carries.

const (
	// waitFor bounds every wait for a response.
	waitFor = 5 * time.Second
	// quiet is how long a test listens to assert that nothing is pushed.
	quiet = 300 * time.Millisecond
)

var (
	gatewayNode   = &corev3.Node{Id: "envoy-1", Cluster: "kgate", UserAgentName: "envoy"}
	proxylessNode = &corev3.Node{Id: "grpc-client-1", UserAgentName: "gRPC Go"}
)

// harness is a running server and engine.
type harness struct {
	srv  *Server
	eng  *Engine
	conn *grpc.ClientConn
	logs *testrun.Buffer
}

func newHarness(t testing.TB, cfg model.Config) *harness {
	t.Helper()
	return newHarnessWith(t, cfg, EngineOptions{})
}

func newHarnessWith(t testing.TB, cfg model.Config, eopts EngineOptions) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testrun.Buffer{}
	srv := NewServer(ctx, ServerOptions{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	eng, err := NewEngine(srv, eopts)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	if err := eng.Update(cfg); err != nil {
		t.Fatalf("Update: %v", err)
	}
	lis := testrun.Listen(t)
	conn := dial(t, lis.Addr().String())
	testrun.Go(t, ctx, "Serve", waitFor, func(ctx context.Context) error { return srv.Serve(ctx, lis) })
	t.Cleanup(cancel) // before Go's cleanup: the server's context ends with Serve's
	return &harness{srv: srv, eng: eng, conn: conn, logs: logs}
}

// dial connects to a server on loopback; the connection closes with the
// test.
func dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	// Full-state responses for thousands of Services exceed grpc-go's
	// default 4 MiB; Envoy takes far more.
	return testrun.Dial(t, addr, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)))
}

// sotwClient is one state-of-the-world ADS stream.
type sotwClient struct {
	t      testing.TB
	node   *corev3.Node
	stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	recv   <-chan *discoveryv3.DiscoveryResponse
	first  bool
}

func (h *harness) sotw(t testing.TB, node *corev3.Node) *sotwClient {
	t.Helper()
	return sotwOn(t, h.conn, node)
}

// sotwOn opens a state-of-the-world ADS stream on conn.
func sotwOn(t testing.TB, conn grpc.ClientConnInterface, node *corev3.Node) *sotwClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatalf("opening ADS stream: %v", err)
	}
	return &sotwClient{t: t, node: node, stream: stream, recv: pump(stream.Recv), first: true}
}

// pump forwards a stream's responses to a channel, closed when the stream
// ends, so that a test can wait for one with a timeout.
func pump[T any](recv func() (T, error)) <-chan T {
	out := make(chan T, 16)
	go func() {
		defer close(out)
		for {
			resp, err := recv()
			if err != nil {
				return
			}
			out <- resp
		}
	}()
	return out
}

// send sends a request; the node goes on the stream's first one only, as
// Envoy does.
func (c *sotwClient) send(req *discoveryv3.DiscoveryRequest) {
	c.t.Helper()
	if c.first {
		req.Node = c.node
		c.first = false
	}
	if err := c.stream.Send(req); err != nil {
		c.t.Fatalf("sending %s request: %v", req.GetTypeUrl(), err)
	}
}

func (c *sotwClient) subscribe(typeURL string, names ...string) {
	c.t.Helper()
	c.send(&discoveryv3.DiscoveryRequest{TypeUrl: typeURL, ResourceNames: names})
}

// ack ACKs resp, keeping the subscription.
func (c *sotwClient) ack(resp *discoveryv3.DiscoveryResponse, names ...string) {
	c.t.Helper()
	c.send(&discoveryv3.DiscoveryRequest{TypeUrl: resp.GetTypeUrl(), VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce(), ResourceNames: names})
}

// nack rejects resp: the request keeps the version accepted before.
func (c *sotwClient) nack(resp *discoveryv3.DiscoveryResponse, accepted, msg string, names ...string) {
	c.t.Helper()
	c.send(&discoveryv3.DiscoveryRequest{
		TypeUrl: resp.GetTypeUrl(), VersionInfo: accepted, ResponseNonce: resp.GetNonce(), ResourceNames: names,
		ErrorDetail: &statuspb.Status{Code: 3, Message: msg},
	})
}

// next returns the next response, which must be of typeURL.
func (c *sotwClient) next(typeURL string) *discoveryv3.DiscoveryResponse {
	c.t.Helper()
	select {
	case resp, ok := <-c.recv:
		if !ok {
			c.t.Fatalf("stream closed while waiting for %s", typeURL)
		}
		if resp.GetTypeUrl() != typeURL {
			c.t.Fatalf("got a %s response %v, want %s", resp.GetTypeUrl(), sotwNames(c.t, resp), typeURL)
		}
		return resp
	case <-time.After(waitFor):
		c.t.Fatalf("no %s response within %s", typeURL, waitFor)
	}
	return nil
}

// none asserts that nothing arrives for a while.
func (c *sotwClient) none() {
	c.t.Helper()
	select {
	case resp := <-c.recv:
		c.t.Fatalf("got an unexpected %s response %v", resp.GetTypeUrl(), sotwNames(c.t, resp))
	case <-time.After(quiet):
	}
}

// deltaClient is one delta ADS stream.
type deltaClient struct {
	t      testing.TB
	node   *corev3.Node
	stream discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	recv   <-chan *discoveryv3.DeltaDiscoveryResponse
	first  bool
	// close ends the stream.
	close context.CancelFunc
}

func (h *harness) delta(t testing.TB, node *corev3.Node) *deltaClient {
	t.Helper()
	return deltaOn(t, h.conn, node)
}

// deltaOn opens a delta ADS stream on conn.
func deltaOn(t testing.TB, conn grpc.ClientConnInterface, node *corev3.Node) *deltaClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatalf("opening delta ADS stream: %v", err)
	}
	return &deltaClient{t: t, node: node, stream: stream, recv: pump(stream.Recv), first: true, close: cancel}
}

func (c *deltaClient) send(req *discoveryv3.DeltaDiscoveryRequest) {
	c.t.Helper()
	if c.first {
		req.Node = c.node
		c.first = false
	}
	if err := c.stream.Send(req); err != nil {
		c.t.Fatalf("sending %s delta request: %v", req.GetTypeUrl(), err)
	}
}

func (c *deltaClient) subscribe(typeURL string, names ...string) {
	c.t.Helper()
	c.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: typeURL, ResourceNamesSubscribe: names})
}

func (c *deltaClient) ack(resp *discoveryv3.DeltaDiscoveryResponse) {
	c.t.Helper()
	c.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()})
}

func (c *deltaClient) nack(resp *discoveryv3.DeltaDiscoveryResponse, msg string) {
	c.t.Helper()
	c.send(&discoveryv3.DeltaDiscoveryRequest{
		TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce(),
		ErrorDetail: &statuspb.Status{Code: 3, Message: msg},
	})
}

func (c *deltaClient) next(typeURL string) *discoveryv3.DeltaDiscoveryResponse {
	c.t.Helper()
	select {
	case resp, ok := <-c.recv:
		if !ok {
			c.t.Fatalf("stream closed while waiting for %s", typeURL)
		}
		if resp.GetTypeUrl() != typeURL {
			c.t.Fatalf("got a %s delta response %v (removed %v), want %s", resp.GetTypeUrl(), deltaNames(resp), resp.GetRemovedResources(), typeURL)
		}
		return resp
	case <-time.After(waitFor):
		c.t.Fatalf("no %s delta response within %s", typeURL, waitFor)
	}
	return nil
}

func (c *deltaClient) none() {
	c.t.Helper()
	select {
	case resp := <-c.recv:
		c.t.Fatalf("got an unexpected %s delta response %v (removed %v)", resp.GetTypeUrl(), deltaNames(resp), resp.GetRemovedResources())
	case <-time.After(quiet):
	}
}

// sotwNames decodes a response's resources and returns their names, sorted.
func sotwNames(t testing.TB, resp *discoveryv3.DiscoveryResponse) []string {
	t.Helper()
	var names []string
	for _, a := range resp.GetResources() {
		names = append(names, cache.GetResourceName(decode(t, a)))
	}
	slices.Sort(names)
	return names
}

// deltaNames returns a delta response's resource names, sorted, checking
// that each resource's name matches its content.
func deltaNames(resp *discoveryv3.DeltaDiscoveryResponse) []string {
	var names []string
	for _, r := range resp.GetResources() {
		m, err := r.GetResource().UnmarshalNew()
		if err != nil || cache.GetResourceName(m) != r.GetName() {
			names = append(names, fmt.Sprintf("%s(mismatched: %v)", r.GetName(), err))
			continue
		}
		names = append(names, r.GetName())
	}
	slices.Sort(names)
	return names
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func decode(t testing.TB, a *anypb.Any) proto.Message {
	t.Helper()
	m, err := a.UnmarshalNew()
	if err != nil {
		t.Fatalf("decoding %s: %v", a.GetTypeUrl(), err)
	}
	return m
}

// deltaResource decodes the named resource of a delta response into m.
func deltaResource(t testing.TB, resp *discoveryv3.DeltaDiscoveryResponse, name string, m proto.Message) {
	t.Helper()
	for _, r := range resp.GetResources() {
		if r.GetName() == name {
			if err := r.GetResource().UnmarshalTo(m); err != nil {
				t.Fatalf("decoding %s: %v", name, err)
			}
			return
		}
	}
	t.Fatalf("no resource %q in the response (has %v)", name, deltaNames(resp))
}
