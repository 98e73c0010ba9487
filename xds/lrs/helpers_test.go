package lrs

import (
	"context"
	"errors"
	"io"
	"maps"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	loadstatsv3 "github.com/envoyproxy/go-control-plane/envoy/service/load_stats/v3"
	"google.golang.org/grpc"

	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
)

// The stream tests run a real Server over loopback gRPC, with the Envoy
// protos' client as the reporter.

// waitFor bounds every wait.
const waitFor = 5 * time.Second

var (
	envoyNode = &corev3.Node{Id: "envoy-1", UserAgentName: "envoy"}
	grpcNode  = &corev3.Node{Id: "grpc-1", UserAgentName: "gRPC Go"}
	activNode = &corev3.Node{Id: "activator-1", UserAgentName: "kgate-activator"}
)

// fixture is a Server serving on loopback, with a fake clock.
type fixture struct {
	srv     *Server
	conn    *grpc.ClientConn
	clock   *fakeClock
	applied chan struct{}
	demand  chan string
}

// newFixture builds a Server from opts, not yet served. Unless opts sets
// them, the clock is the fixture's and OnDemand records into f.demand.
func newFixture(opts Options) *fixture {
	f := &fixture{
		clock:   &fakeClock{now: t0},
		applied: make(chan struct{}, 64),
		demand:  make(chan string, 64),
	}
	if opts.Now == nil {
		opts.Now = f.clock.Now
	}
	if opts.OnDemand == nil {
		opts.OnDemand = func(rev string) { f.demand <- rev }
	}
	f.srv = New(opts)
	f.srv.applied = func() { f.applied <- struct{}{} }
	return f
}

// start serves a new fixture's Server on loopback until the test ends.
func start(t *testing.T, opts Options) *fixture {
	t.Helper()
	f := newFixture(opts)
	lis := testrun.Listen(t)
	g := grpc.NewServer()
	f.srv.Register(g)
	served := make(chan error, 1)
	go func() { served <- g.Serve(lis) }()
	f.conn = testrun.Dial(t, lis.Addr().String())
	t.Cleanup(func() {
		f.srv.Stop()
		g.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return f
}

// demanded returns the revisions OnDemand was called with so far, in
// order. The server calls OnDemand before it signals the report applied,
// so after waitApplied nothing is missing.
func (f *fixture) demanded() []string {
	var revs []string
	for {
		select {
		case rev := <-f.demand:
			revs = append(revs, rev)
		default:
			return revs
		}
	}
}

func (f *fixture) waitApplied(t *testing.T) {
	t.Helper()
	select {
	case <-f.applied:
	case <-time.After(waitFor):
		t.Fatal("the server did not apply the report")
	}
}

// reporter is one LRS stream, as Envoy or grpc-go opens it.
type reporter struct {
	t      *testing.T
	f      *fixture
	stream loadstatsv3.LoadReportingService_StreamLoadStatsClient
	// first is the server's answer to the first request.
	first *loadstatsv3.LoadStatsResponse
}

// connect opens a stream, sends the first request with node (nil for
// none) and stats, and waits for the answer and for the server to apply
// the request.
func (f *fixture) connect(t *testing.T, node *corev3.Node, stats ...*endpointv3.ClusterStats) *reporter {
	t.Helper()
	stream := openStream(t, f.conn)
	if err := stream.Send(&loadstatsv3.LoadStatsRequest{Node: node, ClusterStats: stats}); err != nil {
		t.Fatalf("sending the first request: %v", err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatalf("receiving the first response: %v", err)
	}
	f.waitApplied(t)
	return &reporter{t: t, f: f, stream: stream, first: first}
}

// openStream opens an LRS stream that ends with the test.
func openStream(t *testing.T, conn *grpc.ClientConn) loadstatsv3.LoadReportingService_StreamLoadStatsClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := loadstatsv3.NewLoadReportingServiceClient(conn).StreamLoadStats(ctx)
	if err != nil {
		t.Fatalf("opening a load report stream: %v", err)
	}
	return stream
}

// report sends one report and waits for the server to apply it.
func (r *reporter) report(stats ...*endpointv3.ClusterStats) {
	r.t.Helper()
	if err := r.stream.Send(&loadstatsv3.LoadStatsRequest{ClusterStats: stats}); err != nil {
		r.t.Fatalf("sending a report: %v", err)
	}
	r.f.waitApplied(r.t)
}

// close closes the stream and waits for the server to end it.
func (r *reporter) close() {
	r.t.Helper()
	if err := r.stream.CloseSend(); err != nil {
		r.t.Fatalf("closing the stream: %v", err)
	}
	if err := waitEnd(r.stream); !errors.Is(err, io.EOF) {
		r.t.Fatalf("the stream ended with %v; want io.EOF", err)
	}
}

// waitEnd waits for the server to end a stream and returns how it ended.
func waitEnd(stream loadstatsv3.LoadReportingService_StreamLoadStatsClient) error {
	ended := make(chan error, 1)
	go func() {
		for {
			if _, err := stream.Recv(); err != nil {
				ended <- err
				return
			}
		}
	}()
	select {
	case err := <-ended:
		return err
	case <-time.After(waitFor):
		return errors.New("the stream did not end")
	}
}

// cluster is one cluster's stats, in one locality as grpc-go sends them.
func cluster(name string, inFlight, issued uint64) *endpointv3.ClusterStats {
	return &endpointv3.ClusterStats{
		ClusterName: name,
		UpstreamLocalityStats: []*endpointv3.UpstreamLocalityStats{{
			Locality:                &corev3.Locality{Zone: translator.Zone},
			TotalRequestsInProgress: inFlight,
			TotalIssuedRequests:     issued,
			TotalSuccessfulRequests: issued,
		}},
	}
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) set(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = now
}

// checkStats fails the test when a Collect's result is not want.
func checkStats(t *testing.T, got, want map[string]model.Stat) {
	t.Helper()
	if !maps.Equal(got, want) {
		t.Errorf("Collect = %v; want %v", got, want)
	}
}
