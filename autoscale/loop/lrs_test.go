package loop_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	loadstatsv3 "github.com/envoyproxy/go-control-plane/envoy/service/load_stats/v3"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/autoscale"
	"github.com/kgate/kgate/autoscale/loop"
	"github.com/kgate/kgate/deploy/inprocess"
	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/xds"
	"github.com/kgate/kgate/xds/lrs"
)

// clock is the fake time the LRS server and the loop share.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

type noEndpoints struct{}

func (noEndpoints) SetEndpoints(model.RevisionEndpoints) error { return nil }
func (noEndpoints) DeleteEndpoints(string) error               { return nil }

// A reporter speaking LRS over a real gRPC stream drives the real loop:
// 50 requests in flight at target 10 and 100 % utilization run 5 pods;
// when the reporter falls silent without closing its stream, its load
// ages out and the revision scales back down.
func TestLoadReportsDriveTheLoop(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	lrsSrv := lrs.New(lrs.Options{Now: clk.Now})
	srv := xds.NewServer(ctx, xds.ServerOptions{Services: []xds.Service{lrsSrv}})
	lis := testrun.Listen(t)
	testrun.Go(t, ctx, "Serve", 10*time.Second, func(ctx context.Context) error { return srv.Serve(ctx, lis) })
	t.Cleanup(cancel) // before Go's cleanup: the server's context ends with Serve's

	var l *loop.Loop
	dep, err := inprocess.New(inprocess.Options{
		Handler:  func(string) http.Handler { return http.NotFoundHandler() },
		OnChange: func(rev string) { l.EndpointsChanged(rev) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dep.Close)
	l, err = loop.New(loop.Options{Deployer: dep, Endpoints: noEndpoints{}, Metrics: lrsSrv})
	if err != nil {
		t.Fatal(err)
	}
	const rev = "default/hello-00001"
	cfg := config.DefaultAutoscaler()
	cfg.StableWindow = 6 * time.Second // the shortest Knative allows: a short test
	l.Configure(ctx, clk.Now(), cfg, []loop.Revision{{Key: rev, Spec: autoscale.RevisionSpec{Annotations: map[string]string{
		"autoscaling.knative.dev/target":                        "10",
		"autoscaling.knative.dev/target-utilization-percentage": "100",
	}}}})

	// The reporter: an Envoy gateway's LRS stream.
	conn := testrun.Dial(t, lis.Addr().String())
	stream, err := loadstatsv3.NewLoadReportingServiceClient(conn).StreamLoadStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	report := func(inFlight uint64) {
		t.Helper()
		err := stream.Send(&loadstatsv3.LoadStatsRequest{
			Node: &corev3.Node{Id: "envoy-1", UserAgentName: "envoy"},
			ClusterStats: []*endpointv3.ClusterStats{{ClusterName: rev, UpstreamLocalityStats: []*endpointv3.UpstreamLocalityStats{{
				Locality: &corev3.Locality{Zone: "kgate"}, TotalRequestsInProgress: inFlight, TotalIssuedRequests: inFlight,
			}}}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// reported sends a report and waits until the server has applied it,
	// so that it is stamped with the fake time of this second. Its issued
	// requests show up in exactly one Collect: that is the sign. (The
	// test's metric is concurrency, so the loop need not see them.)
	reported := func(inFlight uint64) {
		t.Helper()
		report(inFlight)
		deadline := time.Now().Add(5 * time.Second)
		for lrsSrv.Collect(clk.Now())[rev].Requests != float64(inFlight) {
			if time.Now().After(deadline) {
				t.Fatal("a report never reached the server")
			}
			time.Sleep(time.Millisecond)
		}
	}
	report(0)
	if _, err := stream.Recv(); err != nil { // the server's answer: interval and clusters
		t.Fatal(err)
	}

	// second is one second of Run: the pods the deployer made ready are
	// seen (its notifications), load is sampled, and every other second
	// the loop decides.
	second := func() {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for int32(len(dep.Ready(rev))) != dep.Replicas(rev) {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d pods ready after 5 s", len(dep.Ready(rev)), dep.Replicas(rev))
			}
			time.Sleep(time.Millisecond)
		}
		now := clk.advance(time.Second)
		l.Handle(ctx, now)
		l.Sample(ctx, now)
		if now.Unix()%2 == 0 {
			l.Tick(ctx, now)
		}
	}
	for range 20 {
		reported(50)
		second()
	}
	if got := dep.Replicas(rev); got != 5 {
		t.Fatalf("under 50 in flight at target 10: %d replicas, want 5", got)
	}

	// Silence: the stream stays open, nothing is sent.
	for range 60 {
		second()
	}
	if got := lrsSrv.Collect(clk.Now())[rev].Concurrency; got != 0 {
		t.Errorf("a minute after the reporter fell silent it still counts %v in flight", got)
	}
	if got := dep.Replicas(rev); got >= 5 {
		t.Errorf("a minute after the load stopped: %d replicas, want fewer than 5", got)
	}
}
