package xds

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/kgate/kgate/translator/model"
)

// recorder is a cache that records every UpdateResources call.
type recorder struct {
	key   string
	calls *[]string
}

func (r recorder) UpdateResources(update map[string]types.Resource, remove []string) error {
	*r.calls = append(*r.calls, fmt.Sprintf("%s update=%v remove=%v", shortKey(r.key), slices.Sorted(maps.Keys(update)), remove))
	return nil
}

// shortKey names a cache in test output.
func shortKey(key string) string {
	switch key {
	case gatewayLDS, apiLDS:
		return key
	}
	return strings.TrimPrefix(key, resource.APITypePrefix+"envoy.config.")
}

func newRecordedEngine(t *testing.T) (*Engine, *[]string) {
	t.Helper()
	var calls []string
	caches := map[string]resourceCache{}
	for _, key := range pushOrder {
		caches[key] = recorder{key: key, calls: &calls}
	}
	e, err := newEngine(caches, EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return e, &calls
}

// TestEngineCacheWrites pins how a change reaches the caches: one call per
// cache, nothing for what did not change, additions in dependency order
// (clusters before the routes naming them) and removals in reverse.
func TestEngineCacheWrites(t *testing.T) {
	e, calls := newRecordedEngine(t)
	if want := []string{"lds/gateway update=[external internal] remove=[]"}; !reflect.DeepEqual(*calls, want) {
		t.Fatalf("NewEngine wrote %q, want %q", *calls, want)
	}

	two := fleet(2)
	moved := withService(fleet(2), service("svc-1", time.Second,
		vhost("svc-1.default.example.com", model.External, split("default/svc-1-00003", 100))))
	moved.Revisions = append(moved.Revisions, revision("svc-1-00003"))
	replaced := withService(fleet(2), service("svc-1", time.Second,
		vhost("svc-1.default.example.com", model.External, split("default/svc-1-00004", 100))))
	replaced.Revisions = append(replaced.Revisions, revision("svc-1-00004"))

	steps := []struct {
		name string
		cfg  model.Config
		want []string
	}{{
		name: "a fleet is added",
		cfg:  two,
		want: []string{
			"cluster.v3.Cluster update=[default/svc-0-00001 default/svc-0-00002 default/svc-1-00001 default/svc-1-00002] remove=[]",
			"endpoint.v3.ClusterLoadAssignment update=[default/svc-0-00001 default/svc-0-00001/pods default/svc-0-00002 default/svc-0-00002/pods default/svc-1-00001 default/svc-1-00001/pods default/svc-1-00002 default/svc-1-00002/pods] remove=[]",
			"route.v3.RouteConfiguration update=[external/default/svc-0 external/default/svc-1] remove=[]",
			"route.v3.ScopedRouteConfiguration update=[external/svc-0.default.example.com external/svc-1.default.example.com] remove=[]",
			"lds/proxyless update=[svc-0.default.example.com svc-1.default.example.com] remove=[]",
		},
	}, {
		name: "the same fleet",
		cfg:  fleet(2),
	}, {
		name: "a Service moves to a new revision",
		cfg:  moved,
		want: []string{
			"cluster.v3.Cluster update=[default/svc-1-00003] remove=[]",
			"route.v3.RouteConfiguration update=[external/default/svc-1] remove=[]",
		},
	}, {
		name: "a Service moves to a revision that replaces its old ones (a KIngress moving to a new backend)",
		cfg:  replaced,
		want: []string{
			"cluster.v3.Cluster update=[default/svc-1-00004] remove=[]",
			"route.v3.RouteConfiguration update=[external/default/svc-1] remove=[]",
			// Only once the route names the new cluster does the old go.
			"cluster.v3.Cluster update=[] remove=[default/svc-1-00003]",
		},
	}, {
		name: "a Service and its revisions go",
		cfg:  fleet(1),
		want: []string{
			"lds/proxyless update=[] remove=[svc-1.default.example.com]",
			"route.v3.ScopedRouteConfiguration update=[] remove=[external/svc-1.default.example.com]",
			"route.v3.RouteConfiguration update=[] remove=[external/default/svc-1]",
			"endpoint.v3.ClusterLoadAssignment update=[] remove=[default/svc-1-00001 default/svc-1-00001/pods default/svc-1-00002 default/svc-1-00002/pods]",
			"cluster.v3.Cluster update=[] remove=[default/svc-1-00001 default/svc-1-00002 default/svc-1-00004]",
		},
	}, {
		name: "everything goes",
		cfg:  model.Config{},
		want: []string{
			"lds/proxyless update=[] remove=[svc-0.default.example.com]",
			"route.v3.ScopedRouteConfiguration update=[] remove=[external/svc-0.default.example.com]",
			"route.v3.RouteConfiguration update=[] remove=[external/default/svc-0]",
			"endpoint.v3.ClusterLoadAssignment update=[] remove=[default/svc-0-00001 default/svc-0-00001/pods default/svc-0-00002 default/svc-0-00002/pods]",
			"cluster.v3.Cluster update=[] remove=[default/svc-0-00001 default/svc-0-00002]",
		},
	}}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			*calls = nil
			if err := e.Update(step.cfg); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*calls, step.want) {
				t.Errorf("cache writes:\n got %q\nwant %q", *calls, step.want)
			}
		})
	}
}

// TestEngineHostMovesBetweenServices: a host handed from one Service to
// another in one change is updated, never removed.
func TestEngineHostMovesBetweenServices(t *testing.T) {
	e, calls := newRecordedEngine(t)
	const host = "shop.example.com"
	a := service("a", 0, vhost(host, model.External, split("default/a-1", 100)))
	b := service("b", time.Second, vhost("b.example.com", model.External, split("default/b-1", 100)))
	if err := e.Update(model.Config{Services: []model.Service{a, b}}); err != nil {
		t.Fatal(err)
	}
	*calls = nil
	a.VirtualHosts = []model.VirtualHost{vhost("a.example.com", model.External, split("default/a-1", 100))}
	b.VirtualHosts = append(b.VirtualHosts, vhost(host, model.External, split("default/b-1", 100)))
	if err := e.Update(model.Config{Services: []model.Service{a, b}}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"route.v3.RouteConfiguration update=[external/default/a external/default/b] remove=[]",
		"route.v3.ScopedRouteConfiguration update=[external/a.example.com external/shop.example.com] remove=[]",
		"lds/proxyless update=[a.example.com shop.example.com] remove=[]",
	}
	if !reflect.DeepEqual(*calls, want) {
		t.Errorf("cache writes:\n got %q\nwant %q", *calls, want)
	}
}

// TestEngineUpdateRoutingKeepsEndpoints: the routing follows the
// manifests while the autoscaler owns the endpoints.
func TestEngineUpdateRoutingKeepsEndpoints(t *testing.T) {
	e, calls := newRecordedEngine(t)
	rev := model.Revision{Namespace: "default", Name: "a-00001", Protocol: model.HTTP1}
	ep := model.RevisionEndpoints{Revision: rev.Key(), Mode: model.Serve, Pods: []model.Endpoint{{Address: "127.0.0.1", Port: 9000}}}
	if err := e.SetEndpoints(ep); err != nil {
		t.Fatal(err)
	}
	*calls = nil
	if err := e.UpdateRouting(nil, []model.Revision{rev}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"cluster.v3.Cluster update=[default/a-00001] remove=[]"}; !reflect.DeepEqual(*calls, want) {
		t.Errorf("UpdateRouting wrote %q, want %q", *calls, want)
	}
	*calls = nil
	if err := e.UpdateRouting(nil, nil); err != nil {
		t.Fatal(err)
	}
	if want := []string{"cluster.v3.Cluster update=[] remove=[default/a-00001]"}; !reflect.DeepEqual(*calls, want) {
		t.Errorf("UpdateRouting without the revision wrote %q, want %q", *calls, want)
	}
}
