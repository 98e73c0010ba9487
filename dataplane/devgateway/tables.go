package devgateway

import "sync"

// tables are what requests are routed with: the scopes, route
// configurations, clusters and endpoints the control plane sent, compiled.
// The xDS handlers replace entries, one handler at a time; requests read
// them. Every entry is immutable, so a request that has looked one up
// keeps a consistent view of it whatever changes meanwhile.
type tables struct {
	mu        sync.RWMutex
	scopes    map[scopeKey]*scope
	routes    map[string]*routeTable
	clusters  map[string]*cluster
	endpoints map[string]*endpointSet
}

func newTables() *tables {
	return &tables{
		scopes:    map[scopeKey]*scope{},
		routes:    map[string]*routeTable{},
		clusters:  map[string]*cluster{},
		endpoints: map[string]*endpointSet{},
	}
}

// scopedRoutes returns the route configuration of the scope with key k,
// nil if there is no such scope or its configuration has not arrived.
func (t *tables) scopedRoutes(k scopeKey) *routeTable {
	t.mu.RLock()
	defer t.mu.RUnlock()
	s, ok := t.scopes[k]
	switch {
	case !ok:
		return nil
	case s.inline != nil:
		return s.inline
	}
	return t.routes[s.routeName]
}

// routeTable returns the route configuration named name, nil if it has
// not arrived.
func (t *tables) routeTable(name string) *routeTable {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.routes[name]
}

// cluster returns the named cluster and the hosts it balances over; nil
// if the cluster is unknown.
func (t *tables) cluster(name string) (*cluster, []*host) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	c, ok := t.clusters[name]
	if !ok {
		return nil, nil
	}
	set := c.static
	if c.edsName != "" {
		set = t.endpoints[c.edsName]
	}
	if set == nil {
		return c, nil
	}
	return c, set.hosts
}

// endpointSet returns the load assignment named name, nil if none.
func (t *tables) endpointSet(name string) *endpointSet {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.endpoints[name]
}

// edit runs f with the tables locked for writing.
func (t *tables) edit(f func(t *tables)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f(t)
}
