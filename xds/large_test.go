package xds

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
)

// The large-config tests: a fleet whose resources of one type pass
// grpc-go's default 4 MiB receive limit reaches a client in responses
// within the budget, and every part is ACK-tracked.

// grpcDefaultRecvLimit is grpc-go's default receive limit, which a whole
// type's first response passed before responses were split.
const grpcDefaultRecvLimit = 4 << 20

// knativeFleet is fleet with the hosts Knative gives each Service: the
// external one and the three cluster-local ones, 4n virtual hosts in 2n
// route configurations, as kube mode serves them.
func knativeFleet(n int) model.Config {
	cfg := fleet(n)
	for i := range cfg.Services {
		svc := &cfg.Services[i]
		splits := svc.VirtualHosts[0].Routes[0].Splits
		for _, host := range []string{".default", ".default.svc", ".default.svc.cluster.local"} {
			svc.VirtualHosts = append(svc.VirtualHosts, vhost(svc.Name+host, model.ClusterLocal, splits...))
		}
	}
	return cfg
}

// partBytes is what a delta response's resources and removals take: its
// size without the fields every response has.
func partBytes(resp *discoveryv3.DeltaDiscoveryResponse) int {
	header := &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resp.GetTypeUrl(), SystemVersionInfo: resp.GetSystemVersionInfo(), Nonce: resp.GetNonce()}
	return proto.Size(resp) - proto.Size(header)
}

// setMaxDeltaBytes lowers a cache's budget, so that a small fleet splits.
func setMaxDeltaBytes(c *typeCache, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maxBytes = n
}

// cacheBytes is what every resource of a cache adds to delta responses.
func cacheBytes(c *typeCache) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	for _, e := range c.resources {
		total += e.size
	}
	return total
}

// Each part of a split response is tracked by its own nonce: a resource is
// ACKed once the part carrying it is, and when every part is, Acked reports
// every resource at the version sent.
func TestEveryPartOfASplitResponseIsACKed(t *testing.T) {
	h := newHarness(t, fleet(30))
	rds := h.srv.caches[resource.RouteType]
	// About four route configurations a part.
	setMaxDeltaBytes(rds, 4*cacheBytes(rds)/30)

	c := h.delta(t, gatewayNode)
	c.subscribe(resource.RouteType)
	sent := map[string]string{}
	var parts []*discoveryv3.DeltaDiscoveryResponse
	for len(sent) < 30 {
		resp := c.next(resource.RouteType)
		parts = append(parts, resp)
		for _, r := range resp.GetResources() {
			if _, twice := sent[r.GetName()]; twice {
				t.Fatalf("%s sent twice", r.GetName())
			}
			sent[r.GetName()] = r.GetVersion()
		}
		if len(sent) < 30 {
			c.ack(resp)
		}
	}
	if len(parts) < 5 {
		t.Fatalf("%d parts, want the budget to split the 30 route configurations in at least 5", len(parts))
	}

	// Every part but the last is ACKed: its resources are, the last's not.
	acked := func(name string) string {
		acks := h.srv.Acked(resource.RouteType, name)
		if len(acks) != 1 {
			return fmt.Sprintf("%d streams", len(acks))
		}
		return acks[0].Version
	}
	last := parts[len(parts)-1]
	waitUntil(t, "the parts before the last to be ACKed", func() bool {
		for _, part := range parts[:len(parts)-1] {
			for _, r := range part.GetResources() {
				if acked(r.GetName()) != r.GetVersion() {
					return false
				}
			}
		}
		return true
	})
	for _, r := range last.GetResources() {
		if v := acked(r.GetName()); v != "" {
			t.Errorf("%s ACKed at %q before the part carrying it was", r.GetName(), v)
		}
	}

	c.ack(last)
	waitUntil(t, "every route configuration to be ACKed", func() bool {
		for name, version := range sent {
			if acked(name) != version {
				return false
			}
		}
		return true
	})
	c.none()
}

// State-of-the-world CDS is the full state in every response, so it is
// never split, however far past the budget; the same clusters over delta
// come in parts.
func TestStateOfTheWorldIsNeverSplit(t *testing.T) {
	// About 1.4 MiB of clusters.
	const revisions = 2500
	h := newHarness(t, model.Config{})
	cds := h.srv.caches[resource.ClusterType]
	clusters := map[string]types.Resource{}
	for i := range revisions {
		for _, c := range translator.Revision(revision(fmt.Sprintf("rev-%d", i)), translator.Options{}).Clusters {
			clusters[c.GetName()] = c
		}
	}
	if err := cds.UpdateResources(clusters, nil); err != nil {
		t.Fatal(err)
	}
	if total := cacheBytes(cds); total <= DefaultMaxDeltaResponseBytes {
		t.Fatalf("%d bytes of clusters, within the budget: the test proves nothing", total)
	}

	sotw := h.sotw(t, gatewayNode)
	sotw.subscribe(resource.ClusterType)
	if got := len(sotw.next(resource.ClusterType).GetResources()); got != revisions {
		t.Errorf("state of the world: %d clusters in the response, want all %d", got, revisions)
	}

	delta := h.delta(t, gatewayNode)
	delta.subscribe(resource.ClusterType)
	if got := len(delta.next(resource.ClusterType).GetResources()); got >= revisions {
		t.Errorf("delta: %d clusters in the first response, want fewer than %d", got, revisions)
	}
}

// waitUntil polls cond until it holds, failing the test after waitFor.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testrun.Poll{Within: waitFor, Every: 5 * time.Millisecond}.Until(t, what, cond)
}

// largeFleet is the fleet TestALargeFleetReachesADefaultClient serves: 5,000
// Services, 20,000 virtual hosts, more than 4 MiB of route configurations.
// BenchmarkLargeFleetSync also runs 10,000, too slow for go test -race.
const largeFleet = 5000

// largeFleetWithin bounds how long a client takes to receive it: a bound
// against receiving nothing ever, as before, not a performance figure
// (BenchmarkLargeFleetSync is: about 0.6 s), so it leaves room for the race
// detector on a loaded machine (13 s at worst seen).
const largeFleetWithin = time.Minute

// At 5,000 Services the route configurations pass 4 MiB: kgate's own client
// with its default options, subscribed to all of them, once received none
// and reported nothing. Split, they arrive in parts within the budget, and
// the server tracks the ACK of each.
func TestALargeFleetReachesADefaultClient(t *testing.T) {
	n := largeFleet
	if testing.Short() {
		n = largeFleet / 10
	}
	start := time.Now()
	l := serveRoutes(t, n)
	if total := cacheBytes(l.rds); n == largeFleet && total <= grpcDefaultRecvLimit {
		t.Fatalf("%d Services make %d bytes of route configurations, within grpc-go's default limit: the test proves nothing", n, total)
	}
	setup := time.Since(start)

	got := l.follow(t, "large-gateway")
	largest := 0
	for i, resp := range got.parts {
		size := partBytes(resp)
		largest = max(largest, size)
		if size > DefaultMaxDeltaResponseBytes && len(resp.GetResources()) > 1 {
			t.Errorf("message %d carries %d bytes of %d resources, past the budget of %d", i, size, len(resp.GetResources()), DefaultMaxDeltaResponseBytes)
		}
	}
	if least := cacheBytes(l.rds) / DefaultMaxDeltaResponseBytes; len(got.parts) <= least {
		t.Errorf("%d messages, want more than %d", len(got.parts), least)
	}
	if got.logs != "" {
		t.Errorf("the client logged:\n%s", got.logs)
	}
	t.Logf("%d Services: setup %v, %d route configurations (%d bytes) received in %v, %d messages of at most %d bytes",
		n, setup.Round(time.Millisecond), 2*n, cacheBytes(l.rds), got.took.Round(time.Millisecond), len(got.parts), largest)
}

// BenchmarkLargeFleetSync measures how long a client subscribed to every
// route configuration takes to hold them all, from its first request to
// the server's record of its last ACK.
func BenchmarkLargeFleetSync(b *testing.B) {
	for _, n := range []int{largeFleet, 2 * largeFleet} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			l := serveRoutes(b, n)
			var messages int
			for i := 0; b.Loop(); i++ {
				messages += len(l.follow(b, fmt.Sprint("bench-gateway-", i)).parts)
			}
			b.ReportMetric(float64(messages)/float64(b.N), "messages/sync")
			b.ReportMetric(float64(cacheBytes(l.rds)), "route-bytes")
		})
	}
}

// routeServer is a server holding the route configurations of n Services
// of knativeFleet, and nothing else.
type routeServer struct {
	h   *harness
	rds *typeCache
	n   int
}

func serveRoutes(tb testing.TB, n int) *routeServer {
	tb.Helper()
	// Only the route configurations are served, put in the cache as the
	// translator makes them (the engine's output is Translate's): the
	// other types would triple the setup under the race detector.
	h := newHarness(tb, model.Config{})
	rds := h.srv.caches[resource.RouteType]
	routes := map[string]types.Resource{}
	for _, rc := range translator.Translate(model.Config{Services: knativeFleet(n).Services}, translator.Options{}).Routes {
		routes[rc.GetName()] = rc
	}
	if err := rds.UpdateResources(routes, nil); err != nil {
		tb.Fatal(err)
	}
	return &routeServer{h: h, rds: rds, n: n}
}

// routeSync is what a client received following a routeServer.
type routeSync struct {
	// parts are the responses, in order.
	parts []*discoveryv3.DeltaDiscoveryResponse
	// took is how long the client took to hold every virtual host.
	took time.Duration
	// logs is what the client logged at warning level and above.
	logs string
}

// follow runs a kgate xDS client with default options, as node id,
// subscribed to every route configuration, until it holds every virtual
// host and the server has recorded its ACK of every route configuration.
func (l *routeServer) follow(tb testing.TB, id string) routeSync {
	tb.Helper()
	var mu sync.Mutex
	var parts []*discoveryv3.DeltaDiscoveryResponse
	record := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		s, err := streamer(ctx, desc, cc, method, opts...)
		return recordingStream{s, func(resp *discoveryv3.DeltaDiscoveryResponse) {
			mu.Lock()
			defer mu.Unlock()
			parts = append(parts, resp)
		}}, err
	}
	conn := testrun.Dial(tb, l.h.conn.Target(), grpc.WithStreamInterceptor(record))
	defer conn.Close()

	logs := &testrun.Buffer{}
	client, err := xdsclient.New(conn, xdsclient.Options{
		Node:   xdsclient.Node{ID: id, Cluster: "kgate"},
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		tb.Fatal(err)
	}
	var hostsMu sync.Mutex
	held := map[string]string{} // route configuration → version
	hosts := map[string]bool{}
	client.Watch(resource.RouteType, func(u xdsclient.Update) error {
		hostsMu.Lock()
		defer hostsMu.Unlock()
		for _, r := range u.Resources {
			held[r.Name] = r.Version
			for _, vh := range r.Message.(*routev3.RouteConfiguration).GetVirtualHosts() {
				hosts[vh.GetName()] = true
			}
		}
		return nil
	}, xdsclient.Wildcard)
	start := time.Now()
	stop := testrun.Go(tb, context.Background(), "Run", waitFor, client.Run)
	defer stop()

	testrun.Poll{Within: largeFleetWithin, Every: 10 * time.Millisecond}.Until(tb,
		fmt.Sprintf("the client to hold all %d virtual hosts", 4*l.n), func() bool {
			hostsMu.Lock()
			defer hostsMu.Unlock()
			return len(hosts) == 4*l.n
		})
	took := time.Since(start)

	hostsMu.Lock()
	versions := maps.Clone(held)
	hostsMu.Unlock()
	if len(versions) != 2*l.n {
		tb.Errorf("the client holds %d route configurations, want %d", len(versions), 2*l.n)
	}
	waitUntil(tb, "the server to record the client's ACK of every route configuration", func() bool {
		for name, version := range versions {
			if ackedBy(l.h.srv.Acked(resource.RouteType, name), id) != version {
				return false
			}
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	return routeSync{parts: parts, took: took, logs: logs.String()}
}

// ackedBy is the version the node id ACKed among acks.
func ackedBy(acks []NodeACK, id string) string {
	for _, a := range acks {
		if a.NodeID == id {
			return a.Version
		}
	}
	return ""
}

// recordingStream hands every delta response its stream receives to seen.
type recordingStream struct {
	grpc.ClientStream
	seen func(*discoveryv3.DeltaDiscoveryResponse)
}

func (s recordingStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if resp, ok := m.(*discoveryv3.DeltaDiscoveryResponse); ok && err == nil {
		s.seen(proto.Clone(resp).(*discoveryv3.DeltaDiscoveryResponse))
	}
	return err
}
