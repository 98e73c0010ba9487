package xds

import (
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// cacheClient drives a typeCache as go-control-plane's delta server does:
// one subscription per stream, a watch per request, and the returned
// version map stored after each response.
type cacheClient struct {
	t   *testing.T
	c   *typeCache
	sub stream.Subscription
	out chan cache.DeltaResponse
	// cancel closes the open watch, if any.
	cancel func()
}

func newCacheClient(t *testing.T, c *typeCache, subscribe []string, initial map[string]string) *cacheClient {
	t.Helper()
	cl := &cacheClient{t: t, c: c, out: make(chan cache.DeltaResponse, 1),
		sub: stream.NewDeltaSubscription(subscribe, nil, initial, true)}
	cl.watch(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: c.typeURL, ResourceNamesSubscribe: subscribe, InitialResourceVersions: initial})
	return cl
}

// watch opens the next watch for req.
func (cl *cacheClient) watch(req *discoveryv3.DeltaDiscoveryRequest) {
	cl.t.Helper()
	cancel, err := cl.c.CreateDeltaWatch(req, cl.sub, cl.out)
	if err != nil {
		cl.t.Fatalf("CreateDeltaWatch: %v", err)
	}
	cl.cancel = cancel
}

// next receives the pending response, if any, and ACKs it (opens the next
// watch). It returns the sorted names updated and removed, nil when there
// was no response.
func (cl *cacheClient) next() (updated, removed []string) {
	cl.t.Helper()
	updated, removed, ok := cl.recv()
	if ok {
		cl.ack()
	}
	return updated, removed
}

// recv receives the pending response, if any, and records what it carries
// as the server does, without opening a new watch.
func (cl *cacheClient) recv() (updated, removed []string, ok bool) {
	cl.t.Helper()
	select {
	case resp := <-cl.out:
		r, err := resp.GetDeltaDiscoveryResponse()
		if err != nil {
			cl.t.Fatalf("GetDeltaDiscoveryResponse: %v", err)
		}
		for _, res := range r.GetResources() {
			updated = append(updated, res.GetName())
		}
		removed = slices.Clone(r.GetRemovedResources())
		cl.sub.SetReturnedResources(resp.GetReturnedResources())
		cl.cancel()
		ok = true
	default:
	}
	slices.Sort(updated)
	slices.Sort(removed)
	return updated, removed, ok
}

// ack opens the next watch, as an ACK does on the server.
func (cl *cacheClient) ack() {
	cl.watch(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: cl.c.typeURL, ResponseNonce: "n"})
}

// known is the client's view: name → version, without the cache's marker.
func (cl *cacheClient) known() map[string]string {
	m := maps.Clone(cl.sub.ReturnedResources())
	delete(m, seqKey)
	return m
}

// clusterRes is a cluster whose content differs with seconds.
func clusterRes(name string, seconds int64) types.Resource {
	return &clusterv3.Cluster{Name: name, ConnectTimeout: &durationpb.Duration{Seconds: seconds}}
}

func newTestCache() *typeCache {
	return newTypeCache(resource.ClusterType, "test-", cacheLogger{slog.New(slog.DiscardHandler)})
}

func put(t *testing.T, c *typeCache, res map[string]types.Resource, del ...string) {
	t.Helper()
	if err := c.UpdateResources(res, del); err != nil {
		t.Fatalf("UpdateResources: %v", err)
	}
}

func TestTypeCacheDelta(t *testing.T) {
	c := newTestCache()
	put(t, c, map[string]types.Resource{"a": clusterRes("a", 1), "b": clusterRes("b", 1), "c": clusterRes("c", 1)})

	named := newCacheClient(t, c, []string{"a", "b"}, nil)
	wild := newCacheClient(t, c, nil, nil)
	check := func(step string, cl *cacheClient, wantUpdated, wantRemoved []string) {
		t.Helper()
		u, r := cl.next()
		if !slices.Equal(u, wantUpdated) || !slices.Equal(r, wantRemoved) {
			t.Errorf("%s: updated %v removed %v, want %v and %v", step, u, r, wantUpdated, wantRemoved)
		}
	}
	check("initial, by name", named, []string{"a", "b"}, nil)
	check("initial, wildcard", wild, []string{"a", "b", "c"}, nil)

	put(t, c, map[string]types.Resource{"a": clusterRes("a", 1)})
	check("same content again", named, nil, nil)
	check("same content again", wild, nil, nil)

	put(t, c, map[string]types.Resource{"c": clusterRes("c", 2)})
	check("c changed: not subscribed by name", named, nil, nil)
	check("c changed", wild, []string{"c"}, nil)

	put(t, c, map[string]types.Resource{"b": clusterRes("b", 2), "d": clusterRes("d", 1)}, "a")
	check("a removed, b changed, d added", named, []string{"b"}, []string{"a"})
	check("a removed, b changed, d added", wild, []string{"b", "d"}, []string{"a"})

	// A new subscription by name is answered at once with what exists.
	named.cancel()
	named.sub.UpdateResourceSubscriptions([]string{"c", "zz"}, nil)
	named.watch(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: c.typeURL, ResponseNonce: "n", ResourceNamesSubscribe: []string{"c", "zz"}})
	check("subscribe c and zz", named, []string{"c"}, nil)
	put(t, c, map[string]types.Resource{"zz": clusterRes("zz", 1)})
	check("zz appears", named, []string{"zz"}, nil)

	for _, cl := range []*cacheClient{named, wild} {
		for name, v := range cl.known() {
			if e := c.resources[name]; e == nil || e.version != v {
				t.Errorf("client knows %s at %q, cache has %v", name, v, e)
			}
		}
	}
}

// A client reconnecting with the versions it holds is sent only what
// differs, and one far behind a trimmed change log catches up in full.
func TestTypeCacheCatchUp(t *testing.T) {
	c := newTestCache()
	all := map[string]types.Resource{}
	for i := range 10 {
		all[fmt.Sprint("r", i)] = clusterRes(fmt.Sprint("r", i), 1)
	}
	put(t, c, all)
	first := newCacheClient(t, c, nil, nil)
	first.next()
	held := first.known()

	put(t, c, map[string]types.Resource{"r3": clusterRes("r3", 2)}, "r4")
	again := newCacheClient(t, c, nil, held)
	if u, r := again.next(); !slices.Equal(u, []string{"r3"}) || !slices.Equal(r, []string{"r4"}) {
		t.Errorf("reconnect: updated %v removed %v, want [r3] and [r4]", u, r)
	}

	// The first client receives that change too, but does not ACK while
	// the log outgrows its bound: once it does, it is compared in full.
	if u, r, _ := first.recv(); !slices.Equal(u, []string{"r3"}) || !slices.Equal(r, []string{"r4"}) {
		t.Errorf("first client: updated %v removed %v, want [r3] and [r4]", u, r)
	}
	for i := range minLog + 10 {
		put(t, c, map[string]types.Resource{"r5": clusterRes("r5", int64(3+i))})
	}
	if c.forgotten == 0 {
		t.Fatal("the change log was never trimmed")
	}
	first.ack()
	if u, r := first.next(); !slices.Equal(u, []string{"r5"}) || r != nil {
		t.Errorf("after the log was trimmed: updated %v removed %v, want [r5] and none", u, r)
	}
	want := map[string]string{}
	for name, e := range c.resources {
		want[name] = e.version
	}
	if got := first.known(); !reflect.DeepEqual(got, want) {
		t.Errorf("client knows %v, cache holds %v", got, want)
	}
}

// Unsubscribing a resource by name from a wildcard subscription asks for
// it again (the protocol's rule); an empty wildcard is answered at once.
func TestTypeCacheWildcard(t *testing.T) {
	c := newTestCache()
	empty := newCacheClient(t, c, nil, nil)
	if u, r := empty.next(); u != nil || r != nil {
		t.Errorf("empty cache: updated %v removed %v", u, r)
	}
	if len(empty.known()) != 0 {
		t.Errorf("empty cache: client knows %v", empty.known())
	}

	put(t, c, map[string]types.Resource{"a": clusterRes("a", 1)})
	wild := newCacheClient(t, c, []string{"*", "a"}, nil)
	wild.next()
	wild.cancel()
	wild.sub.UpdateResourceSubscriptions(nil, []string{"a"})
	wild.watch(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: c.typeURL, ResponseNonce: "n", ResourceNamesUnsubscribe: []string{"a"}})
	if u, _ := wild.next(); !slices.Equal(u, []string{"a"}) {
		t.Errorf("unsubscribing a from a wildcard: updated %v, want [a]", u)
	}
}
