package xds

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservicev3 "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservicev3 "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
)

// pushed is what one delta response (or none) carried for a type.
type pushed struct {
	Updated []string
	Removed []string
}

// collect reads every response until the stream is quiet, ACKing each, and
// returns what each type pushed. A type pushed twice fails the test: one
// change is one push per type.
func (c *deltaClient) collect() map[string]pushed {
	c.t.Helper()
	out := map[string]pushed{}
	for {
		select {
		case resp, ok := <-c.recv:
			if !ok {
				c.t.Fatalf("stream closed")
			}
			if prev, dup := out[resp.GetTypeUrl()]; dup {
				c.t.Fatalf("%s pushed twice: %v then %v (removed %v)", resp.GetTypeUrl(), prev, deltaNames(resp), resp.GetRemovedResources())
			}
			out[resp.GetTypeUrl()] = pushed{Updated: deltaNames(resp), Removed: nilIfEmpty(sortedCopy(resp.GetRemovedResources()))}
			c.ack(resp)
		case <-time.After(quiet):
			return out
		}
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// routeName, scopeName and the like spell the translator's names.
func routeName(listener, svc string) string  { return translator.RouteName(listener, "default", svc) }
func scopeName(listener, host string) string { return translator.ScopeName(listener, host) }

func TestListenersByNodeKind(t *testing.T) {
	tests := []struct {
		name  string
		node  *corev3.Node
		names []string
		// want are the listeners served; for an API listener, the route
		// configuration its connection manager asks RDS for.
		want map[string]string
	}{{
		name: "gateway wildcard gets the gateway listeners",
		node: gatewayNode,
		want: map[string]string{"external": "", "internal": ""},
	}, {
		name:  "gateway asking for a host gets no API listener",
		node:  gatewayNode,
		names: []string{"hello.default.example.com"},
		want:  map[string]string{},
	}, {
		name:  "proxyless gRPC asking for a host gets its API listener",
		node:  proxylessNode,
		names: []string{"hello.default.example.com"},
		want:  map[string]string{"hello.default.example.com": routeName("external", "hello")},
	}, {
		name:  "proxyless gRPC asking for a cluster-local host gets its API listener",
		node:  proxylessNode,
		names: []string{"hello.default.svc.cluster.local"},
		want:  map[string]string{"hello.default.svc.cluster.local": routeName("internal", "hello")},
	}, {
		name: "proxyless gRPC wildcard gets API listeners only",
		node: proxylessNode,
		want: map[string]string{
			"hello.default.example.com":       routeName("external", "hello"),
			"hello.default.svc.cluster.local": routeName("internal", "hello"),
		},
	}}
	for _, tt := range tests {
		t.Run("sotw/"+tt.name, func(t *testing.T) {
			h := newHarness(t, hello())
			c := h.sotw(t, tt.node)
			c.subscribe(resource.ListenerType, tt.names...)
			resp := c.next(resource.ListenerType)
			got := map[string]string{}
			for _, a := range resp.GetResources() {
				l := decode(t, a).(*listenerv3.Listener)
				got[l.GetName()] = apiListenerRoute(t, l)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("listeners = %v, want %v", got, tt.want)
			}
		})
		t.Run("delta/"+tt.name, func(t *testing.T) {
			h := newHarness(t, hello())
			c := h.delta(t, tt.node)
			c.subscribe(resource.ListenerType, tt.names...)
			if len(tt.want) == 0 {
				c.none()
				return
			}
			resp := c.next(resource.ListenerType)
			got := map[string]string{}
			for _, r := range resp.GetResources() {
				l := &listenerv3.Listener{}
				deltaResource(t, resp, r.GetName(), l)
				got[l.GetName()] = apiListenerRoute(t, l)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("listeners = %v, want %v", got, tt.want)
			}
		})
	}
}

// apiListenerRoute returns the route configuration an API listener asks
// for; "" for a gateway listener (which must have an address instead).
func apiListenerRoute(t *testing.T, l *listenerv3.Listener) string {
	t.Helper()
	if l.GetApiListener() == nil {
		if l.GetAddress() == nil {
			t.Errorf("listener %q has neither an API listener nor an address", l.GetName())
		}
		return ""
	}
	hcm := &hcmv3.HttpConnectionManager{}
	if err := l.GetApiListener().GetApiListener().UnmarshalTo(hcm); err != nil {
		t.Fatalf("decoding the API listener of %q: %v", l.GetName(), err)
	}
	return hcm.GetRds().GetRouteConfigName()
}

// withService returns cfg with the Service of the same key replaced.
func withService(cfg model.Config, svc model.Service) model.Config {
	out := cfg
	out.Services = slices.Clone(cfg.Services)
	for i := range out.Services {
		if out.Services[i].Key() == svc.Key() {
			out.Services[i] = svc
		}
	}
	return out
}

// svc3 is fleet's svc-3 with its hosts replaced.
func svc3(hosts ...model.VirtualHost) model.Service {
	return service("svc-3", 3*time.Second, hosts...)
}

const svc3Host = "svc-3.default.example.com"

func TestOneServiceChangePushesOnlyItsResources(t *testing.T) {
	const n = 20
	h := newHarness(t, fleet(n))

	// A gateway subscribed to everything, as Envoy over delta ADS, and a
	// proxyless client subscribed to every API listener.
	gw := h.delta(t, gatewayNode)
	for _, typ := range []struct {
		url   string
		count int
	}{{resource.ListenerType, 2}, {resource.ScopedRouteType, n}, {resource.RouteType, n}, {resource.ClusterType, 2 * n}, {resource.EndpointType, 4 * n}} {
		gw.subscribe(typ.url)
		resp := gw.next(typ.url)
		if got := len(resp.GetResources()); got != typ.count {
			t.Fatalf("initial %s: %d resources, want %d", typ.url, got, typ.count)
		}
		gw.ack(resp)
	}
	grpcClient := h.delta(t, proxylessNode)
	grpcClient.subscribe(resource.ListenerType)
	if resp := grpcClient.next(resource.ListenerType); len(resp.GetResources()) != n {
		t.Fatalf("initial API listeners: %d, want %d", len(resp.GetResources()), n)
	} else {
		grpcClient.ack(resp)
	}

	r1, r2 := "default/svc-3-00001", "default/svc-3-00002"
	extRoute, intRoute := routeName("external", "svc-3"), routeName("internal", "svc-3")
	steps := []struct {
		name      string
		do        func(e *Engine) error
		gateway   map[string]pushed
		proxyless map[string]pushed
	}{{
		name: "split 90/10 becomes 50/50",
		do: func(e *Engine) error {
			return e.SetService(svc3(vhost(svc3Host, model.External, split(r1, 50), split(r2, 50))))
		},
		gateway:   map[string]pushed{resource.RouteType: {Updated: []string{extRoute}}},
		proxyless: map[string]pushed{},
	}, {
		name: "a host is added",
		do: func(e *Engine) error {
			return e.SetService(svc3(vhost(svc3Host, model.External, split(r1, 50), split(r2, 50)),
				vhost("svc-3.example.org", model.External, split(r1, 100))))
		},
		gateway: map[string]pushed{
			resource.RouteType:       {Updated: []string{extRoute}},
			resource.ScopedRouteType: {Updated: []string{scopeName("external", "svc-3.example.org")}},
		},
		proxyless: map[string]pushed{resource.ListenerType: {Updated: []string{"svc-3.example.org"}}},
	}, {
		name: "the host is removed",
		do: func(e *Engine) error {
			return e.SetService(svc3(vhost(svc3Host, model.External, split(r1, 50), split(r2, 50))))
		},
		gateway: map[string]pushed{
			resource.RouteType:       {Updated: []string{extRoute}},
			resource.ScopedRouteType: {Removed: []string{scopeName("external", "svc-3.example.org")}},
		},
		proxyless: map[string]pushed{resource.ListenerType: {Removed: []string{"svc-3.example.org"}}},
	}, {
		name: "the Service becomes cluster-local",
		do: func(e *Engine) error {
			return e.SetService(svc3(vhost(svc3Host, model.ClusterLocal, split(r1, 50), split(r2, 50))))
		},
		gateway: map[string]pushed{
			resource.RouteType:       {Updated: []string{intRoute}, Removed: []string{extRoute}},
			resource.ScopedRouteType: {Updated: []string{scopeName("internal", svc3Host)}, Removed: []string{scopeName("external", svc3Host)}},
		},
		// Same name, now pointing at the internal route configuration.
		proxyless: map[string]pushed{resource.ListenerType: {Updated: []string{svc3Host}}},
	}, {
		name: "the whole model again",
		do: func(e *Engine) error {
			return e.Update(withService(fleet(n), svc3(vhost(svc3Host, model.ClusterLocal, split(r1, 50), split(r2, 50)))))
		},
		gateway:   map[string]pushed{},
		proxyless: map[string]pushed{},
	}, {
		name: "a revision is deleted",
		do:   func(e *Engine) error { return e.DeleteRevision(r2) },
		gateway: map[string]pushed{
			resource.ClusterType: {Removed: []string{r2}},
		},
		proxyless: map[string]pushed{},
	}, {
		name: "the Service is deleted",
		do:   func(e *Engine) error { return e.DeleteService("default/svc-3") },
		gateway: map[string]pushed{
			resource.RouteType:       {Removed: []string{intRoute}},
			resource.ScopedRouteType: {Removed: []string{scopeName("internal", svc3Host)}},
		},
		proxyless: map[string]pushed{resource.ListenerType: {Removed: []string{svc3Host}}},
	}}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			gw.t, grpcClient.t = t, t
			if err := step.do(h.eng); err != nil {
				t.Fatalf("engine: %v", err)
			}
			if got := gw.collect(); !reflect.DeepEqual(got, step.gateway) {
				t.Errorf("gateway got %v, want %v", got, step.gateway)
			}
			if got := grpcClient.collect(); !reflect.DeepEqual(got, step.proxyless) {
				t.Errorf("proxyless client got %v, want %v", got, step.proxyless)
			}
		})
	}
}

func TestRouteWeightsArePushed(t *testing.T) {
	h := newHarness(t, fleet(3))
	c := h.delta(t, gatewayNode)
	c.subscribe(resource.RouteType, routeName("external", "svc-1"))
	c.ack(c.next(resource.RouteType))

	r1, r2 := "default/svc-1-00001", "default/svc-1-00002"
	if err := h.eng.SetService(service("svc-1", time.Second, vhost("svc-1.default.example.com", model.External, split(r1, 30), split(r2, 70)))); err != nil {
		t.Fatal(err)
	}
	resp := c.next(resource.RouteType)
	rc := &routev3.RouteConfiguration{}
	deltaResource(t, resp, routeName("external", "svc-1"), rc)
	got := map[string]uint32{}
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			for _, w := range r.GetRoute().GetWeightedClusters().GetClusters() {
				got[w.GetName()] = w.GetWeight().GetValue()
			}
		}
	}
	if want := map[string]uint32{r1: 30, r2: 70}; !reflect.DeepEqual(got, want) {
		t.Errorf("weights = %v, want %v", got, want)
	}
}

func TestEndpointChangesPushOnlyTheirLoadAssignments(t *testing.T) {
	h := newHarness(t, fleet(5))
	rev := "default/svc-2-00001"
	pods := rev + "/pods"

	gw := h.delta(t, gatewayNode)
	gw.subscribe(resource.EndpointType)
	gw.ack(gw.next(resource.EndpointType))
	gw.subscribe(resource.ClusterType)
	gw.ack(gw.next(resource.ClusterType))
	// A state-of-the-world gateway asks for the load assignments by name.
	sotw := h.sotw(t, gatewayNode)
	sotw.subscribe(resource.EndpointType, rev, pods, "default/svc-1-00001")
	first := sotw.next(resource.EndpointType)
	sotw.ack(first, rev, pods, "default/svc-1-00001")

	steps := []struct {
		name  string
		ep    *model.RevisionEndpoints // nil deletes the endpoints
		delta map[string]pushed
		sotw  []string
		// serving are the addresses the revision's own CLA must then hold.
		serving []uint32
	}{{
		name:    "a pod is added in serve mode",
		ep:      ptr(endpoints(rev, model.Serve, pod(10004), pod(20000))),
		delta:   map[string]pushed{resource.EndpointType: {Updated: []string{rev, pods}}},
		sotw:    []string{rev, pods},
		serving: []uint32{10004, 20000},
	}, {
		name:    "the revision switches to proxy mode",
		ep:      ptr(endpoints(rev, model.Proxy, pod(10004), pod(20000))),
		delta:   map[string]pushed{resource.EndpointType: {Updated: []string{rev}}},
		sotw:    []string{rev},
		serving: []uint32{activator.Port},
	}, {
		name:    "a pod is added while proxied",
		ep:      ptr(endpoints(rev, model.Proxy, pod(10004), pod(20000), pod(20001))),
		delta:   map[string]pushed{resource.EndpointType: {Updated: []string{pods}}},
		sotw:    []string{pods},
		serving: []uint32{activator.Port},
	}, {
		name:  "the same endpoints again",
		ep:    ptr(endpoints(rev, model.Proxy, pod(20001), pod(20000), pod(10004))),
		delta: map[string]pushed{},
	}, {
		name:  "the endpoints are deleted",
		delta: map[string]pushed{resource.EndpointType: {Removed: []string{rev, pods}}},
	}}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			gw.t, sotw.t = t, t
			var err error
			if step.ep != nil {
				err = h.eng.SetEndpoints(*step.ep)
			} else {
				err = h.eng.DeleteEndpoints(rev)
			}
			if err != nil {
				t.Fatalf("engine: %v", err)
			}
			if got := gw.collect(); !reflect.DeepEqual(got, step.delta) {
				t.Errorf("delta gateway got %v, want %v", got, step.delta)
			}
			// State of the world cannot say "removed" for EDS: the removal
			// step sends it nothing.
			if len(step.sotw) == 0 {
				sotw.none()
			} else {
				resp := sotw.next(resource.EndpointType)
				if got := sotwNames(t, resp); !reflect.DeepEqual(got, step.sotw) {
					t.Errorf("sotw gateway got %v, want %v", got, step.sotw)
				}
				for _, a := range resp.GetResources() {
					cla := decode(t, a).(*endpointv3.ClusterLoadAssignment)
					if cla.GetClusterName() == rev {
						if got := ports(cla); !reflect.DeepEqual(got, step.serving) {
							t.Errorf("%s serves ports %v, want %v", rev, got, step.serving)
						}
					}
				}
				sotw.ack(resp, rev, pods, "default/svc-1-00001")
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func ports(cla *endpointv3.ClusterLoadAssignment) []uint32 {
	var out []uint32
	for _, l := range cla.GetEndpoints() {
		for _, e := range l.GetLbEndpoints() {
			out = append(out, e.GetEndpoint().GetAddress().GetSocketAddress().GetPortValue())
		}
	}
	slices.Sort(out)
	return out
}

func TestUnchangedUpdatePushesNothing(t *testing.T) {
	h := newHarness(t, fleet(10))
	sotw := h.sotw(t, gatewayNode)
	delta := h.delta(t, gatewayNode)
	for _, typeURL := range []string{resource.ListenerType, resource.ScopedRouteType, resource.RouteType, resource.ClusterType, resource.EndpointType} {
		sotw.subscribe(typeURL)
		sotw.ack(sotw.next(typeURL))
		delta.subscribe(typeURL)
		delta.ack(delta.next(typeURL))
	}
	changes := []struct {
		name string
		do   func(e *Engine) error
	}{
		{"the same model", func(e *Engine) error { return e.Update(fleet(10)) }},
		{"the same Service", func(e *Engine) error { return e.SetService(fleet(10).Services[4]) }},
		{"the same revision", func(e *Engine) error { return e.SetRevision(fleet(10).Revisions[4]) }},
		{"the same endpoints", func(e *Engine) error { return e.SetEndpoints(fleet(10).Endpoints[4]) }},
		{"unknown keys deleted", func(e *Engine) error {
			return cmpErr(e.DeleteService("default/nope"), e.DeleteRevision("default/nope"), e.DeleteEndpoints("default/nope"))
		}},
		// The model differs (a later creation time) but the Envoy config
		// does not: nothing may be pushed.
		{"a Service whose output is unchanged", func(e *Engine) error {
			svc := fleet(10).Services[4]
			svc.Created = svc.Created.Add(time.Millisecond)
			return e.SetService(svc)
		}},
	}
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			sotw.t, delta.t = t, t
			if err := c.do(h.eng); err != nil {
				t.Fatal(err)
			}
			sotw.none()
			delta.none()
		})
	}
}

func cmpErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// logEntry finds the JSON log line with this message.
func logEntries(t *testing.T, logs, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(logs) {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if e["msg"] == msg {
			out = append(out, e)
		}
	}
	return out
}

// waitAcked polls Server.Acked until every stream reports want, or fails.
func waitAcked(t *testing.T, s *Server, typeURL, name string, want []NodeACK) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	var got []NodeACK
	for time.Now().Before(deadline) {
		got = s.Acked(typeURL, name)
		for i := range got {
			got[i].Behind = 0 // timing; TestStaleGatewayIsNamedNotWaitedFor checks it
		}
		if reflect.DeepEqual(got, want) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("Acked(%s, %s) = %+v, want %+v", typeURL, name, got, want)
}

func routeVersion(t *testing.T, e *Engine, svcKey, name string) string {
	t.Helper()
	v, err := e.ServiceVersions(svcKey)
	if err != nil {
		t.Fatal(err)
	}
	if v[resource.RouteType][name] == "" {
		t.Fatalf("Service %s publishes no route configuration %s: %v", svcKey, name, v)
	}
	return v[resource.RouteType][name]
}

// helloWithTimeout is hello whose external route has a request timeout.
func helloWithTimeout(d time.Duration) model.Service {
	svc := hello().Services[0]
	svc.VirtualHosts = slices.Clone(svc.VirtualHosts)
	vh := svc.VirtualHosts[0]
	vh.Routes = []model.Route{{PathPrefix: "/", Splits: []model.Split{split("default/hello-00001", 100)}, Timeout: d}}
	svc.VirtualHosts[0] = vh
	return svc
}

func TestNACKIsLoggedAndPreviousConfigKeepsServing(t *testing.T) {
	route := routeName("external", "hello")
	for _, proto := range []string{"sotw", "delta"} {
		t.Run(proto, func(t *testing.T) {
			h := newHarness(t, hello())
			// send subscribes, then returns a function that reads the next
			// route response and ACKs or NACKs it; it reports the
			// response's version.
			var next func(nack string) string
			switch proto {
			case "sotw":
				c := h.sotw(t, gatewayNode)
				c.subscribe(resource.RouteType, route)
				accepted := ""
				next = func(nack string) string {
					resp := c.next(resource.RouteType)
					if got := sotwNames(t, resp); !reflect.DeepEqual(got, []string{route}) {
						t.Fatalf("pushed %v, want [%s]", got, route)
					}
					if nack != "" {
						c.nack(resp, accepted, nack, route)
					} else {
						c.ack(resp, route)
						accepted = resp.GetVersionInfo()
					}
					return resp.GetVersionInfo()
				}
			case "delta":
				c := h.delta(t, gatewayNode)
				c.subscribe(resource.RouteType, route)
				next = func(nack string) string {
					resp := c.next(resource.RouteType)
					if got := deltaNames(resp); !reflect.DeepEqual(got, []string{route}) {
						t.Fatalf("pushed %v, want [%s]", got, route)
					}
					if nack != "" {
						c.nack(resp, nack)
					} else {
						c.ack(resp)
					}
					return resp.GetSystemVersionInfo()
				}
			}
			gateway := func(version string) []NodeACK {
				return []NodeACK{{NodeID: gatewayNode.GetId(), Kind: Gateway, Version: version, Counts: true}}
			}

			next("")
			v1 := routeVersion(t, h.eng, "default/hello", route)
			waitAcked(t, h.srv, resource.RouteType, route, gateway(v1))

			if err := h.eng.SetService(helloWithTimeout(time.Hour)); err != nil {
				t.Fatal(err)
			}
			rejected := next("route " + route + ": timeout out of range")
			if v := routeVersion(t, h.eng, "default/hello", route); v == v1 {
				t.Fatalf("the change did not change the route's version")
			}

			// The NACK is logged with what was rejected, by whom and why.
			deadline := time.Now().Add(waitFor)
			var entries []map[string]any
			for time.Now().Before(deadline) && len(entries) == 0 {
				entries = logEntries(t, h.logs.String(), "xDS config rejected (NACK)")
				time.Sleep(10 * time.Millisecond)
			}
			if len(entries) != 1 {
				t.Fatalf("%d NACK log entries, want 1; logs:\n%s", len(entries), h.logs.String())
			}
			e := entries[0]
			want := map[string]any{
				"level": "WARN", "node": gatewayNode.GetId(), "kind": "gateway", "type": resource.RouteType,
				"version": rejected, "resources": []any{route}, "error": "route " + route + ": timeout out of range",
			}
			for k, v := range want {
				if !reflect.DeepEqual(e[k], v) {
					t.Errorf("NACK log %s = %v, want %v", k, e[k], v)
				}
			}
			if e["nonce"] == "" || e["nonce"] == nil {
				t.Errorf("NACK log has no nonce: %v", e)
			}
			// The node keeps what it ACKed before.
			waitAcked(t, h.srv, resource.RouteType, route, gateway(v1))

			// The server keeps serving: the next change flows and is ACKed.
			if err := h.eng.SetService(helloWithTimeout(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if v := next(""); v == rejected {
				t.Errorf("the next push reused the rejected version %q", v)
			}
			waitAcked(t, h.srv, resource.RouteType, route, gateway(routeVersion(t, h.eng, "default/hello", route)))
		})
	}
}

func TestAckedReportsEveryStream(t *testing.T) {
	h := newHarness(t, hello())
	route := routeName("external", "hello")
	version := routeVersion(t, h.eng, "default/hello", route)

	sotwGW := h.sotw(t, &corev3.Node{Id: "a-envoy", UserAgentName: "envoy"})
	deltaGW := h.delta(t, &corev3.Node{Id: "b-envoy", UserAgentName: "envoy"})
	grpcClient := h.sotw(t, &corev3.Node{Id: "c-grpc", UserAgentName: "gRPC Go"})
	for _, c := range []*sotwClient{sotwGW, grpcClient} {
		c.subscribe(resource.RouteType, route)
	}
	deltaGW.subscribe(resource.RouteType, route)

	// Subscribed, not yet ACKed: known streams with no version.
	sotwResp, grpcResp, deltaResp := sotwGW.next(resource.RouteType), grpcClient.next(resource.RouteType), deltaGW.next(resource.RouteType)
	waitAcked(t, h.srv, resource.RouteType, route, []NodeACK{
		{NodeID: "a-envoy", Kind: Gateway, Counts: true}, {NodeID: "b-envoy", Kind: Gateway, Counts: true}, {NodeID: "c-grpc", Kind: Proxyless},
	})
	if got := deltaResp.GetResources()[0].GetVersion(); got != version {
		t.Errorf("delta resource version = %q, want ResourceVersion %q", got, version)
	}

	sotwGW.ack(sotwResp, route)
	grpcClient.ack(grpcResp, route)
	deltaGW.ack(deltaResp)
	// The state-of-the-world ACKs give the same versions as delta's.
	waitAcked(t, h.srv, resource.RouteType, route, []NodeACK{
		{NodeID: "a-envoy", Kind: Gateway, Version: version, Counts: true},
		{NodeID: "b-envoy", Kind: Gateway, Version: version, Counts: true},
		{NodeID: "c-grpc", Kind: Proxyless, Version: version},
	})
	if got := h.srv.Acked(resource.ClusterType, "default/hello-00001"); len(got) != 0 {
		t.Errorf("Acked for a type nobody asked for = %v, want none", got)
	}
}

func TestRestartUsesANewVersionPrefix(t *testing.T) {
	first := newHarness(t, hello())
	c := first.sotw(t, gatewayNode)
	c.subscribe(resource.ListenerType)
	before := c.next(resource.ListenerType)
	if !strings.HasPrefix(before.GetVersionInfo(), first.srv.VersionPrefix()) {
		t.Fatalf("version %q lacks the server's prefix %q", before.GetVersionInfo(), first.srv.VersionPrefix())
	}

	// The restarted control plane has the same config; a gateway
	// reconnecting with the version it holds must still get the state.
	second := newHarness(t, hello())
	if first.srv.VersionPrefix() == second.srv.VersionPrefix() {
		t.Fatalf("both servers use version prefix %q", first.srv.VersionPrefix())
	}
	c = second.sotw(t, gatewayNode)
	c.send(&discoveryv3.DiscoveryRequest{TypeUrl: resource.ListenerType, VersionInfo: before.GetVersionInfo()})
	after := c.next(resource.ListenerType)
	if after.GetVersionInfo() == before.GetVersionInfo() || !strings.HasPrefix(after.GetVersionInfo(), second.srv.VersionPrefix()) {
		t.Errorf("version after restart = %q, want a new one with prefix %q (before: %q)", after.GetVersionInfo(), second.srv.VersionPrefix(), before.GetVersionInfo())
	}
	if got, want := sotwNames(t, after), []string{"external", "internal"}; !reflect.DeepEqual(got, want) {
		t.Errorf("listeners after restart = %v, want %v", got, want)
	}
}

func TestNewVersionPrefixIsUniquePerStart(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	a, b := NewVersionPrefix(at), NewVersionPrefix(at)
	if a == b {
		t.Errorf("two starts at the same instant share prefix %q", a)
	}
	if want := strconv.FormatInt(at.UnixNano(), 36) + "-"; !strings.HasPrefix(a, want) {
		t.Errorf("prefix %q does not start with the start time in base 36 %q", a, want)
	}
}

// TestConflictingServicePublishedOnceTheOwnerGoes: the engine serves what
// translator.Translate would for a model in conflict (the watcher leaves
// the losers out of its model; a model from elsewhere may hold them).
func TestConflictingServicePublishedOnceTheOwnerGoes(t *testing.T) {
	const host = "shared.example.com"
	older := service("older", 0, vhost(host, model.External, split("default/older-00001", 100)))
	newer := service("newer", time.Minute, vhost(host, model.External, split("default/newer-00001", 100)))

	h := newHarness(t, model.Config{})
	gw := h.delta(t, gatewayNode)
	grpcClient := h.delta(t, proxylessNode)
	gw.subscribe(resource.RouteType)
	gw.subscribe(resource.ScopedRouteType)
	grpcClient.subscribe(resource.ListenerType)
	// Nothing is published yet: only wildcard's empty first responses.
	gw.collect()
	grpcClient.collect()

	steps := []struct {
		name      string
		do        func(e *Engine) error
		gateway   map[string]pushed
		proxyless map[string]pushed
	}{{
		name: "the older Service claims the host",
		do:   func(e *Engine) error { return e.SetService(older) },
		gateway: map[string]pushed{
			resource.RouteType:       {Updated: []string{routeName("external", "older")}},
			resource.ScopedRouteType: {Updated: []string{scopeName("external", host)}},
		},
		proxyless: map[string]pushed{resource.ListenerType: {Updated: []string{host}}},
	}, {
		name:      "the newer Service claims it too and is not published",
		do:        func(e *Engine) error { return e.SetService(newer) },
		gateway:   map[string]pushed{},
		proxyless: map[string]pushed{},
	}, {
		name: "the older Service is deleted and the newer one takes over",
		do:   func(e *Engine) error { return e.DeleteService("default/older") },
		gateway: map[string]pushed{
			resource.RouteType:       {Updated: []string{routeName("external", "newer")}, Removed: []string{routeName("external", "older")}},
			resource.ScopedRouteType: {Updated: []string{scopeName("external", host)}},
		},
		proxyless: map[string]pushed{resource.ListenerType: {Updated: []string{host}}},
	}}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			gw.t, grpcClient.t = t, t
			if err := step.do(h.eng); err != nil {
				t.Fatal(err)
			}
			if got := gw.collect(); !reflect.DeepEqual(got, step.gateway) {
				t.Errorf("gateway got %v, want %v", got, step.gateway)
			}
			if got := grpcClient.collect(); !reflect.DeepEqual(got, step.proxyless) {
				t.Errorf("proxyless client got %v, want %v", got, step.proxyless)
			}
		})
	}
}

// TestEngineWaiting: a Route is served once every connected gateway has
// ACKed what its Service publishes, and not before.
func TestEngineWaiting(t *testing.T) {
	const host = "hello.example.com"
	svc := service("hello", 0, vhost(host, model.External, split("default/hello-00001", 100)))
	h := newHarness(t, model.Config{})
	waitingFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(waitFor)
		got, hold := h.eng.Waiting(svc)
		for !strings.Contains(got, want) || (want == "") != (got == "") || hold != (want != "") {
			if time.Now().After(deadline) {
				t.Fatalf("Waiting = %q, %v; want %q", got, hold, want)
			}
			time.Sleep(10 * time.Millisecond)
			got, hold = h.eng.Waiting(svc)
		}
	}

	waitingFor("No gateway is connected")
	gw := h.delta(t, gatewayNode)
	gw.subscribe(resource.RouteType)
	gw.subscribe(resource.ScopedRouteType)
	gw.ack(gw.next(resource.RouteType)) // the wildcard's empty first response
	gw.ack(gw.next(resource.ScopedRouteType))
	waitingFor("Waiting for the gateways to apply the route.") // not pushed yet

	if err := h.eng.SetService(svc); err != nil {
		t.Fatal(err)
	}
	waitingFor("configurations pending") // pushed, not ACKed
	gw.ack(gw.next(resource.RouteType))
	gw.ack(gw.next(resource.ScopedRouteType))
	waitingFor("")

	// A proxyless client never holds a Route's readiness.
	grpcClient := h.delta(t, proxylessNode)
	grpcClient.subscribe(resource.RouteType)
	waitingFor("")
}

func TestServeStopsOnCancelWithOpenStreams(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := NewServer(ctx, ServerOptions{ShutdownGrace: 2 * time.Second})
	if _, err := NewEngine(srv, EngineOptions{}); err != nil {
		t.Fatal(err)
	}
	lis := testrun.Listen(t)
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, lis) }()

	h := &harness{srv: srv}
	h.conn = dial(t, lis.Addr().String())
	c := h.delta(t, gatewayNode)
	c.subscribe(resource.ListenerType)
	c.next(resource.ListenerType)

	start := time.Now()
	stop()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("Serve took %s to stop: streams were not ended", took)
		}
	case <-time.After(waitFor):
		t.Fatal("Serve did not return")
	}
	// The client sees its stream end.
	select {
	case _, ok := <-c.recv:
		if ok {
			t.Error("got a response after shutdown")
		}
	case <-time.After(waitFor):
		t.Error("the stream stayed open after shutdown")
	}
}

// TestPerTypeServices: clients that do not use ADS reach the same caches
// through the per-type discovery services, node kinds included.
func TestPerTypeServices(t *testing.T) {
	h := newHarness(t, hello())
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	lds, err := listenerservicev3.NewListenerDiscoveryServiceClient(h.conn).StreamListeners(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := lds.Send(&discoveryv3.DiscoveryRequest{Node: gatewayNode}); err != nil {
		t.Fatal(err)
	}
	resp, err := lds.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sotwNames(t, resp), []string{"external", "internal"}; !reflect.DeepEqual(got, want) {
		t.Errorf("LDS listeners = %v, want %v", got, want)
	}

	eds, err := endpointservicev3.NewEndpointDiscoveryServiceClient(h.conn).DeltaEndpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := eds.Send(&discoveryv3.DeltaDiscoveryRequest{Node: proxylessNode, ResourceNamesSubscribe: []string{"default/hello-00001"}}); err != nil {
		t.Fatal(err)
	}
	dresp, err := eds.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := deltaNames(dresp), []string{"default/hello-00001"}; !reflect.DeepEqual(got, want) {
		t.Errorf("EDS load assignments = %v, want %v", got, want)
	}
}
