package xds

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/translator/model"
)

// helloOn is hello() with its host moved to revision rev, served by one
// pod: the roll-over of Knative's conformance case "update".
func helloOn(rev string, port uint32) model.Config {
	key := "default/" + rev
	return model.Config{
		Services: []model.Service{service("hello", 0,
			vhost("hello.default.example.com", model.External, split(key, 100)))},
		Revisions: []model.Revision{revision(rev)},
		Endpoints: []model.RevisionEndpoints{endpoints(key, model.Serve, pod(port))},
	}
}

// gatewayOn subscribes a delta gateway to everything hello publishes and
// ACKs the first state of each type, as Envoy does.
func gatewayOn(t *testing.T, h *harness, rev string) *deltaClient {
	t.Helper()
	gw := h.delta(t, gatewayNode)
	for _, sub := range []struct {
		typeURL string
		names   []string
	}{
		{resource.ClusterType, nil},
		{resource.EndpointType, []string{"default/" + rev}},
		{resource.RouteType, []string{routeName("external", "hello")}},
	} {
		gw.subscribe(sub.typeURL, sub.names...)
		gw.ack(gw.next(sub.typeURL))
	}
	waitUntil(t, "the gateway's ACKs to be recorded", func() bool {
		acks := h.srv.Acked(resource.RouteType, routeName("external", "hello"))
		return len(acks) == 1 && acks[0].Version != ""
	})
	return gw
}

// TestRouteWaitsForItsNewClusterAndEndpoints: a route moving to a new
// cluster reaches a gateway only once the gateway has ACKed the cluster
// and, having subscribed to them on seeing the cluster, its endpoints; the
// old cluster goes after the route. Otherwise the gateway would route to a
// cluster it does not hold, or holds without endpoints, and answer 503 in
// between (Envoy warms a new cluster until its endpoints arrive).
func TestRouteWaitsForItsNewClusterAndEndpoints(t *testing.T) {
	h := newHarness(t, helloOn("hello-00001", 8080))
	gw := gatewayOn(t, h, "hello-00001")

	done := make(chan error, 1)
	go func() { done <- h.eng.Update(helloOn("hello-00002", 8081)) }()

	cds := gw.next(resource.ClusterType)
	if got := deltaNames(cds); len(got) != 1 || got[0] != "default/hello-00002" {
		t.Fatalf("first push: clusters %v, want the new cluster alone", got)
	}
	if len(cds.GetRemovedResources()) != 0 {
		t.Fatalf("first push removes %v: the route still names it", cds.GetRemovedResources())
	}
	gw.none() // the route waits for the cluster's ACK
	gw.ack(cds)
	gw.none() // and for the new cluster's endpoints
	gw.subscribe(resource.EndpointType, "default/hello-00002")
	eds := gw.next(resource.EndpointType)
	if got := deltaNames(eds); len(got) != 1 || got[0] != "default/hello-00002" {
		t.Fatalf("endpoints pushed: %v, want the new cluster's", got)
	}
	gw.none() // not ACKed yet
	gw.ack(eds)

	rds := gw.next(resource.RouteType)
	if !strings.Contains(string(rds.GetResources()[0].GetResource().GetValue()), "default/hello-00002") {
		t.Fatalf("route pushed after the endpoints does not name the new cluster")
	}
	gw.ack(rds)
	if got := gw.next(resource.EndpointType).GetRemovedResources(); len(got) != 1 || got[0] != "default/hello-00001" {
		t.Fatalf("after the route: removed endpoints %v, want the old cluster's", got)
	}
	removed := gw.next(resource.ClusterType)
	if got := removed.GetRemovedResources(); len(got) != 1 || got[0] != "default/hello-00001" {
		t.Fatalf("after the route: removed %v, want the old cluster", got)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Update did not return")
	}
}

// TestRouteHoldIsBounded: a gateway that never applies the new cluster
// holds the route back for routeHold only, and the log says so once.
func TestRouteHoldIsBounded(t *testing.T) {
	logs := &testrun.Buffer{}
	h := newHarnessWith(t, helloOn("hello-00001", 8080), EngineOptions{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	h.eng.routeHold = 300 * time.Millisecond
	gw := gatewayOn(t, h, "hello-00001")

	start := time.Now()
	if err := h.eng.Update(helloOn("hello-00002", 8081)); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if held := time.Since(start); held < h.eng.routeHold {
		t.Fatalf("Update returned after %s, before the hold of %s", held, h.eng.routeHold)
	}
	gw.next(resource.ClusterType) // never ACKed
	var rds *discoveryv3.DeltaDiscoveryResponse
	for rds == nil {
		select {
		case resp := <-gw.recv:
			if resp.GetTypeUrl() == resource.RouteType {
				rds = resp
			}
		case <-time.After(waitFor):
			t.Fatal("the route never came")
		}
	}
	if n := strings.Count(logs.String(), "pushing routes before every gateway applied the clusters they name"); n != 1 {
		t.Fatalf("%d hold warnings logged, want 1:\n%s", n, logs.String())
	}

	// The gateway stays stuck: the next change does not wait for it again.
	start = time.Now()
	if err := h.eng.Update(helloOn("hello-00003", 8082)); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if took := time.Since(start); took > h.eng.routeHold/2 {
		t.Fatalf("the next change waited %s for a gateway already behind by more than the hold", took)
	}
}

// TestRouteDoesNotWaitForClientsThatDoNotCount: proxyless clients and
// activators neither hold a route back nor are waited for.
func TestRouteDoesNotWaitForClientsThatDoNotCount(t *testing.T) {
	h := newHarness(t, helloOn("hello-00001", 8080))
	c := h.delta(t, proxylessNode)
	c.subscribe(resource.ClusterType)
	c.next(resource.ClusterType) // never ACKed

	start := time.Now()
	if err := h.eng.Update(helloOn("hello-00002", 8081)); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if took := time.Since(start); took > defaultRouteHold/2 {
		t.Fatalf("Update took %s: it waited for a client that does not count", took)
	}
}
