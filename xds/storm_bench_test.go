package xds

import (
	"fmt"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// BenchmarkReconnectStorm is what a leader change costs the new leader:
// ten gateways, each subscribed to everything as Envoy is, connect at
// once to a server holding the fleet and take its whole state, every part
// ACKed. It reports the wall time until the last gateway holds everything
// (storm-s), the server's share of the heap per connected gateway once
// they are all synced (heap-MiB/gateway: what one more stream costs), and
// the heap with the fleet alone (fleet-MiB), for scale.
//
//	go test -run '^$' -bench 'ReconnectStorm/services=10000' -benchtime 1x ./xds/
func BenchmarkReconnectStorm(b *testing.B) {
	const gateways = 10
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			cfg := fleet(n)
			h := newHarness(b, cfg)
			fleetHeap := liveHeap()
			var storm time.Duration
			var perGateway float64
			for b.Loop() {
				clients := make([]*deltaClient, gateways)
				start := time.Now()
				var wg sync.WaitGroup
				for g := range gateways {
					node := &corev3.Node{Id: fmt.Sprintf("envoy-storm-%d", g), Cluster: "kgate", UserAgentName: "envoy"}
					wg.Go(func() {
						clients[g] = h.delta(b, node)
						syncEverything(b, clients[g], cfg, 2, nil, nil)
					})
				}
				wg.Wait()
				storm = time.Since(start)
				perGateway = (float64(liveHeap()) - float64(fleetHeap)) / gateways
				b.StopTimer()
				for _, c := range clients {
					c.close()
				}
				waitUntil(b, "the storm's streams to close", func() bool { return h.srv.acks.streamCount() == 0 })
				b.StartTimer()
			}
			b.ReportMetric(storm.Seconds(), "storm-s")
			b.ReportMetric(perGateway/(1<<20), "heap-MiB/gateway")
			b.ReportMetric(float64(fleetHeap)/(1<<20), "fleet-MiB")
		})
	}
}

// streamCount is how many streams the tracker follows.
func (t *ackTracker) streamCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.streams)
}
