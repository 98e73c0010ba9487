package xds

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kgate/kgate/internal/promtest"
	"github.com/kgate/kgate/internal/testrun"
)

// TestMetricsFollowPushesACKsAndNACKs scrapes the server's registry over
// HTTP while a gateway connects, is pushed a change, NACKs it and leaves.
func TestMetricsFollowPushesACKsAndNACKs(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	reg := prometheus.NewRegistry()
	srv := NewServer(ctx, ServerOptions{Registerer: reg})
	eng, err := NewEngine(srv, EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Update(hello()); err != nil {
		t.Fatal(err)
	}
	lis := testrun.Listen(t)
	conn := dial(t, lis.Addr().String())
	testrun.Go(t, ctx, "Serve", waitFor, func(ctx context.Context) error { return srv.Serve(ctx, lis) })
	t.Cleanup(cancel)
	url := promtest.Serve(t, reg)

	route := routeName("external", "hello")
	rds := map[string]string{"type_url": resource.RouteType}
	node := map[string]string{"node_id": gatewayNode.GetId()}
	// Long enough to be truncated, with a multi-byte character at the cut.
	longErr := "route " + route + ": " + strings.Repeat("x", 190) + "é" + strings.Repeat("y", 50)

	t.Run("connected", func(t *testing.T) {
		c := deltaOn(t, conn, gatewayNode)
		c.subscribe(resource.RouteType, route)
		c.ack(c.next(resource.RouteType))
		waitMetric(t, url, "kgate_xds_ack_lag_seconds", node, func(float64) bool { return true })
		// A scrape gathers each metric on its own: what was recorded
		// before the condition held shows in a scrape started after.
		f := promtest.Scrape(t, url)
		expect(t, f, "kgate_xds_connected_clients", map[string]string{"role": "anonymous"}, 1)
		expect(t, f, "kgate_control_plane_refusals_total", map[string]string{"reason": "node_id"}, 0)
		expect(t, f, "kgate_xds_pushes_total", rds, 1)
		expect(t, f, "kgate_xds_resources_pushed_total", rds, 1)
		// The initial fetch answers a subscription, not a change.
		if n, _ := f.Value("kgate_xds_push_latency_seconds", rds); n != 0 {
			t.Errorf("push latency observed %v times for the initial fetch, want 0", n)
		}

		if err := eng.SetService(helloWithTimeout(time.Hour)); err != nil {
			t.Fatal(err)
		}
		c.nack(c.next(resource.RouteType), longErr)
		waitMetric(t, url, "kgate_xds_last_nack_info", map[string]string{"type_url": resource.RouteType}, func(v float64) bool { return v == 1 })
		f = promtest.Scrape(t, url)
		expect(t, f, "kgate_xds_nacks_total", rds, 1)
		expect(t, f, "kgate_xds_pushes_total", rds, 2)
		expect(t, f, "kgate_xds_resources_pushed_total", rds, 2)
		expect(t, f, "kgate_xds_push_latency_seconds", rds, 1)
		h := f.Find("kgate_xds_push_latency_seconds", rds)[0].GetHistogram()
		if s := h.GetSampleSum(); s <= 0 || s > waitFor.Seconds() {
			t.Errorf("push latency %vs, want within (0, %v]", s, waitFor.Seconds())
		}
		if b := h.GetBucket()[0].GetUpperBound(); b != 0.0001 {
			t.Errorf("first push latency bucket %v, want 100µs", b)
		}
		info := f.Find("kgate_xds_last_nack_info", rds)
		if len(info) != 1 {
			t.Fatalf("%d kgate_xds_last_nack_info series for RDS, want 1", len(info))
		}
		got := promtest.Label(info[0], "error")
		if len(got) > maxNACKErrorLen || !strings.HasPrefix(longErr, got) || len(got) < maxNACKErrorLen-1 {
			t.Errorf("NACK error label %q (%d bytes), want the first ≤%d bytes of the error", got, len(got), maxNACKErrorLen)
		}

		// A second NACK replaces the last error: one series per type.
		if err := eng.SetService(helloWithTimeout(2 * time.Hour)); err != nil {
			t.Fatal(err)
		}
		c.nack(c.next(resource.RouteType), "second")
		// One scrape gathers each metric on its own: poll for both.
		waitMetric(t, url, "kgate_xds_nacks_total", rds, func(v float64) bool { return v == 2 })
		waitMetric(t, url, "kgate_xds_last_nack_info", map[string]string{"type_url": resource.RouteType, "error": "second"}, func(v float64) bool { return v == 1 })
		if info := promtest.Scrape(t, url).Find("kgate_xds_last_nack_info", rds); len(info) != 1 {
			t.Errorf("last NACK series %v, want one per type", info)
		}
	})
	// The stream closed with the subtest: the node's series go.
	waitMetric(t, url, "kgate_xds_connected_clients", map[string]string{"role": "anonymous"}, func(v float64) bool { return v == 0 })
	deadline := time.Now().Add(waitFor)
	for len(promtest.Scrape(t, url).Find("kgate_xds_ack_lag_seconds", node)) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("ACK lag of a disconnected node still exported")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMetricsNilRegistererRecordsNothing: a server without a registerer
// has no metrics and works as before.
func TestMetricsNilRegistererRecordsNothing(t *testing.T) {
	h := newHarness(t, hello())
	if h.srv.metrics != nil {
		t.Fatal("a server without a Registerer has metrics")
	}
	route := routeName("external", "hello")
	c := h.delta(t, gatewayNode)
	c.subscribe(resource.RouteType, route)
	c.nack(c.next(resource.RouteType), "no")
}

func expect(t *testing.T, f promtest.Families, name string, labels map[string]string, want float64) {
	t.Helper()
	if got, ok := f.Value(name, labels); !ok || got != want {
		t.Errorf("%s%v = %v (found %v), want %v", name, labels, got, ok, want)
	}
}

// waitMetric scrapes until the series satisfies ok, and returns that
// scrape.
func waitMetric(t *testing.T, url, name string, labels map[string]string, ok func(float64) bool) promtest.Families {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		f := promtest.Scrape(t, url)
		if v, found := f.Value(name, labels); found && ok(v) {
			return f
		}
		if time.Now().After(deadline) {
			v, found := f.Value(name, labels)
			t.Fatalf("%s%v = %v (found %v) after %s", name, labels, v, found, waitFor)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// State of the world counts as delta does: a push after a change has its
// latency, a NACK its error.
func TestMetricsStateOfTheWorld(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	reg := prometheus.NewRegistry()
	srv := NewServer(ctx, ServerOptions{Registerer: reg})
	eng, err := NewEngine(srv, EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Update(hello()); err != nil {
		t.Fatal(err)
	}
	lis := testrun.Listen(t)
	conn := dial(t, lis.Addr().String())
	testrun.Go(t, ctx, "Serve", waitFor, func(ctx context.Context) error { return srv.Serve(ctx, lis) })
	t.Cleanup(cancel)
	url := promtest.Serve(t, reg)

	route := routeName("external", "hello")
	rds := map[string]string{"type_url": resource.RouteType}
	c := sotwOn(t, conn, gatewayNode)
	c.subscribe(resource.RouteType, route)
	first := c.next(resource.RouteType)
	c.ack(first, route)
	if err := eng.SetService(helloWithTimeout(time.Hour)); err != nil {
		t.Fatal(err)
	}
	c.nack(c.next(resource.RouteType), first.GetVersionInfo(), "bad route", route)
	waitMetric(t, url, "kgate_xds_last_nack_info", map[string]string{"type_url": resource.RouteType, "error": "bad route"}, func(v float64) bool { return v == 1 })
	f := promtest.Scrape(t, url)
	expect(t, f, "kgate_xds_nacks_total", rds, 1)
	expect(t, f, "kgate_xds_pushes_total", rds, 2)
	expect(t, f, "kgate_xds_push_latency_seconds", rds, 1)
}
