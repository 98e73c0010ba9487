//go:build unix

package lrs

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	loadstatsv3 "github.com/envoyproxy/go-control-plane/envoy/service/load_stats/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/internal/transportbench"
	"github.com/kgate/kgate/pki"
	"github.com/kgate/kgate/xds"
	"github.com/kgate/kgate/xds/auth"
)

// BenchmarkTransport/loadreport: a gateway's LRS stream, served next to
// xDS on the xds.Server's gRPC server as kgate serves it, sends a burst of
// reports of n clusters' load each, and the clock stops once the server
// has applied the last; over plaintext and over mutual TLS, in interleaved
// rounds within one process, as xds's BenchmarkTransport does:
//
//	benchstat -col /transport -ignore /round out.txt
//
// A burst of 1 is one report's round trip; a burst of 64 (as many as the
// fixture's applied channel holds) keeps the stream busy, so that its
// ns/report is the cost of a report's bytes and their application. The
// streams are open, and TLS's handshake done, before any clock starts.
// Per operation (one burst), wire-B/op counts the bytes both ways on the
// server's side of the socket, and cpu-ns/op the CPU the process (client,
// server and runtime) spent, user and system: other work on the machine
// moves it less than sec/op. Unix-only for that (getrusage).
func BenchmarkTransport(b *testing.B) {
	b.Run("loadreport", func(b *testing.B) {
		for _, n := range []int{100, 1000} {
			b.Run(fmt.Sprintf("clusters=%d", n), func(b *testing.B) {
				req := &loadstatsv3.LoadStatsRequest{ClusterStats: benchClusters(n)}
				reporters := map[string]*benchReporter{}
				for _, tr := range []string{transportbench.Plaintext, transportbench.MTLS} {
					reporters[tr] = newBenchReporter(b, req, tr)
				}
				for _, burst := range []int{1, 64} {
					b.Run(fmt.Sprintf("burst=%d", burst), func(b *testing.B) {
						transportbench.RunRounds(b, func(b *testing.B, tr string) {
							benchLoadReport(b, reporters[tr], req, burst)
						})
					})
				}
			})
		}
	})
}

// benchClusters is one report's stats: n revisions' clusters, as a
// gateway reports them, each with requests in flight.
func benchClusters(n int) []*endpointv3.ClusterStats {
	stats := make([]*endpointv3.ClusterStats, n)
	for i := range stats {
		stats[i] = cluster(fmt.Sprintf("default/svc-%d-00001", i), 3, 17)
	}
	return stats
}

// benchReporter is an LRS server served on loopback over one transport,
// and a gateway's open stream to it.
type benchReporter struct {
	f      *fixture
	stream loadstatsv3.LoadReportingService_StreamLoadStatsClient
	// wire counts the bytes read and written on the server's connections.
	wire *atomic.Int64
}

// newBenchReporter serves a new fixture's Server next to xDS, as kgate
// does, and opens a gateway's stream to it, its first report (req, with
// the node) applied.
func newBenchReporter(b *testing.B, req *loadstatsv3.LoadStatsRequest, tr string) *benchReporter {
	b.Helper()
	gate := auth.NewGate(auth.Limits{}, nil)
	f := newFixture(Options{Gate: gate, OnDemand: func(string) {}})
	sopts := xds.ServerOptions{Services: []xds.Service{f.srv}, Gate: gate}
	var client *tls.Config
	if tr == transportbench.MTLS {
		server, gateway := transportbench.Bundles(b, pki.Identity{Role: pki.Gateway, ID: envoyNode.GetId()})
		sopts.TLS = pki.ServerConfig(pki.Static{B: server})
		client = pki.ClientConfig(pki.Static{B: gateway})
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := xds.NewServer(ctx, sopts)
	wire := &atomic.Int64{}
	lis := &transportbench.CountingListener{Listener: testrun.Listen(b), N: wire}
	testrun.Go(b, ctx, "Serve", waitFor, func(ctx context.Context) error { return srv.Serve(ctx, lis) })
	b.Cleanup(cancel)

	var conn *grpc.ClientConn
	if client == nil {
		conn = testrun.Dial(b, lis.Addr().String())
	} else {
		var err error
		if conn, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(client))); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
	}
	sctx, scancel := context.WithCancel(context.Background())
	b.Cleanup(scancel)
	stream, err := loadstatsv3.NewLoadReportingServiceClient(conn).StreamLoadStats(sctx)
	if err != nil {
		b.Fatalf("opening a load report stream: %v", err)
	}
	// The first request names the node and is answered: the stream
	// counts from then on.
	if err := stream.Send(&loadstatsv3.LoadStatsRequest{Node: envoyNode, ClusterStats: req.GetClusterStats()}); err != nil {
		b.Fatalf("sending the first request: %v", err)
	}
	if _, err := stream.Recv(); err != nil {
		b.Fatalf("receiving the first response: %v", err)
	}
	waitAppliedB(b, f)
	return &benchReporter{f: f, stream: stream, wire: wire}
}

func benchLoadReport(b *testing.B, r *benchReporter, req *loadstatsv3.LoadStatsRequest, burst int) {
	iters := 0
	start, cpu := r.wire.Load(), transportbench.CPUTime(b)
	for b.Loop() {
		for range burst {
			if err := r.stream.Send(req); err != nil {
				b.Fatalf("sending a report: %v", err)
			}
		}
		for range burst {
			waitAppliedB(b, r.f)
		}
		iters++
	}
	cpu = transportbench.CPUTime(b) - cpu
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(iters), "cpu-ns/op")
	b.ReportMetric(float64(r.wire.Load()-start)/float64(iters), "wire-B/op")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(iters*burst), "ns/report")
	if got := len(r.f.srv.Collect(r.f.clock.Now())); got != len(req.GetClusterStats()) {
		b.Fatalf("Collect has %d revisions, want %d", got, len(req.GetClusterStats()))
	}
}

// waitAppliedB is fixture.waitApplied for a benchmark.
func waitAppliedB(b *testing.B, f *fixture) {
	b.Helper()
	select {
	case <-f.applied:
	case <-time.After(waitFor):
		b.Fatal("the server did not apply the report")
	}
}
