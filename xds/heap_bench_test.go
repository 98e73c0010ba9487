package xds

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	rtmetrics "runtime/metrics"
	"runtime/pprof"
	"strings"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/kgate/kgate/translator/model"
)

// BenchmarkEngineHeap pins what the control plane keeps live for a fleet
// of Services (issue 17): a Server and an Engine holding fleet(n), alone
// ("idle": no client connected), with one delta gateway subscribed to
// everything, as BenchmarkPropagation's ("gateway"), and with a
// state-of-the-world proxyless gRPC client subscribed to every host, its
// route configuration, clusters and load assignments ("proxyless": what
// the caches build only for such a client is then built). The figure is the live heap after
// two collections, less the live heap before the fleet was built, so it
// counts everything the server and the engine keep (the model included),
// and nothing of the benchmark's copy of the fleet, which is dropped first.
//
// heap-MiB and B/service are the metrics; ns/op is what one collection of
// that heap costs. Set KGATE_HEAP_PROFILE to a folder to get a heap profile
// of each case there (go tool pprof -sample_index=inuse_space -top).
func BenchmarkEngineHeap(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, client := range []string{"idle", "gateway", "proxyless"} {
			name := fmt.Sprintf("services=%d/%s", n, client)
			b.Run(name, func(b *testing.B) {
				before := liveHeap()
				keep := holdFleet(b, n, client)
				after := liveHeap()
				if dir := os.Getenv("KGATE_HEAP_PROFILE"); dir != "" {
					writeHeapProfile(b, filepath.Join(dir, "heap-"+strings.ReplaceAll(name, "/", "-")+".pprof"))
				}
				for b.Loop() {
					runtime.GC()
				}
				runtime.KeepAlive(keep)
				held := float64(after) - float64(before)
				b.ReportMetric(held/(1<<20), "heap-MiB")
				b.ReportMetric(held/float64(n), "B/service")
			})
		}
	}
}

// holdFleet builds a server and an engine holding fleet(n), with the
// client named (see BenchmarkEngineHeap) in sync, and returns what keeps
// them alive. The fleet it built is garbage once it returns: the engine's
// model may alias its slices, which then count as the engine's.
func holdFleet(b *testing.B, n int, client string) any {
	b.Helper()
	cfg := fleet(n)
	switch client {
	case "gateway":
		h := newHarness(b, cfg)
		return []any{h, subscribeEverything(b, h, cfg)}
	case "proxyless":
		h := newHarness(b, cfg)
		return []any{h, syncProxyless(b, h, cfg)}
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	srv := NewServer(ctx, ServerOptions{})
	eng, err := NewEngine(srv, EngineOptions{})
	if err != nil {
		b.Fatalf("NewEngine: %v", err)
	}
	if err := eng.Update(cfg); err != nil {
		b.Fatalf("Update: %v", err)
	}
	return eng
}

// liveHeap returns the bytes of live heap objects after two full
// collections: the first may leave objects with finalizers, the second
// frees them.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	s := []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	rtmetrics.Read(s)
	return s[0].Value.Uint64()
}

func writeHeapProfile(b *testing.B, path string) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatalf("creating the heap profile: %v", err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatalf("writing the heap profile: %v", err)
	}
}

// syncProxyless connects a state-of-the-world client as grpc-go does, by
// name: the API listener of every host, the route configurations they
// name, the clusters and their load assignments; each response ACKed.
func syncProxyless(b *testing.B, h *harness, cfg model.Config) *sotwClient {
	b.Helper()
	var hosts, routes, clusters []string
	for _, svc := range cfg.Services {
		hosts = append(hosts, svc.VirtualHosts[0].Host)
		routes = append(routes, routeName("external", svc.Name))
	}
	for _, ep := range cfg.Endpoints {
		clusters = append(clusters, ep.Revision)
	}
	p := h.sotw(b, proxylessNode)
	for _, sub := range []struct {
		typeURL string
		names   []string
	}{
		{resource.ListenerType, hosts},
		{resource.RouteType, routes},
		{resource.ClusterType, clusters},
		{resource.EndpointType, clusters},
	} {
		p.subscribe(sub.typeURL, sub.names...)
		resp := p.next(sub.typeURL)
		if got := len(resp.GetResources()); got != len(sub.names) {
			b.Fatalf("initial %s: %d resources, want %d", sub.typeURL, got, len(sub.names))
		}
		p.ack(resp, sub.names...)
	}
	return p
}
