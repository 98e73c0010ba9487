package devgateway

import (
	"fmt"
	"maps"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/kgate/kgate/dataplane/xdsclient"
)

// feed applies what the control plane sends: it holds the xDS handlers
// and subscribes as Envoy does — LDS and CDS to everything, SRDS to
// everything once a listener routes by scopes, RDS to the route
// configurations that scopes and listeners name, EDS to the load
// assignments that clusters name, SDS to the secrets TLS handshakes ask
// for (certStore).
//
// Each handler compiles every resource of its update before it changes
// anything, so that a resource it cannot serve refuses the update whole
// (a NACK) and leaves the gateway as it was. The client calls the handlers
// one at a time, so the feed's own state needs no lock.
type feed struct {
	g    *Gateway
	srds *xdsclient.Watch
	rds  *refs
	eds  *refs

	// scopes are the scopes received, by name.
	scopes map[string]*scope
	// listenerRoutes maps each listener routing over RDS to the route
	// configuration it names; scoped tells, by listener, which route by
	// scopes.
	listenerRoutes map[string]string
	scoped         map[string]bool
	// scopesWatched is whether SRDS is subscribed.
	scopesWatched bool
}

func newFeed(g *Gateway, c *xdsclient.Client) *feed {
	f := &feed{g: g, scopes: map[string]*scope{}, listenerRoutes: map[string]string{}, scoped: map[string]bool{}}
	// Watches subscribe in the order they are made, the order Envoy's
	// first requests go in: clusters and their endpoints, then
	// listeners and their routes.
	c.Watch(resource.ClusterType, f.onClusters, xdsclient.Wildcard)
	f.eds = newRefs(c.Watch(resource.EndpointType, f.onEndpoints), func(name string) {
		g.tables.edit(func(t *tables) { delete(t.endpoints, name) })
	})
	c.Watch(resource.ListenerType, f.onListeners, xdsclient.Wildcard)
	// Secrets by name, as TLS handshakes ask for them (certStore).
	g.certs.sub = c.Watch(resource.SecretType, g.certs.apply)
	f.srds = c.Watch(resource.ScopedRouteType, f.onScopes)
	f.rds = newRefs(c.Watch(resource.RouteType, f.onRoutes), func(name string) {
		g.tables.edit(func(t *tables) { delete(t.routes, name) })
	})
	return f
}

// compileAll compiles every resource of an update, which must be of
// type M; the first that fails fails the update.
func compileAll[M proto.Message, T any](u xdsclient.Update, compile func(M) (T, error)) ([]T, error) {
	out := make([]T, 0, len(u.Resources))
	for _, r := range u.Resources {
		m, ok := r.Message.(M)
		if !ok {
			return nil, fmt.Errorf("resource %s: got a %T", r.Name, r.Message)
		}
		c, err := compile(m)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", m.ProtoReflect().Descriptor().Name(), r.Name, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func (f *feed) onListeners(u xdsclient.Update) error {
	cfgs, err := compileAll(u, func(l *listenerv3.Listener) (*listenerConfig, error) {
		return compileListener(l, f.g.certs)
	})
	if err != nil {
		return err
	}
	if err := f.g.applyListeners(cfgs, u.Removed); err != nil {
		return err
	}
	for _, cfg := range cfgs {
		f.rds.replace(f.listenerRoutes[cfg.name], cfg.cm.routes.rdsName)
		f.listenerRoutes[cfg.name] = cfg.cm.routes.rdsName
		f.scoped[cfg.name] = cfg.cm.routes.scoped != nil
	}
	for _, name := range u.Removed {
		f.rds.remove(f.listenerRoutes[name])
		delete(f.listenerRoutes, name)
		delete(f.scoped, name)
	}
	f.syncScopeSubscription()
	return nil
}

// syncScopeSubscription subscribes SRDS while a listener routes by
// scopes, and forgets every scope once none does.
func (f *feed) syncScopeSubscription() {
	want := false
	for _, scoped := range f.scoped {
		want = want || scoped
	}
	if want == f.scopesWatched {
		return
	}
	f.scopesWatched = want
	if want {
		f.srds.Subscribe(xdsclient.Wildcard)
		return
	}
	f.srds.Unsubscribe(xdsclient.Wildcard)
	f.g.tables.edit(func(t *tables) { clear(t.scopes) })
	for _, s := range f.scopes {
		f.rds.remove(s.routeName)
	}
	clear(f.scopes)
}

func (f *feed) onScopes(u xdsclient.Update) error {
	updated, err := compileAll(u, compileScope)
	if err != nil {
		return err
	}
	// Envoy refuses an update leaving two scopes with one key.
	next := maps.Clone(f.scopes)
	for _, s := range updated {
		next[s.name] = s
	}
	for _, name := range u.Removed {
		delete(next, name)
	}
	owners := map[scopeKey]string{}
	for _, s := range next {
		if other, dup := owners[s.key]; dup {
			return fmt.Errorf("scoped route configurations %s and %s have the same key", other, s.name)
		}
		owners[s.key] = s.name
	}

	for _, s := range updated {
		f.rds.replace(f.scopes[s.name].rdsName(), s.routeName)
	}
	for _, name := range u.Removed {
		f.rds.remove(f.scopes[name].rdsName())
	}
	f.g.tables.edit(func(t *tables) {
		// Removals first: a key may pass from one scope to another.
		for _, s := range f.scopes {
			if next[s.name] != s {
				delete(t.scopes, s.key)
			}
		}
		for _, s := range updated {
			t.scopes[s.key] = s
		}
	})
	f.scopes = next
	return nil
}

func (f *feed) onRoutes(u xdsclient.Update) error {
	updated, err := compileAll(u, compileRouteTable)
	if err != nil {
		return err
	}
	f.g.tables.edit(func(t *tables) {
		for _, rt := range updated {
			t.routes[rt.name] = rt
		}
		for _, name := range u.Removed {
			delete(t.routes, name)
		}
	})
	return nil
}

func (f *feed) onClusters(u xdsclient.Update) error {
	updated, err := compileAll(u, compileCluster)
	if err != nil {
		return err
	}
	var retired []*upstream
	// previousEDS are the load assignments the replaced and removed
	// clusters named.
	previousEDS := map[string]string{}
	f.g.tables.edit(func(t *tables) {
		for _, c := range updated {
			if prev, ok := t.clusters[c.name]; ok {
				previousEDS[c.name] = prev.edsName
			}
			if up := c.adopt(t.clusters[c.name]); up != nil {
				retired = append(retired, up)
			}
			t.clusters[c.name] = c
		}
		for _, name := range u.Removed {
			if prev, ok := t.clusters[name]; ok {
				previousEDS[name] = prev.edsName
				retired = append(retired, prev.up)
				delete(t.clusters, name)
			}
		}
	})
	for _, up := range retired {
		up.retire()
	}
	for _, c := range updated {
		f.eds.replace(previousEDS[c.name], c.edsName)
	}
	for _, name := range u.Removed {
		f.eds.remove(previousEDS[name])
	}
	return nil
}

func (f *feed) onEndpoints(u xdsclient.Update) error {
	type assignment struct {
		name string
		set  *endpointSet
	}
	// A load assignment is named by its cluster_name, as in Envoy.
	updated, err := compileAll(u, func(cla *endpointv3.ClusterLoadAssignment) (assignment, error) {
		set, err := compileAssignment(cla, f.g.tables.endpointSet(cla.GetClusterName()))
		return assignment{cla.GetClusterName(), set}, err
	})
	if err != nil {
		return err
	}
	f.g.tables.edit(func(t *tables) {
		for _, a := range updated {
			t.endpoints[a.name] = a.set
		}
		for _, name := range u.Removed {
			delete(t.endpoints, name) // the clusters naming it have no hosts
		}
	})
	return nil
}
