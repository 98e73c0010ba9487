package xdsclient_test

import (
	"maps"
	"sync"
	"testing"
	"time"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	loadstatsv3 "github.com/envoyproxy/go-control-plane/envoy/service/load_stats/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/dataplane/xdsclient/lrstest"
	"github.com/kgate/kgate/translator"
)

// counts is a caller's load, which a test changes between reports.
type counts struct {
	mu    sync.Mutex
	loads map[string]xdsclient.Load
}

func (c *counts) set(cluster string, l xdsclient.Load) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.loads[cluster] = l
}

func (c *counts) load() map[string]xdsclient.Load {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.loads)
}

// startReporter runs a LoadReporter of c against a fake LRS server asking
// for settings; before, if set, runs before the reporter starts.
func startReporter(t *testing.T, settings *loadstatsv3.LoadStatsResponse, c *counts, before func(*xdsclient.LoadReporter)) *lrstest.Server {
	t.Helper()
	srv, addr := lrstest.Start(t, settings)
	r, err := xdsclient.NewLoadReporter(dial(t, addr), xdsclient.LoadReportOptions{
		Node:    xdsclient.Node{ID: "reporter", Cluster: "kgate", UserAgent: "kgate-test"},
		Load:    c.load,
		Backoff: fastBackoff,
	})
	if err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(r)
	}
	run(t, r.Run)
	return srv
}

// expectLoad checks one cluster's stats in a report.
func expectLoad(t *testing.T, req lrstest.Request, cluster string, want xdsclient.Load) *endpointv3.ClusterStats {
	t.Helper()
	cs := req.Cluster(cluster)
	if cs == nil {
		t.Fatalf("report %v lacks cluster %s", req.LoadStatsRequest, cluster)
	}
	if n := len(cs.GetUpstreamLocalityStats()); n != 1 {
		t.Fatalf("cluster %s has %d localities, want 1", cluster, n)
	}
	ls := cs.GetUpstreamLocalityStats()[0]
	got := xdsclient.Load{
		InProgress: ls.GetTotalRequestsInProgress(),
		Issued:     ls.GetTotalIssuedRequests(),
		Successful: ls.GetTotalSuccessfulRequests(),
		Errors:     ls.GetTotalErrorRequests(),
	}
	if got != want {
		t.Errorf("cluster %s: load %+v, want %+v", cluster, got, want)
	}
	if zone := ls.GetLocality().GetZone(); zone != translator.Zone {
		t.Errorf("cluster %s: zone %q, want %q", cluster, zone, translator.Zone)
	}
	return cs
}

func TestLoadReporterObeysTheInterval(t *testing.T) {
	const interval = 200 * time.Millisecond
	c := &counts{loads: map[string]xdsclient.Load{"a": {InProgress: 2, Issued: 10, Successful: 7, Errors: 1}}}
	srv := startReporter(t, &loadstatsv3.LoadStatsResponse{SendAllClusters: true, LoadReportingInterval: durationpb.New(interval)}, c, nil)

	first := srv.Next(t)
	if first.GetNode().GetId() != "reporter" || first.GetNode().GetUserAgentName() != "kgate-test" || len(first.GetClusterStats()) != 0 {
		t.Fatalf("first request %v, want the node alone", first.LoadStatsRequest)
	}
	if features := first.GetNode().GetClientFeatures(); len(features) != 1 || features[0] != "envoy.lrs.supports_send_all_clusters" {
		t.Errorf("client features %v, want send_all_clusters support", features)
	}

	// The first report counts everything so far; the later ones what
	// changed since (nothing), with the in-progress count as it is now.
	req := srv.Next(t)
	expectLoad(t, req, "a", xdsclient.Load{InProgress: 2, Issued: 10, Successful: 7, Errors: 1})
	last := req.At
	for range 3 {
		req := srv.Next(t)
		cs := expectLoad(t, req, "a", xdsclient.Load{InProgress: 2})
		gap := req.At.Sub(last)
		last = req.At
		if gap < interval*3/4 || gap > 5*interval {
			t.Errorf("report %s after the previous one, want about %s", gap, interval)
		}
		if d := cs.GetLoadReportInterval().AsDuration(); d < interval*3/4 || d > 5*interval {
			t.Errorf("load_report_interval %s, want about %s", d, interval)
		}
	}
}

func TestLoadReporterReportsNowWhatTheServerAsksFor(t *testing.T) {
	c := &counts{loads: map[string]xdsclient.Load{
		"a": {InProgress: 1, Issued: 3, Successful: 2},
		"b": {Issued: 5, Successful: 4, Errors: 1},
		"c": {InProgress: 9, Issued: 9}, // the server does not ask for c
	}}
	var reporter *xdsclient.LoadReporter
	srv := startReporter(t, &loadstatsv3.LoadStatsResponse{Clusters: []string{"a", "b"}, LoadReportingInterval: durationpb.New(time.Hour)}, c,
		func(r *xdsclient.LoadReporter) {
			reporter = r
			// Asked before the stream exists: sent once the server answers.
			r.ReportNow("a")
		})
	srv.Next(t) // the node
	req := srv.Next(t)
	expectLoad(t, req, "a", xdsclient.Load{InProgress: 1, Issued: 3, Successful: 2})
	if n := len(req.GetClusterStats()); n != 1 {
		t.Fatalf("report of %d clusters, want a alone: %v", n, req.LoadStatsRequest)
	}

	// Every cluster asked for, each with what it did since its own last
	// report; b was never reported, so all of its counts go.
	c.set("a", xdsclient.Load{Issued: 7, Successful: 6, Errors: 1})
	reporter.ReportNow()
	req = srv.Next(t)
	expectLoad(t, req, "a", xdsclient.Load{Issued: 4, Successful: 4, Errors: 1})
	expectLoad(t, req, "b", xdsclient.Load{Issued: 5, Successful: 4, Errors: 1})
	if req.Cluster("c") != nil || len(req.GetClusterStats()) != 2 {
		t.Fatalf("report %v, want a and b only", req.LoadStatsRequest)
	}

	// Counts lower than last reported started again from zero.
	c.set("a", xdsclient.Load{InProgress: 1, Issued: 2, Successful: 1})
	reporter.ReportNow("a", "c")
	expectLoad(t, srv.Next(t), "a", xdsclient.Load{InProgress: 1, Issued: 2, Successful: 1})
	srv.None(t, quiet) // nothing else until the hour has passed
}
