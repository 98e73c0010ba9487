package xds

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/kgate/kgate/translator/model"
)

// cachedNames counts what a typeCache holds for delta clients and what its
// LinearCache holds for state-of-the-world ones.
func cachedNames(c *typeCache) (delta, sotw int) {
	c.mu.Lock()
	delta = len(c.resources)
	c.mu.Unlock()
	return delta, c.NumResources()
}

// The API listeners and the state-of-the-world copies are built only once
// a client that reads them asks, and then hold exactly what they would
// have held all along: every Service's API listener at the versions
// ServiceVersions announced before, changes made before the client came
// included.
func TestLazyAPIListenersAndSotwCopies(t *testing.T) {
	cfg := fleet(3)
	h := newHarness(t, cfg)
	moved := service("svc-2", 2*time.Second,
		vhost("svc-2.default.example.com", model.External, split("default/svc-2-00001", 100)),
		vhost("moved.example.com", model.External, split("default/svc-2-00001", 100)))
	if err := h.eng.SetService(moved); err != nil {
		t.Fatal(err)
	}

	// A gateway, as Envoy: delta, listeners and route configurations.
	gw := h.delta(t, gatewayNode)
	for _, typeURL := range []string{resource.ListenerType, resource.RouteType} {
		gw.subscribe(typeURL)
		gw.ack(gw.next(typeURL))
	}
	if d, s := cachedNames(h.srv.caches[apiLDS]); d != 0 || s != 0 {
		t.Fatalf("with only a gateway connected the API listener cache holds %d (delta) and %d (sotw), want none", d, s)
	}
	for key, c := range h.srv.caches {
		if _, s := cachedNames(c); s != 0 {
			t.Fatalf("with only a delta gateway connected the %s LinearCache holds %d resources, want none", key, s)
		}
	}
	announced := map[string]map[string]map[string]string{}
	for _, svc := range []string{"default/svc-0", "default/svc-1", "default/svc-2"} {
		v, err := h.eng.ServiceVersions(svc)
		if err != nil {
			t.Fatal(err)
		}
		announced[svc] = v
	}
	if got := len(announced["default/svc-2"][resource.ListenerType]); got != 2 {
		t.Fatalf("ServiceVersions announces %d API listeners for svc-2, want 2: %v", got, announced["default/svc-2"])
	}

	// grpc-go speaks state of the world, by host name.
	hosts := []string{"moved.example.com", "svc-0.default.example.com", "svc-1.default.example.com", "svc-2.default.example.com"}
	p := h.sotw(t, proxylessNode)
	p.subscribe(resource.ListenerType, hosts...)
	resp := p.next(resource.ListenerType)
	if got := sotwNames(t, resp); !reflect.DeepEqual(got, hosts) {
		t.Fatalf("first API listeners: %v, want %v", got, hosts)
	}
	sent := map[string]string{}
	for _, a := range resp.GetResources() {
		m := decode(t, a)
		v, err := ResourceVersion(m)
		if err != nil {
			t.Fatal(err)
		}
		sent[cache.GetResourceName(m)] = v
	}
	p.ack(resp, hosts...)
	for svc, want := range announced {
		got, err := h.eng.ServiceVersions(svc)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ServiceVersions(%s) = %v once built, announced %v", svc, got, want)
		}
		for name, v := range want[resource.ListenerType] {
			if sent[name] != v {
				t.Errorf("API listener %s sent at %s, announced at %s", name, sent[name], v)
			}
		}
	}
	if d, _ := cachedNames(h.srv.caches[apiLDS]); d != len(hosts) {
		t.Errorf("once a proxyless client asked, the API listener cache holds %d, want %d", d, len(hosts))
	}

	// From then on a change reaches it as before.
	if err := h.eng.DeleteService("default/svc-2"); err != nil {
		t.Fatal(err)
	}
	resp = p.next(resource.ListenerType)
	if got, want := sotwNames(t, resp), hosts[1:3]; !reflect.DeepEqual(got, want) {
		t.Fatalf("API listeners once svc-2 is deleted: %v, want %v", got, want)
	}
	if _, s := cachedNames(h.srv.caches[resource.ClusterType]); s != 0 {
		t.Errorf("the cluster LinearCache holds %d resources before any state-of-the-world client asked for clusters", s)
	}
}

// What the LinearCache holds in place of a proto encodes to the very bytes
// the delta clients are sent, so both protocols send the same resource at
// the same version.
func TestRawResourceEncodesToItsBytes(t *testing.T) {
	for _, res := range []types.Resource{clusterRes("a", 1), &emptypb.Empty{}} {
		e, err := encode(res)
		if err != nil {
			t.Fatal(err)
		}
		got, err := cache.MarshalResource(rawResource(e.value))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, e.value) {
			t.Errorf("%T: rawResource encodes to %x, want %x", res, got, e.value)
		}
	}
}

// Proxyless clients asking at once, the first time, all wait for the API
// listeners: none is told that its listener does not exist meanwhile.
func TestFirstProxylessClientsAtOnce(t *testing.T) {
	cfg := fleet(300)
	h := newHarness(t, cfg)
	var hosts []string
	for _, svc := range cfg.Services {
		hosts = append(hosts, svc.VirtualHosts[0].Host)
	}
	clients := make([]*sotwClient, 4)
	for i := range clients {
		clients[i] = h.sotw(t, proxylessNode)
	}
	for _, c := range clients {
		c.subscribe(resource.ListenerType, hosts...)
	}
	for i, c := range clients {
		if got := len(c.next(resource.ListenerType).GetResources()); got != len(hosts) {
			t.Errorf("client %d: first response has %d API listeners, want %d", i, got, len(hosts))
		}
	}
}
