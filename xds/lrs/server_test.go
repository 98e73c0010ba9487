package lrs

import (
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	loadstatsv3 "github.com/envoyproxy/go-control-plane/envoy/service/load_stats/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
)

const (
	hello = "default/hello-00001"
	other = "default/other-00001"
)

func TestFirstResponse(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		want     time.Duration
	}{
		{name: "default", want: time.Second},
		{name: "set", interval: 250 * time.Millisecond, want: 250 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := start(t, Options{Interval: tt.interval})
			r := f.connect(t, envoyNode)
			if !r.first.GetSendAllClusters() {
				t.Error("send_all_clusters is false")
			}
			if got := r.first.GetLoadReportingInterval().AsDuration(); got != tt.want {
				t.Errorf("load_reporting_interval = %s; want %s", got, tt.want)
			}
			if len(r.first.GetClusters()) != 0 {
				t.Errorf("clusters = %v; want none beside send_all_clusters", r.first.GetClusters())
			}
		})
	}
}

// TestGatewaysAddUp: the in-flight counts of every gateway-side reporter
// add up per revision, and each report's issued requests are counted once.
func TestGatewaysAddUp(t *testing.T) {
	f := start(t, Options{})
	envoy := f.connect(t, envoyNode, cluster(hello, 3, 10))
	f.connect(t, grpcNode, cluster(hello, 2, 5), cluster(other, 1, 1))

	checkStats(t, f.srv.Collect(t0), map[string]model.Stat{
		hello: {Concurrency: 3 + 2, Requests: 10 + 5},
		other: {Concurrency: 1, Requests: 1},
	})

	// A second report replaces the first's in-flight count and adds its
	// issued requests; nothing new is issued between two Collects.
	f.clock.set(t0.Add(time.Second))
	envoy.report(cluster(hello, 1, 4))
	checkStats(t, f.srv.Collect(t0.Add(time.Second)), map[string]model.Stat{
		hello: {Concurrency: 1 + 2, Requests: 4},
		other: {Concurrency: 1},
	})
	checkStats(t, f.srv.Collect(t0.Add(time.Second)), map[string]model.Stat{
		hello: {Concurrency: 3},
		other: {Concurrency: 1},
	})
}

// TestClusterTwiceInOneReport: a report may carry a revision's cluster
// more than once (one per EDS service name); the loads add up, and a part
// that would take the sum past belief is left out.
func TestClusterTwiceInOneReport(t *testing.T) {
	f := start(t, Options{})
	f.connect(t, envoyNode, cluster(hello, 2, 2), cluster(hello, 3, 3), cluster(hello, maxCount, 0))
	checkStats(t, f.srv.Collect(t0), map[string]model.Stat{hello: {Concurrency: 5, Requests: 5}})
}

// TestLateReporter: a reporter that falls silent keeps its in-flight
// count within MaxAge and loses it after.
func TestLateReporter(t *testing.T) {
	f := start(t, Options{Interval: time.Second, MaxAge: 3 * time.Second})
	f.connect(t, envoyNode, cluster(hello, 4, 0))
	live := f.connect(t, grpcNode, cluster(hello, 1, 0))

	steps := []struct {
		at   time.Duration
		want float64
	}{
		{at: time.Second, want: 4 + 1},
		{at: 3 * time.Second, want: 4 + 1},
		// The gRPC client reports on time; Envoy stays silent.
		{at: 3*time.Second + time.Millisecond, want: 1},
		{at: 5 * time.Second, want: 1},
	}
	for _, s := range steps {
		now := t0.Add(s.at)
		f.clock.set(now)
		live.report(cluster(hello, 1, 0))
		if got := f.srv.Collect(now)[hello].Concurrency; got != s.want {
			t.Errorf("at +%s: concurrency %v; want %v", s.at, got, s.want)
		}
	}
}

// TestClosedStreamDrops: a closed stream's in-flight count goes at once,
// its issued requests do not.
func TestClosedStreamDrops(t *testing.T) {
	f := start(t, Options{})
	leaving := f.connect(t, envoyNode, cluster(hello, 4, 7))
	f.connect(t, grpcNode, cluster(hello, 1, 0))

	leaving.close()
	checkStats(t, f.srv.Collect(t0), map[string]model.Stat{hello: {Concurrency: 1, Requests: 7}})
}

// TestActivatorReports: the activator's "/pods" reports count for the
// revision and signal demand, but requests both sides see count once.
func TestActivatorReports(t *testing.T) {
	f := start(t, Options{})
	f.connect(t, activNode, cluster(translator.PodsName(hello), 3, 3))
	checkStats(t, f.srv.Collect(t0), map[string]model.Stat{hello: {Concurrency: 3, Requests: 3}})
	if got := f.demanded(); !slices.Equal(got, []string{hello}) {
		t.Errorf("OnDemand got %v; want [%s]", got, hello)
	}

	// In proxy mode the gateway counts the same requests: they count once.
	f.connect(t, envoyNode, cluster(hello, 3, 3))
	checkStats(t, f.srv.Collect(t0), map[string]model.Stat{hello: {Concurrency: 3, Requests: 3}})
}

// TestOnDemand: OnDemand fires, once per revision, for every report that
// shows requests in flight, from either side.
func TestOnDemand(t *testing.T) {
	tests := []struct {
		name    string
		reports [][]*endpointv3.ClusterStats
		want    []string
	}{
		{name: "idle", reports: [][]*endpointv3.ClusterStats{{cluster(hello, 0, 5)}}},
		{
			name:    "first request in flight",
			reports: [][]*endpointv3.ClusterStats{{cluster(hello, 0, 0)}, {cluster(hello, 1, 1)}},
			want:    []string{hello},
		},
		{
			name:    "every report in flight",
			reports: [][]*endpointv3.ClusterStats{{cluster(hello, 2, 2)}, {cluster(hello, 2, 0)}},
			want:    []string{hello, hello},
		},
		{
			name:    "activator",
			reports: [][]*endpointv3.ClusterStats{{cluster(translator.PodsName(hello), 1, 1)}},
			want:    []string{hello},
		},
		{
			name:    "both sides in one report",
			reports: [][]*endpointv3.ClusterStats{{cluster(hello, 1, 1), cluster(translator.PodsName(hello), 1, 1)}},
			want:    []string{hello},
		},
		{
			name:    "not a revision",
			reports: [][]*endpointv3.ClusterStats{{cluster("xds_cluster", 1, 1), cluster("default/hello/pod", 1, 1)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := start(t, Options{})
			r := f.connect(t, envoyNode)
			for _, stats := range tt.reports {
				r.report(stats...)
			}
			if got := f.demanded(); !slices.Equal(got, tt.want) {
				t.Errorf("OnDemand got %v; want %v", got, tt.want)
			}
		})
	}
}

// TestOnDemandHoldsNoLock: OnDemand may call back into the server.
func TestOnDemandHoldsNoLock(t *testing.T) {
	var f *fixture
	locked := make(chan bool, 1)
	f = start(t, Options{OnDemand: func(string) {
		free := f.srv.table.mu.TryLock()
		if free {
			f.srv.table.mu.Unlock()
		}
		locked <- !free
	}})
	f.connect(t, envoyNode, cluster(hello, 1, 1))
	if <-locked {
		t.Error("OnDemand was called with the table locked")
	}
}

// TestBadInput: input that makes no sense is ignored, and the stream goes
// on.
func TestBadInput(t *testing.T) {
	tests := []struct {
		name  string
		stats []*endpointv3.ClusterStats
	}{
		{name: "no cluster", stats: []*endpointv3.ClusterStats{{}}},
		{name: "envoy's own cluster", stats: []*endpointv3.ClusterStats{cluster("xds_cluster", 1, 1)}},
		{name: "not ns/rev", stats: []*endpointv3.ClusterStats{cluster("a/b/c", 1, 1), cluster("/", 1, 1), cluster("A/B", 1, 1)}},
		{name: "huge name", stats: []*endpointv3.ClusterStats{cluster(strings.Repeat("a/", 1<<20), 1, 1)}},
		{name: "huge in flight", stats: []*endpointv3.ClusterStats{cluster(hello, math.MaxUint64, 0)}},
		{name: "huge issued", stats: []*endpointv3.ClusterStats{cluster(hello, 0, math.MaxUint64)}},
		{name: "sum past the bound", stats: []*endpointv3.ClusterStats{{
			ClusterName: hello,
			UpstreamLocalityStats: []*endpointv3.UpstreamLocalityStats{
				{TotalRequestsInProgress: maxCount},
				{TotalRequestsInProgress: maxCount},
			},
		}}},
		{name: "no localities", stats: []*endpointv3.ClusterStats{{ClusterName: hello}}},
		{name: "empty locality", stats: []*endpointv3.ClusterStats{{ClusterName: hello, UpstreamLocalityStats: []*endpointv3.UpstreamLocalityStats{{}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := start(t, Options{})
			r := f.connect(t, nil, tt.stats...)
			r.report(tt.stats...)
			for rev, s := range f.srv.Collect(t0) {
				if s != (model.Stat{}) {
					t.Errorf("Collect[%s] = %+v; want nothing", rev, s)
				}
			}
			if got := f.demanded(); len(got) != 0 {
				t.Errorf("OnDemand got %v; want nothing", got)
			}
			r.report(cluster(other, 2, 2))
			want := model.Stat{Concurrency: 2, Requests: 2}
			if got := f.srv.Collect(t0)[other]; got != want {
				t.Errorf("Collect after a good report = %+v; want %+v", got, want)
			}
		})
	}
}

// TestMissingNode: a reporter that sends no node is served all the same.
func TestMissingNode(t *testing.T) {
	f := start(t, Options{})
	r := f.connect(t, nil, cluster(hello, 2, 2))
	if !r.first.GetSendAllClusters() {
		t.Error("send_all_clusters is false")
	}
	checkStats(t, f.srv.Collect(t0), map[string]model.Stat{hello: {Concurrency: 2, Requests: 2}})
}

// TestStopEndsStreams: Stop ends the open streams and refuses new ones,
// with Unavailable so that reporters reconnect; their in-flight counts go.
func TestStopEndsStreams(t *testing.T) {
	f := start(t, Options{})
	r := f.connect(t, envoyNode, cluster(hello, 2, 2))

	f.srv.Stop()
	if err := waitEnd(r.stream); status.Code(err) != codes.Unavailable {
		t.Errorf("the open stream ended with %v; want Unavailable", err)
	}
	late := openStream(t, f.conn)
	// The server may refuse the stream before the request is sent; grpc-go
	// then returns io.EOF from Send and keeps the status for Recv.
	if err := late.Send(&loadstatsv3.LoadStatsRequest{Node: envoyNode}); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("sending: %v", err)
	}
	if err := waitEnd(late); status.Code(err) != codes.Unavailable {
		t.Errorf("a new stream ended with %v; want Unavailable", err)
	}
	checkStats(t, f.srv.Collect(t0), map[string]model.Stat{hello: {Requests: 2}})
}
