package xds

import (
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
	"google.golang.org/protobuf/proto"
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
	// last is the last response received.
	last *discoveryv3.DeltaDiscoveryResponse
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
		cl.last = r
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
			if e, ok := c.resources[name]; !ok || e.version != v {
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

// sizedRes is a cluster whose encoding grows with n.
func sizedRes(name string, n int) types.Resource {
	return &clusterv3.Cluster{Name: name, AltStatName: strings.Repeat("x", n)}
}

func newBudgetCache(budget int) *typeCache {
	return newTypeCache(resource.ClusterType, "test-", cacheLogger{slog.New(slog.DiscardHandler)}, withMaxDeltaBytes(budget))
}

// A response takes resources in name order until the next would pass the
// budget; one larger than the budget goes alone; removals all go first.
func TestTypeCacheSplitsByBudget(t *testing.T) {
	// Names of one letter and contents of one length make every resource
	// the same size on the wire: s. Three fit, with room for two removed
	// names of five letters (seven bytes each), not three.
	s := newBudgetCache(0).sizeOf(t, sizedRes("a", 200))
	budget := 3*s + 15
	for _, tc := range []struct {
		name string
		// huge names the resources larger than the budget.
		names, huge []string
		// initial are the versions the client claims on connecting.
		initial     map[string]string
		wantUpdated [][]string
		wantRemoved []string
	}{{
		name:        "everything fits",
		names:       []string{"a", "b", "c"},
		wantUpdated: [][]string{{"a", "b", "c"}},
	}, {
		name:        "three fit in each",
		names:       []string{"a", "b", "c", "d", "e", "f", "g"},
		wantUpdated: [][]string{{"a", "b", "c"}, {"d", "e", "f"}, {"g"}},
	}, {
		name:        "a resource larger than the budget goes alone",
		names:       []string{"a", "b", "c", "d", "e", "f", "g"},
		huge:        []string{"e"},
		wantUpdated: [][]string{{"a", "b", "c"}, {"d"}, {"e"}, {"f", "g"}},
	}, {
		name:        "alone first too",
		names:       []string{"a", "b"},
		huge:        []string{"a"},
		wantUpdated: [][]string{{"a"}, {"b"}},
	}, {
		name:        "removals go first, all of them, and take their room",
		names:       []string{"a", "b", "c", "d"},
		initial:     map[string]string{"gone1": "v", "gone2": "v", "gone3": "v", "b": "stale"},
		wantUpdated: [][]string{{"a", "b"}, {"c", "d"}},
		wantRemoved: []string{"gone1", "gone2", "gone3"},
	}, {
		name:        "removals before a resource larger than the budget",
		names:       []string{"a"},
		huge:        []string{"a"},
		initial:     map[string]string{"gone": "v"},
		wantUpdated: [][]string{nil, {"a"}},
		wantRemoved: []string{"gone"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newBudgetCache(budget)
			res := map[string]types.Resource{}
			for _, name := range tc.names {
				res[name] = sizedRes(name, 200)
				if slices.Contains(tc.huge, name) {
					res[name] = sizedRes(name, 2*budget)
				}
			}
			put(t, c, res)
			cl := newCacheClient(t, c, nil, tc.initial)
			var updated [][]string
			var removed []string
			for range len(tc.wantUpdated) + 1 {
				u, r, ok := cl.recv()
				if !ok {
					break
				}
				updated = append(updated, u)
				removed = append(removed, r...)
				if len(updated) > 1 && r != nil {
					t.Errorf("part %d removes %v: removals go in the first", len(updated), r)
				}
				cl.ack()
			}
			if !reflect.DeepEqual(updated, tc.wantUpdated) || !slices.Equal(removed, tc.wantRemoved) {
				t.Errorf("parts %q removing %q, want %q removing %q", updated, removed, tc.wantUpdated, tc.wantRemoved)
			}
			if got, want := cl.known(), c.versions(nil); !reflect.DeepEqual(got, want) {
				t.Errorf("client knows %v, cache holds %v", got, want)
			}
		})
	}
}

// sizeOf is what res adds to a delta response of c.
func (c *typeCache) sizeOf(t *testing.T, res types.Resource) int {
	t.Helper()
	name := cache.GetResourceName(res)
	put(t, c, map[string]types.Resource{name: res})
	return c.resources[name].size
}

// versions are the resources the cache holds, and their versions; only
// those named when names is not nil.
func (c *typeCache) versions(names []string) map[string]string {
	out := map[string]string{}
	for name, e := range c.resources {
		if names == nil || slices.Contains(names, name) {
			out[name] = e.version
		}
	}
	return out
}

// A client sent a response in parts gets everything, whatever the cache
// does between the parts, and each part stays within the budget. The
// sequence a partial response records must not claim the client up to
// date: each scenario takes a different way to the comparison of what it
// lacks.
func TestTypeCacheSplitCatchesUp(t *testing.T) {
	const budget = 1000
	names := make([]string, 40)
	fleetRes := map[string]types.Resource{}
	for i := range names {
		names[i] = fmt.Sprintf("r%02d", i)
		// 50 to 350 bytes, and one three times the budget.
		size := 50 + (i*37)%300
		if i == 17 {
			size = 3 * budget
		}
		fleetRes[names[i]] = sizedRes(names[i], size)
	}
	// changeAll gives every resource a new version.
	changeAll := func(t *testing.T, c *typeCache) {
		changed := map[string]types.Resource{}
		for _, name := range names {
			changed[name] = sizedRes(name, 100+len(name))
		}
		put(t, c, changed)
	}
	// synced is a client subscribed to subscribe that has received and
	// ACKed everything.
	synced := func(t *testing.T, c *typeCache, subscribe []string) *cacheClient {
		cl := newCacheClient(t, c, subscribe, nil)
		for i := 0; ; i++ {
			if _, _, ok := cl.recv(); !ok {
				return cl
			}
			cl.ack()
		}
	}

	for _, tc := range []struct {
		name string
		// start connects the client; the first part may be pending.
		start func(t *testing.T, c *typeCache) *cacheClient
		// between, if set, changes the cache after the client received
		// part i (from 0) and before it ACKs it.
		between func(t *testing.T, c *typeCache, i int)
		// subscribed are the names the client ends up subscribed to, nil
		// for every resource (a wildcard).
		subscribed  []string
		wantRemoved []string
	}{{
		name:  "initial wildcard",
		start: func(t *testing.T, c *typeCache) *cacheClient { return newCacheClient(t, c, nil, nil) },
	}, {
		name: "reconnecting with stale and gone names",
		start: func(t *testing.T, c *typeCache) *cacheClient {
			return newCacheClient(t, c, nil, map[string]string{"r03": "stale", "gone-a": "v", "gone-b": "v"})
		},
		wantRemoved: []string{"gone-a", "gone-b"},
	}, {
		name: "every resource changes under an up-to-date client (the change log alone)",
		start: func(t *testing.T, c *typeCache) *cacheClient {
			cl := synced(t, c, nil)
			changeAll(t, c)
			return cl
		},
	}, {
		name: "a request subscribes to names by the dozen",
		start: func(t *testing.T, c *typeCache) *cacheClient {
			cl := synced(t, c, []string{"r00"})
			cl.cancel()
			cl.sub.UpdateResourceSubscriptions(names, nil)
			cl.watch(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: c.typeURL, ResponseNonce: "n", ResourceNamesSubscribe: names})
			return cl
		},
		subscribed: names,
	}, {
		name:  "changes between the parts",
		start: func(t *testing.T, c *typeCache) *cacheClient { return newCacheClient(t, c, nil, nil) },
		between: func(t *testing.T, c *typeCache, i int) {
			if i != 1 {
				return
			}
			// r00 was sent in the first part, r39 not yet.
			put(t, c, map[string]types.Resource{
				"r00": sizedRes("r00", 7), "r38": sizedRes("r38", 8), "new": sizedRes("new", 9),
			}, "r01", "r39")
		},
		wantRemoved: []string{"r01"},
	}, {
		name: "the change log is trimmed between the parts",
		start: func(t *testing.T, c *typeCache) *cacheClient {
			cl := synced(t, c, nil)
			changeAll(t, c)
			return cl
		},
		between: func(t *testing.T, c *typeCache, i int) {
			if i != 0 {
				return
			}
			for j := range minLog + 2*len(names) {
				put(t, c, map[string]types.Resource{"r05": sizedRes("r05", 10+j%2)})
			}
			if c.forgotten == 0 {
				t.Fatal("the change log was never trimmed")
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newBudgetCache(budget)
			put(t, c, fleetRes)
			cl := tc.start(t, c)
			var removed []string
			parts := 0
			for ; ; parts++ {
				u, r, ok := cl.recv()
				if !ok {
					break
				}
				if parts > 100 {
					t.Fatal("more than 100 parts: the sync never ends")
				}
				if len(u)+len(r) == 0 {
					t.Errorf("part %d carries nothing", parts)
				}
				removed = append(removed, r...)
				header := proto.Size(&discoveryv3.DeltaDiscoveryResponse{TypeUrl: cl.last.GetTypeUrl(), SystemVersionInfo: cl.last.GetSystemVersionInfo()})
				if size := proto.Size(cl.last); size > budget+header && len(u) > 1 {
					t.Errorf("part %d is %d bytes (%v), past the budget %d plus the header's %d", parts, size, u, budget, header)
				}
				if tc.between != nil {
					tc.between(t, c, parts)
				}
				cl.ack()
			}
			if parts < 2 {
				t.Errorf("%d parts: the budget did not split the response", parts)
			}
			slices.Sort(removed)
			if !slices.Equal(removed, tc.wantRemoved) {
				t.Errorf("removed %v, want %v", removed, tc.wantRemoved)
			}
			if got, want := cl.known(), c.versions(tc.subscribed); !reflect.DeepEqual(got, want) {
				t.Errorf("client knows %d resources, cache holds %d; differing: %v", len(got), len(want), differing(got, want))
			}
			if last, _ := seqOf(cl.sub.ReturnedResources()); last != c.seq {
				t.Errorf("the client is up to date with sequence %d, the cache is at %d", last, c.seq)
			}
		})
	}
}

// differing lists the names two version maps disagree on.
func differing(a, b map[string]string) []string {
	var out []string
	for name := range a {
		if a[name] != b[name] {
			out = append(out, name)
		}
	}
	for name := range b {
		if _, ok := a[name]; !ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}
