package xds

import (
	"context"
	"errors"
	"fmt"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
)

// EngineOptions configure an Engine.
type EngineOptions struct {
	// Translator are the deployment facts passed to the translator.
	Translator translator.Options
	// Logger receives what the engine pushes, at debug level; nil discards.
	Logger *slog.Logger
}

// Engine holds the current model and pushes into the server's caches only
// what a change alters: one UpdateResources per cache and change, with
// every resource whose encoding is unchanged left alone, so that no client is
// sent a version bump for identical content. Its methods are safe for
// concurrent use; changes apply one at a time.
//
// The watcher decides host conflicts while it builds the model, for the
// statuses; the engine applies the same rule (translator.HostIndex) to
// what it serves, so that its output equals translator.Translate's for any
// model, a Service in conflict publishing nothing.
type Engine struct {
	mu sync.Mutex

	caches map[string]resourceCache
	opts   translator.Options
	hosts  *translator.HostIndex
	// acked is the server's record of what each stream ACKed (nil without
	// a server: nothing is tracked).
	acked func(typeURL, name string) []NodeACK
	// stale is how long a gateway may stay behind before it no longer
	// holds readiness (ServerOptions.StaleAfter).
	stale time.Duration
	// applied and changes are the server's view of what the gateways hold
	// (nil without a server): apply holds a route back, for at most
	// routeHold, until the clusters and endpoints it names are applied.
	applied   func(want []heldVersion, stale time.Duration) bool
	changes   func() <-chan struct{}
	routeHold time.Duration
	log       *slog.Logger
	// apiListeners says the Services' API listeners are published. With a
	// server they are built only once a proxyless gRPC client first asks
	// for listeners (startAPIListeners): a gateway never reads them, and
	// they were a tenth of the engine's heap at 10,000 Services.
	apiListeners bool

	services  map[string]model.Service
	revisions map[string]model.Revision
	endpoints map[string]model.RevisionEndpoints

	// owned maps an owner (see owner) to what it published: one slice of
	// exact size per owner rather than a map by cache, which cost a few
	// hundred bytes per Revision and per revision's endpoints.
	owned map[string][]published
	// current is the wire version (ResourceVersion) of what the caches
	// hold, by cache and name, for caches that do not tell it themselves
	// (see version). The engine keeps no proto once pushed: a change is
	// compared by version, and the caches keep the encoding.
	current map[string]map[string]string
}

// resourceCache is the part of a typeCache the engine writes.
type resourceCache interface {
	UpdateResources(toUpdate map[string]types.Resource, toDelete []string) error
}

// encodedCache is a resourceCache that takes the encodings the engine
// computed for the versions, so that a resource is encoded once, and
// tells the version of what it holds, so that the engine need not keep a
// copy of its versions.
type encodedCache interface {
	updateEncoded(enc map[string]encoded, toDelete []string) error
	version(name string) (string, bool)
}

// pushOrder lists the caches so that a resource is pushed after the ones
// it references: clusters before their endpoints and the routes that name
// them, route configurations before the scopes and listeners naming them.
var pushOrder = []string{
	resource.SecretType,
	resource.ClusterType,
	resource.EndpointType,
	resource.RouteType,
	resource.ScopedRouteType,
	apiLDS,
	gatewayLDS,
}

// defaultRouteHold bounds how long a route waits for the gateways to apply
// the clusters it names: far above a healthy gateway's round trip, short
// enough that a stuck gateway does not stall every change behind it.
const defaultRouteHold = 2 * time.Second

// NewEngine returns an engine writing to the server's caches, which it must
// be the only writer of. It publishes the gateway listeners at once.
func NewEngine(srv *Server, opts EngineOptions) (*Engine, error) {
	caches := make(map[string]resourceCache, len(srv.caches))
	for key, c := range srv.caches {
		caches[key] = c
	}
	e, err := newEngine(caches, opts)
	if err != nil {
		return nil, err
	}
	e.acked = srv.Acked
	e.stale = srv.stale
	e.applied = srv.acks.applied
	e.changes = srv.acks.changes
	e.routeHold = defaultRouteHold
	// No one else holds e yet: the hook below is its first sharing.
	e.apiListeners = false
	if !srv.caches[apiLDS].setOnFirstWatch(e.startAPIListeners) {
		// A proxyless client has asked already.
		e.startAPIListeners()
	}
	return e, nil
}

// startAPIListeners publishes every Service's API listeners, and every
// change's from then on. It runs once, when the first proxyless client
// opens a listener watch: that watch sees them all. Translating every
// Service again for them costs about what the start-up did, once.
func (e *Engine) startAPIListeners() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.apiListeners {
		return
	}
	e.apiListeners = true
	b := newBatch()
	for _, key := range sortedKeys(e.services) {
		if _, inConflict := e.hosts.Conflict(key); inConflict {
			continue
		}
		owner := serviceOwner(key)
		for _, l := range translator.Service(e.services[key], e.opts).APIListeners {
			b.put(apiLDS, l.GetName(), l)
			e.owned[owner] = append(e.owned[owner], published{cacheKey: apiLDS, name: l.GetName()})
		}
	}
	if err := e.apply(b); err != nil {
		e.log.Error("publishing the API listeners for proxyless gRPC clients", "err", err)
	}
}

func newEngine(caches map[string]resourceCache, opts EngineOptions) (*Engine, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{
		caches:    caches,
		opts:      opts.Translator,
		hosts:     translator.NewHostIndex(),
		log:       logger,
		services:  map[string]model.Service{},
		revisions: map[string]model.Revision{},
		endpoints: map[string]model.RevisionEndpoints{},
		owned:     map[string][]published{},
		current:   map[string]map[string]string{},
		// Without a server (tests writing to recorders) nothing tells
		// when a proxyless client comes: publish them all along.
		apiListeners: true,
	}
	for _, key := range pushOrder {
		e.current[key] = map[string]string{}
	}
	b := newBatch()
	e.publish("listeners", translator.Listeners(e.opts), b)
	if err := e.apply(b); err != nil {
		return nil, fmt.Errorf("publishing the gateway listeners: %w", err)
	}
	return e, nil
}

// SetSecret adds or replaces an SDS secret (a host's certificate, see
// translator.Secret): only gateways receive it, and only its name is ever
// logged.
func (e *Engine) SetSecret(s *tlsv3.Secret) error {
	return e.change(func(c *change) {
		c.e.publish(secretOwner(s.GetName()), translator.Output{Secrets: []*tlsv3.Secret{s}}, c.b)
	})
}

// DeleteSecret removes an SDS secret.
func (e *Engine) DeleteSecret(name string) error {
	return e.change(func(c *change) { c.e.publish(secretOwner(name), translator.Output{}, c.b) })
}

// SetService adds or replaces a Service.
func (e *Engine) SetService(svc model.Service) error {
	return e.change(func(c *change) { c.setService(svc) })
}

// DeleteService removes the Service with this key ("namespace/name").
func (e *Engine) DeleteService(key string) error {
	return e.change(func(c *change) { c.deleteService(key) })
}

// SetRevision adds or replaces a Revision.
func (e *Engine) SetRevision(rev model.Revision) error {
	return e.change(func(c *change) { c.setRevision(rev) })
}

// DeleteRevision removes the Revision with this key.
func (e *Engine) DeleteRevision(key string) error {
	return e.change(func(c *change) { c.deleteRevision(key) })
}

// SetEndpoints adds or replaces a revision's endpoints.
func (e *Engine) SetEndpoints(ep model.RevisionEndpoints) error {
	return e.change(func(c *change) { c.setEndpoints(ep) })
}

// DeleteEndpoints removes the endpoints of the revision with this key.
func (e *Engine) DeleteEndpoints(revisionKey string) error {
	return e.change(func(c *change) { c.deleteEndpoints(revisionKey) })
}

// Update replaces the whole model: it diffs cfg against the current model
// by key and applies only the differences, as one change. Within cfg, a
// later item wins over an earlier one with the same key.
func (e *Engine) Update(cfg model.Config) error {
	return e.change(func(c *change) {
		c.routing(cfg.Services, cfg.Revisions)
		endpoints := make(map[string]model.RevisionEndpoints, len(cfg.Endpoints))
		for _, ep := range cfg.Endpoints {
			endpoints[ep.Revision] = ep
		}
		for _, key := range sortedKeys(e.endpoints) {
			if _, ok := endpoints[key]; !ok {
				c.deleteEndpoints(key)
			}
		}
		for _, key := range sortedKeys(endpoints) {
			c.setEndpoints(endpoints[key])
		}
	})
}

// UpdateRouting replaces the Services and Revisions as Update does and
// leaves every revision's endpoints alone: for a caller whose endpoints
// come from elsewhere (the autoscaler) while the routing follows the
// manifests.
func (e *Engine) UpdateRouting(services []model.Service, revisions []model.Revision) error {
	return e.change(func(c *change) { c.routing(services, revisions) })
}

// PatchRouting applies part of a model, as one change: the Services and
// Revisions given are added or replaced, the deleted keys removed, and
// every other one is left as it is. It is UpdateRouting for a source that
// knows what changed (knative.Result.Changed): its cost follows the
// change, not the model.
func (e *Engine) PatchRouting(services []model.Service, deletedServices []string, revisions []model.Revision, deletedRevisions []string) error {
	return e.change(func(c *change) {
		for _, key := range deletedServices {
			c.deleteService(key)
		}
		for _, key := range deletedRevisions {
			c.deleteRevision(key)
		}
		for _, svc := range services {
			c.setService(svc)
		}
		for _, rev := range revisions {
			c.setRevision(rev)
		}
	})
}

// routing diffs the Services and Revisions against the current model.
func (c *change) routing(svcs []model.Service, revs []model.Revision) {
	e := c.e
	services := make(map[string]model.Service, len(svcs))
	for _, svc := range svcs {
		services[svc.Key()] = svc
	}
	revisions := make(map[string]model.Revision, len(revs))
	for _, rev := range revs {
		revisions[rev.Key()] = rev
	}
	for _, key := range sortedKeys(e.services) {
		if _, ok := services[key]; !ok {
			c.deleteService(key)
		}
	}
	for _, key := range sortedKeys(e.revisions) {
		if _, ok := revisions[key]; !ok {
			c.deleteRevision(key)
		}
	}
	for _, key := range sortedKeys(services) {
		c.setService(services[key])
	}
	for _, key := range sortedKeys(revisions) {
		c.setRevision(revisions[key])
	}
}

// Waiting says whether the gateways serve svc as given. hold is true while
// a gateway that counts (see NodeACK.Counts) has not ACKed every route
// configuration and scope svc publishes, with msg saying why; a gateway
// that has left a response unanswered for longer than the server's
// StaleAfter does not hold svc but is named in msg, with hold false. A
// Service the engine does not hold as given is waiting by definition: its
// gateways cannot have applied it yet.
func (e *Engine) Waiting(svc model.Service) (msg string, hold bool) {
	if e.acked == nil {
		return "", false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	gateways := 0
	for _, a := range e.acked(resource.RouteType, "") {
		if a.Counts {
			gateways++
		}
	}
	if gateways == 0 {
		return "No gateway is connected to kgate's xDS server yet.", true
	}
	key := svc.Key()
	if held, ok := e.services[key]; !ok || !reflect.DeepEqual(held, svc) {
		return "Waiting for the gateways to apply the route.", true
	}
	versions, err := e.serviceVersions(key)
	if err != nil {
		return "Waiting for the gateways to apply the route (" + err.Error() + ").", true
	}
	waiting := 0
	stale := map[string]bool{}
	for _, typeURL := range []string{resource.RouteType, resource.ScopedRouteType} {
		for name, v := range versions[typeURL] {
			for _, a := range e.acked(typeURL, name) {
				switch {
				case !a.Counts || a.Version == v:
				case e.stale > 0 && a.Behind > e.stale:
					stale[a.NodeID] = true
				default:
					waiting++
				}
			}
		}
	}
	if waiting > 0 {
		return fmt.Sprintf("Waiting for the gateways to apply the route (%d configurations pending).", waiting), true
	}
	if len(stale) > 0 {
		return fmt.Sprintf("Gateway %s has not answered the control plane for over %s; not waiting for it.",
			strings.Join(slices.Sorted(maps.Keys(stale)), ", "), e.stale), false
	}
	return "", false
}

// ServiceVersions returns the wire versions (see ResourceVersion) of what
// the Service with this key publishes, by type URL and resource name. It is
// empty when the Service publishes nothing: unknown, or in conflict.
// With Server.Acked it tells whether the gateways applied a Service.
func (e *Engine) ServiceVersions(key string) (map[string]map[string]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out, err := e.serviceVersions(key)
	if err != nil || e.apiListeners {
		return out, err
	}
	// The API listeners are not built yet (no proxyless client asked):
	// their versions are those they will have.
	svc, ok := e.services[key]
	if _, inConflict := e.hosts.Conflict(key); !ok || inConflict {
		return out, nil
	}
	for _, l := range translator.Service(svc, e.opts).APIListeners {
		v, err := ResourceVersion(l)
		if err != nil {
			return nil, fmt.Errorf("computing the version of API listener %q: %w", l.GetName(), err)
		}
		if out[resource.ListenerType] == nil {
			out[resource.ListenerType] = map[string]string{}
		}
		out[resource.ListenerType][l.GetName()] = v
	}
	return out, nil
}

func (e *Engine) serviceVersions(key string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for _, p := range e.owned[serviceOwner(key)] {
		typeURL := cacheTypeURL(p.cacheKey)
		v, ok := e.version(p.cacheKey, p.name)
		if !ok {
			// A resource that failed to encode was never pushed.
			return nil, fmt.Errorf("%s %q was not published", typeURL, p.name)
		}
		if out[typeURL] == nil {
			out[typeURL] = map[string]string{}
		}
		out[typeURL][p.name] = v
	}
	return out, nil
}

// cacheTypeURL is the type URL a cache serves.
func cacheTypeURL(cacheKey string) string {
	if cacheKey == gatewayLDS || cacheKey == apiLDS {
		return resource.ListenerType
	}
	return cacheKey
}

// change is one change in the making: the model edits and the Services
// whose output must be recomputed once every edit is done, since a host
// moving between Services can flip the conflict state of several.
type change struct {
	e     *Engine
	b     *batch
	dirty map[string]bool
}

// change applies edit to the model and pushes the result.
func (e *Engine) change(edit func(*change)) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := &change{e: e, b: newBatch(), dirty: map[string]bool{}}
	edit(c)
	for _, key := range sortedKeys(c.dirty) {
		out := translator.Output{}
		_, inConflict := e.hosts.Conflict(key)
		if svc, ok := e.services[key]; ok && !inConflict {
			out = translator.Service(svc, e.opts)
		}
		e.publish(serviceOwner(key), out, c.b)
	}
	return e.apply(c.b)
}

func (c *change) setService(svc model.Service) {
	key := svc.Key()
	if old, ok := c.e.services[key]; ok && reflect.DeepEqual(old, svc) {
		return
	}
	c.e.services[key] = svc
	c.dirty[key] = true
	for _, k := range c.e.hosts.Set(svc) {
		c.dirty[k] = true
	}
}

func (c *change) deleteService(key string) {
	if _, ok := c.e.services[key]; !ok {
		return
	}
	delete(c.e.services, key)
	c.dirty[key] = true
	for _, k := range c.e.hosts.Delete(key) {
		c.dirty[k] = true
	}
}

func (c *change) setRevision(rev model.Revision) {
	key := rev.Key()
	if old, ok := c.e.revisions[key]; ok && reflect.DeepEqual(old, rev) {
		return
	}
	c.e.revisions[key] = rev
	c.e.publish(revisionOwner(key), translator.Revision(rev, c.e.opts), c.b)
}

func (c *change) deleteRevision(key string) {
	if _, ok := c.e.revisions[key]; !ok {
		return
	}
	delete(c.e.revisions, key)
	c.e.publish(revisionOwner(key), translator.Output{}, c.b)
}

func (c *change) setEndpoints(ep model.RevisionEndpoints) {
	key := ep.Revision
	if old, ok := c.e.endpoints[key]; ok && reflect.DeepEqual(old, ep) {
		return
	}
	c.e.endpoints[key] = ep
	c.e.publish(endpointsOwner(key), translator.Endpoints(ep, c.e.opts), c.b)
}

func (c *change) deleteEndpoints(key string) {
	if _, ok := c.e.endpoints[key]; !ok {
		return
	}
	delete(c.e.endpoints, key)
	c.e.publish(endpointsOwner(key), translator.Output{}, c.b)
}

// Owners of published resources: a Service owns its route configurations,
// scopes and API listeners, a Revision its cluster, a revision's endpoints
// its load assignments.
func serviceOwner(key string) string   { return "service/" + key }
func revisionOwner(key string) string  { return "revision/" + key }
func endpointsOwner(key string) string { return "endpoints/" + key }
func secretOwner(name string) string   { return "secret/" + name }

// published names a resource in its cache.
type published struct {
	cacheKey string
	name     string
}

// publish makes out everything owner publishes: what it published before
// and no longer does is deleted.
func (e *Engine) publish(owner string, out translator.Output, b *batch) {
	now := make([]published, 0, len(out.Listeners)+len(out.APIListeners)+len(out.ScopedRoutes)+
		len(out.Routes)+len(out.Clusters)+len(out.Endpoints)+len(out.Secrets))
	add := func(cacheKey string, res types.Resource) {
		name := cache.GetResourceName(res)
		now = append(now, published{cacheKey: cacheKey, name: name})
		b.put(cacheKey, name, res)
	}
	for _, r := range out.Listeners {
		add(gatewayLDS, r)
	}
	if e.apiListeners {
		for _, r := range out.APIListeners {
			add(apiLDS, r)
		}
	}
	for _, r := range out.ScopedRoutes {
		add(resource.ScopedRouteType, r)
	}
	for _, r := range out.Routes {
		add(resource.RouteType, r)
	}
	for _, r := range out.Clusters {
		add(resource.ClusterType, r)
	}
	for _, r := range out.Endpoints {
		add(resource.EndpointType, r)
	}
	for _, r := range out.Secrets {
		add(resource.SecretType, r)
	}
	for _, p := range e.owned[owner] {
		if !slices.Contains(now, p) {
			b.remove(p.cacheKey, p.name)
		}
	}
	if len(now) == 0 {
		delete(e.owned, owner)
		return
	}
	e.owned[owner] = now
}

// batch collects a change's resources by cache. A resource put wins over a
// removal of the same name, whatever their order: a host moving from one
// Service to another is removed by one and put by the other.
type batch struct {
	puts    map[string]map[string]types.Resource
	removes map[string]map[string]bool
}

func newBatch() *batch {
	return &batch{puts: map[string]map[string]types.Resource{}, removes: map[string]map[string]bool{}}
}

func (b *batch) put(cacheKey, name string, res types.Resource) {
	if b.puts[cacheKey] == nil {
		b.puts[cacheKey] = map[string]types.Resource{}
	}
	b.puts[cacheKey][name] = res
	delete(b.removes[cacheKey], name)
}

func (b *batch) remove(cacheKey, name string) {
	if _, ok := b.puts[cacheKey][name]; ok {
		return
	}
	if b.removes[cacheKey] == nil {
		b.removes[cacheKey] = map[string]bool{}
	}
	b.removes[cacheKey][name] = true
}

// apply pushes a batch: per cache, what differs from what the cache holds,
// in one UpdateResources. Caches with something to add or change go first,
// in pushOrder; removals go last, in reverse order, so that nothing is
// removed while a pushed resource still names it. Clusters and endpoints
// removed in a batch that also adds some are pushed apart, after the
// routes (breaksRoutes): a route moving from one cluster to another would
// otherwise lose its old cluster before it names the new one, and its
// requests fail meanwhile (Knative's conformance case "update"). For the
// same reason routes wait until the gateways hold the clusters they name
// and those clusters' endpoints (awaitClusters): make before break.
func (e *Engine) apply(b *batch) error {
	type push struct {
		cacheKey string
		update   map[string]types.Resource
		enc      map[string]encoded
		remove   []string
	}
	var errs []error
	var updates, removals []push
	for _, key := range pushOrder {
		p := push{cacheKey: key, update: map[string]types.Resource{}, enc: map[string]encoded{}}
		for name, res := range b.puts[key] {
			enc, err := encode(res)
			if err != nil {
				errs = append(errs, fmt.Errorf("encoding %s %q: %w", key, name, err))
				continue
			}
			if v, ok := e.version(key, name); ok && v == enc.version {
				continue
			}
			p.update[name] = res
			p.enc[name] = enc
		}
		for _, name := range sortedKeys(b.removes[key]) {
			if _, ok := e.version(key, name); ok {
				p.remove = append(p.remove, name)
			}
		}
		switch {
		case len(p.update) > 0 && len(p.remove) > 0 && breaksRoutes(key):
			// Clusters and endpoints go after the routes that may still
			// name them: a second response of this type, only then.
			updates = append(updates, push{cacheKey: key, update: p.update, enc: p.enc})
			removals = append(removals, push{cacheKey: key, update: map[string]types.Resource{}, remove: p.remove})
		case len(p.update) > 0:
			updates = append(updates, p)
		case len(p.remove) > 0:
			removals = append(removals, p)
		}
	}
	slices.Reverse(removals)

	for _, p := range append(updates, removals...) {
		if p.cacheKey == resource.RouteType && len(p.update) > 0 {
			e.awaitClusters(p.update)
		}
		if e.log.Enabled(context.Background(), slog.LevelDebug) {
			e.log.Debug("pushing xDS resources", "cache", p.cacheKey, "update", sortedKeys(p.update), "remove", p.remove)
		}
		var err error
		if c, ok := e.caches[p.cacheKey].(encodedCache); ok {
			err = c.updateEncoded(p.enc, p.remove)
		} else {
			// The cache stores the resources even when notifying
			// fails, so current follows it either way.
			for name, enc := range p.enc {
				e.current[p.cacheKey][name] = enc.version
			}
			for _, name := range p.remove {
				delete(e.current[p.cacheKey], name)
			}
			err = e.caches[p.cacheKey].UpdateResources(p.update, p.remove)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("pushing %s: %w", p.cacheKey, err))
		}
	}
	return errors.Join(errs...)
}

// awaitClusters waits, for at most routeHold, until every gateway that
// counts has ACKed the clusters these route configurations name and the
// endpoints of those clusters, at the versions the caches hold. A gateway
// subscribes to a new cluster's endpoints only once it has the cluster,
// and Envoy warms a cluster until they arrive: a route pushed before then
// answers 503 for the new cluster.
func (e *Engine) awaitClusters(routes map[string]types.Resource) {
	if e.applied == nil {
		return
	}
	var want []heldVersion
	seen := map[string]bool{}
	for _, name := range sortedKeys(routes) {
		rc, ok := routes[name].(*routev3.RouteConfiguration)
		if !ok {
			continue
		}
		for _, cluster := range routeClusters(rc) {
			if seen[cluster] {
				continue
			}
			seen[cluster] = true
			for _, cacheKey := range []string{resource.ClusterType, resource.EndpointType} {
				if v, ok := e.version(cacheKey, cluster); ok {
					want = append(want, heldVersion{typeURL: cacheKey, name: cluster, version: v})
				}
			}
		}
	}
	if len(want) == 0 {
		return
	}
	timeout := time.NewTimer(e.routeHold)
	defer timeout.Stop()
	// How long a push waits here is part of a change's time to the
	// gateways (and of a Kubernetes round's): worth a debug line.
	start := time.Now()
	defer func() {
		if waited := time.Since(start); waited >= time.Millisecond {
			e.log.Debug("routes waited for the gateways to apply their clusters", "routes", len(routes), "waited", waited.Round(time.Millisecond))
		}
	}()
	for {
		changed := e.changes()
		// A gateway that has left a response unanswered for longer than
		// the hold is not waited for again: a stuck gateway would
		// otherwise cost every change the whole hold until it is stale.
		if e.applied(want, min(e.stale, e.routeHold)) {
			return
		}
		select {
		case <-changed:
		case <-timeout.C:
			e.log.Info("pushing routes before every gateway applied the clusters they name",
				"routes", sortedKeys(routes), "waited", e.routeHold)
			return
		}
	}
}

// version is the wire version of a resource the caches hold.
func (e *Engine) version(cacheKey, name string) (string, bool) {
	if c, ok := e.caches[cacheKey].(encodedCache); ok {
		return c.version(name)
	}
	v, ok := e.current[cacheKey][name]
	return v, ok
}

// routeClusters lists the clusters a route configuration sends traffic to.
func routeClusters(rc *routev3.RouteConfiguration) []string {
	var out []string
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			action := r.GetRoute()
			if c := action.GetCluster(); c != "" {
				out = append(out, c)
			}
			for _, wc := range action.GetWeightedClusters().GetClusters() {
				out = append(out, wc.GetName())
			}
		}
	}
	return out
}

// breaksRoutes says a cache's removals can leave routes naming what is
// gone: clusters, and the endpoints of clusters.
func breaksRoutes(cacheKey string) bool {
	return cacheKey == resource.ClusterType || cacheKey == resource.EndpointType
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
