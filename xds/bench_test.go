package xds

import (
	"fmt"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/kgate/kgate/translator/model"
)

// BenchmarkPropagation measures how long one Service's traffic split takes
// to reach a delta ADS gateway subscribed to everything, and how many bytes
// that push costs. Both must not grow with the number of Services.
func BenchmarkPropagation(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			start := time.Now()
			cfg := fleet(n)
			h := newHarness(b, cfg)
			gw := subscribeEverything(b, h, cfg)
			// b.Loop drops metrics reported before it: keep setup's for
			// after.
			setup := time.Since(start)

			var bytes, pushes int
			for i := 0; b.Loop(); i++ {
				// Each round over the fleet moves every split to a new
				// value: 90/10 first, then 10/90, 11/89 and so on.
				svc := cfg.Services[i%n]
				p := uint32(10 + (i/n)%80)
				svc.VirtualHosts = []model.VirtualHost{vhost(svc.VirtualHosts[0].Host, model.External,
					split(svc.VirtualHosts[0].Routes[0].Splits[0].Revision, p),
					split(svc.VirtualHosts[0].Routes[0].Splits[1].Revision, 100-p))}
				if err := h.eng.SetService(svc); err != nil {
					b.Fatal(err)
				}
				resp := gw.next(resource.RouteType)
				if len(resp.GetResources()) != 1 || resp.GetResources()[0].GetName() != routeName("external", svc.Name) {
					b.Fatalf("push %d carried %v, want only %s", i, deltaNames(resp), routeName("external", svc.Name))
				}
				bytes += proto.Size(resp)
				pushes++
				gw.ack(resp)
			}
			b.ReportMetric(float64(bytes)/float64(pushes), "bytes/push")
			b.ReportMetric(float64(setup.Milliseconds()), "setup-ms")
		})
	}
}

// subscribeEverything connects a delta gateway as Envoy does: wildcard LDS
// and CDS, then route configurations, scopes and load assignments by name.
func subscribeEverything(b *testing.B, h *harness, cfg model.Config) *deltaClient {
	b.Helper()
	return subscribeEverythingWith(b, h, cfg, 2, nil, nil)
}

// subscribeEverythingWith is subscribeEverything for a server with
// listeners gateway listeners, also subscribing to secrets by name (as
// Envoy does once clients have asked for those hosts over TLS). A type's
// first state comes in as many parts as the server splits it into, each
// ACKed; afterACK, when set, runs after each ACK (a caller counting the
// ACKs the server processes waits for each).
func subscribeEverythingWith(b *testing.B, h *harness, cfg model.Config, listeners int, secrets []string, afterACK func()) *deltaClient {
	b.Helper()
	gw := h.delta(b, gatewayNode)
	syncEverything(b, gw, cfg, listeners, secrets, afterACK)
	return gw
}

// syncEverything subscribes gw as subscribeEverythingWith does and waits
// for every type's first state, each part ACKed.
func syncEverything(b *testing.B, gw *deltaClient, cfg model.Config, listeners int, secrets []string, afterACK func()) {
	b.Helper()
	var routes, scopes, clas []string
	for _, svc := range cfg.Services {
		routes = append(routes, routeName("external", svc.Name))
		scopes = append(scopes, scopeName("external", svc.VirtualHosts[0].Host))
	}
	for _, ep := range cfg.Endpoints {
		clas = append(clas, ep.Revision, ep.Revision+"/pods")
	}
	for _, sub := range []struct {
		typeURL string
		names   []string
		want    int
	}{
		{resource.ListenerType, nil, listeners},
		{resource.ClusterType, nil, len(cfg.Revisions)},
		{resource.ScopedRouteType, scopes, len(scopes)},
		{resource.RouteType, routes, len(routes)},
		{resource.EndpointType, clas, len(clas)},
		{resource.SecretType, secrets, len(secrets)},
	} {
		if sub.typeURL == resource.SecretType && len(secrets) == 0 {
			continue
		}
		gw.subscribe(sub.typeURL, sub.names...)
		// A type's first response comes in parts past the delta budget.
		for got := 0; got < sub.want; {
			resp := gw.next(sub.typeURL)
			got += len(resp.GetResources())
			if got > sub.want {
				b.Fatalf("initial %s: %d resources, want %d", sub.typeURL, got, sub.want)
			}
			gw.ack(resp)
			if afterACK != nil {
				afterACK()
			}
		}
	}
}
