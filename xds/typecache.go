package xds

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"sync"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"
)

// typeCache holds the resources of one type for both protocols.
//
// State-of-the-world watches go to the embedded LinearCache: LDS and CDS
// send their full state on every change anyway. It keeps per-resource
// closures and, once sent, an encoded copy of each resource, so it is
// filled only once a state-of-the-world client opens a watch of the type
// (see startSotw): kgate's own clients and Envoy speak delta, and the copy cost
// 50 MB at 10,000 Services that nobody read. It is given the encodings
// this cache holds (rawResource), never a decoded proto.
//
// Delta watches are served here, at a cost that follows what changed, not
// how many resources a client subscribes to. go-control-plane's LinearCache
// compares every subscribed resource on every watch it opens and copies the
// client's whole version map into every response: with 10,000 route
// configurations subscribed, each one-Service push cost ~15 ms. Here every
// change gets a sequence number and goes into a bounded log; the version map
// handed back to the server carries, under seqKey, the sequence the client
// is up to date with; a watch compares only the resources changed since.
//
// That version map is mutated in place once a watch owns it, instead of
// copied. The server gives it back to us unchanged (it stores what
// GetReturnedResources returns), and only touches it between watches
// (after cancelling one, before opening the next), which our lock orders.
//
// A delta response carries at most maxBytes of resources (see
// DefaultMaxDeltaResponseBytes); what does not fit follows in the next
// responses. The protocol allows it: a delta response is a set of changes,
// not the whole state. go-control-plane's delta server opens the stream's
// next watch of the type when the client answers (ACK or NACK) and stores,
// as the client's versions, the map the response returns: a partial
// response records only what it carried, so the next watch finds the rest
// missing and sends it at once. Such a map must not record the current
// sequence under seqKey, which would claim the client up to date: it keeps
// one the comparison of the rest can start from (see resume in respond).
// State-of-the-world responses are never split: LDS and CDS there are the
// full state, and a resource missing from one is a removal.
type typeCache struct {
	*cache.LinearCache // CreateWatch and Fetch: state of the world
	typeURL            string
	prefix             string
	// maxBytes bounds the encoded resources of one delta response.
	maxBytes int
	// absentAsRemoved answers a delta request naming a resource the cache
	// does not hold with that name among the removed ones, as the delta
	// protocol allows, rather than with nothing: Envoy's on-demand secrets
	// (a TLS handshake waiting for the SNI's certificate) fail at once then,
	// instead of after the initial fetch timeout.
	absentAsRemoved bool

	// watchMu guards watched, onWatch and hookDone: onWatch runs when the
	// type's first watch opens (see setOnFirstWatch), and hookDone is
	// closed once it has returned.
	watchMu  sync.Mutex
	watched  bool
	onWatch  func()
	hookDone chan struct{}

	// sotwMu orders the LinearCache's filling (startSotw) with the updates
	// forwarded to it; it is taken before mu.
	sotwMu sync.Mutex
	// sotw says the LinearCache is filled and follows every update.
	sotw bool

	mu        sync.Mutex
	resources map[string]entry
	seq       uint64
	// changes lists the names changed, in sequence order. It is trimmed
	// when it outgrows the cache; a client whose sequence predates
	// forgotten is compared in full once.
	changes   []logEntry
	forgotten uint64
	// watches are the open delta watches: a change is checked against each
	// one's subscription, so it costs O(watches), not an index update over
	// every subscribed name each time a watch opens.
	watches map[*deltaWatch]struct{}
	// changed is when the cache last changed, for the push latency.
	changed changeClock
}

// entry is a resource's wire form, computed once per change and shared by
// every response that carries it. The cache keeps no decoded proto: the
// bytes are what it sends, and a proto of a resource is several times the
// size of its encoding.
type entry struct {
	version string
	value   []byte
	// size is what the resource adds to a delta response's encoding.
	size int
}

// encoded is a resource's deterministic encoding and the version it
// yields (see ResourceVersion).
type encoded struct {
	value   []byte
	version string
}

// encode encodes res once, for both its version and its wire form.
func encode(res types.Resource) (encoded, error) {
	b, err := cache.MarshalResource(res)
	if err != nil {
		return encoded{}, err
	}
	return encoded{value: b, version: cache.HashResource(b)}, nil
}

type logEntry struct {
	seq  uint64
	name string
}

type deltaWatch struct {
	req *cache.DeltaRequest
	sub cache.Subscription
	out chan cache.DeltaResponse
}

// seqKey is the key under which a client's version map records the change
// sequence it is up to date with. No resource name starts with a NUL byte.
const seqKey = "\x00kgate-seq"

// minLog is the least number of changes kept, however small the cache.
const minLog = 1024

// DefaultMaxDeltaResponseBytes is how many bytes of resources one delta
// response carries at most, unless a single resource is larger (it is then
// sent alone). A client's first response of a type would otherwise carry
// every resource of it: at 5,000 Services the route configurations alone
// pass grpc-go's default 4 MiB receive limit, and a client at that limit
// (kgate's own client before it raised its own, proxyless gRPC, any client
// with defaults) fails the stream and retries forever without a byte of
// config. 1 MiB is a quarter of that limit, and costs one more round trip
// per MiB: a 10,000-Service initial sync takes a few dozen round trips,
// each cheaper than encoding and decoding its MiB. Smaller parts also let a
// client apply and free one before the next arrives, instead of holding the
// whole type twice (encoded and decoded) at once.
const DefaultMaxDeltaResponseBytes = 1 << 20

// typeCacheOption configures a typeCache.
type typeCacheOption func(*typeCache)

// withMaxDeltaBytes bounds the resources of one delta response to n bytes
// (DefaultMaxDeltaResponseBytes when n ≤ 0).
func withMaxDeltaBytes(n int) typeCacheOption {
	return func(c *typeCache) {
		if n > 0 {
			c.maxBytes = n
		}
	}
}

// withAbsentAsRemoved sets absentAsRemoved.
func withAbsentAsRemoved() typeCacheOption {
	return func(c *typeCache) { c.absentAsRemoved = true }
}

func newTypeCache(typeURL, prefix string, log cacheLogger, opts ...typeCacheOption) *typeCache {
	c := &typeCache{
		LinearCache: cache.NewLinearCache(typeURL, cache.WithVersionPrefix(prefix), cache.WithLogger(log)),
		typeURL:     typeURL,
		prefix:      prefix,
		maxBytes:    DefaultMaxDeltaResponseBytes,
		resources:   map[string]entry{},
		watches:     map[*deltaWatch]struct{}{},
	}
	for _, opt := range opts {
		opt(c)
	}
	return c
}

// UpdateResources adds or replaces toUpdate and removes toDelete, then
// answers the open watches the change concerns. A resource whose encoding
// is unchanged is not a change.
func (c *typeCache) UpdateResources(toUpdate map[string]types.Resource, toDelete []string) error {
	enc := make(map[string]encoded, len(toUpdate))
	for name, res := range toUpdate {
		e, err := encode(res)
		if err != nil {
			return fmt.Errorf("encoding %s %q: %w", c.typeURL, name, err)
		}
		enc[name] = e
	}
	return c.updateEncoded(enc, toDelete)
}

// updateEncoded is UpdateResources for resources already encoded (the
// engine encodes them to compare versions).
func (c *typeCache) updateEncoded(enc map[string]encoded, toDelete []string) error {
	c.sotwMu.Lock()
	defer c.sotwMu.Unlock()
	c.update(enc, toDelete)
	if !c.sotw {
		return nil
	}
	raw := make(map[string]types.Resource, len(enc))
	for name, e := range enc {
		raw[name] = rawResource(e.value)
	}
	return c.LinearCache.UpdateResources(raw, toDelete)
}

// version returns the version of the named resource, if the cache holds
// it.
func (c *typeCache) version(name string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.resources[name]
	return e.version, ok
}

// rawResource is a resource the LinearCache can hold in place of its
// proto: a message with no known field, whose unknown fields are the
// resource's encoding, encodes to exactly that encoding, and the
// LinearCache only ever encodes what it holds (the type URL of what it
// sends comes from the request). It shares the bytes this cache holds,
// where a decoded proto is several times their size.
func rawResource(b []byte) types.Resource {
	m := &emptypb.Empty{}
	m.ProtoReflect().SetUnknown(b)
	return m
}

// startSotw fills the LinearCache with what the cache holds the first time
// a state-of-the-world client asks for the type; from then on
// updateEncoded forwards every update to it.
func (c *typeCache) startSotw() {
	c.sotwMu.Lock()
	defer c.sotwMu.Unlock()
	if c.sotw {
		return
	}
	c.mu.Lock()
	all := make(map[string]types.Resource, len(c.resources))
	for name, e := range c.resources {
		all[name] = rawResource(e.value)
	}
	c.mu.Unlock()
	if len(all) > 0 {
		c.LinearCache.SetResources(all)
	}
	c.sotw = true
}

// setOnFirstWatch has f run when the first watch of the type opens, before
// that watch looks at the resources, so that what only a client of this
// type needs is built once one asks (the engine's API listeners). It
// reports false, and keeps nothing, when a watch has already opened.
func (c *typeCache) setOnFirstWatch(f func()) bool {
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	if c.watched {
		return false
	}
	c.onWatch = f
	return true
}

// firstWatch runs the onWatch hook if no watch has opened yet, and waits
// for it if it is running: no watch looks at the cache before the hook's
// resources are in (a state-of-the-world listener watch would otherwise be
// answered that its listeners do not exist). It is called with no lock of
// the cache held: the hook writes to the cache.
func (c *typeCache) firstWatch() {
	c.watchMu.Lock()
	if c.watched {
		done := c.hookDone
		c.watchMu.Unlock()
		if done != nil {
			<-done
		}
		return
	}
	c.watched = true
	f := c.onWatch
	c.onWatch = nil
	if f == nil {
		c.watchMu.Unlock()
		return
	}
	done := make(chan struct{})
	c.hookDone = done
	c.watchMu.Unlock()
	defer close(done)
	f()
}

// CreateWatch opens a state-of-the-world watch on the LinearCache, filled
// first if it is the type's first.
func (c *typeCache) CreateWatch(req *cache.Request, sub cache.Subscription, out chan cache.Response) (func(), error) {
	c.firstWatch()
	c.startSotw()
	return c.LinearCache.CreateWatch(req, sub, out)
}

// Fetch answers a state-of-the-world REST request from the LinearCache,
// filled first if needed.
func (c *typeCache) Fetch(ctx context.Context, req *cache.Request) (cache.Response, error) {
	c.firstWatch()
	c.startSotw()
	return c.LinearCache.Fetch(ctx, req)
}

// update stores the encoded resources and removes toDelete, then answers
// the delta watches the change concerns.
func (c *typeCache) update(enc map[string]encoded, toDelete []string) {
	entries := make(map[string]entry, len(enc))
	for name, e := range enc {
		entries[name] = entry{version: e.version, value: e.value, size: c.resourceSize(name, e)}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	var changed []string
	for _, name := range slices.Sorted(maps.Keys(entries)) {
		if old, ok := c.resources[name]; ok && old.version == entries[name].version {
			continue
		}
		c.resources[name] = entries[name]
		changed = append(changed, name)
	}
	for _, name := range toDelete {
		if _, ok := c.resources[name]; ok {
			delete(c.resources, name)
			changed = append(changed, name)
		}
	}
	if len(changed) == 0 {
		return
	}
	c.changed.mark()
	for _, name := range changed {
		c.seq++
		c.changes = append(c.changes, logEntry{seq: c.seq, name: name})
	}
	if limit := max(minLog, 2*len(c.resources)); len(c.changes) > limit {
		drop := len(c.changes) - limit/2
		c.forgotten = c.changes[drop-1].seq
		c.changes = slices.Clone(c.changes[drop:])
	}

	for w := range c.watches {
		if !concerns(w.sub, changed) {
			continue
		}
		if resp := c.respond(w, nil, false); resp != nil {
			delete(c.watches, w)
			// The server buffers one response per type and stream, and a
			// stream has one watch per type: this does not block.
			w.out <- resp
		}
	}
}

// resourceSize is what a resource adds to a delta response's encoding.
func (c *typeCache) resourceSize(name string, e encoded) int {
	return fieldSize(proto.Size(&discoveryv3.Resource{Name: name, Version: e.version,
		Resource: &anypb.Any{TypeUrl: c.typeURL, Value: e.value}}))
}

// concerns reports whether any of the names is subscribed.
func concerns(sub cache.Subscription, names []string) bool {
	if sub.IsWildcard() {
		return true
	}
	subscribed := sub.SubscribedResources()
	for _, name := range names {
		if _, ok := subscribed[name]; ok {
			return true
		}
	}
	return false
}

// CreateDeltaWatch answers at once when the client lacks something it
// subscribes to, and otherwise keeps the watch open until a change
// concerns it.
func (c *typeCache) CreateDeltaWatch(req *cache.DeltaRequest, sub cache.Subscription, out chan cache.DeltaResponse) (func(), error) {
	if req.GetTypeUrl() != c.typeURL {
		return nil, fmt.Errorf("request for %s sent to the %s cache", req.GetTypeUrl(), c.typeURL)
	}
	c.firstWatch()
	w := &deltaWatch{req: req, sub: sub, out: out}
	// Envoy ends its initialization only once a wildcard subscription is
	// answered, even with nothing.
	replyEvenIfEmpty := sub.IsWildcard() && req.GetResponseNonce() == ""
	// Names the request (un)subscribes are candidates whatever the log says.
	hints := append(slices.Clone(req.GetResourceNamesSubscribe()), req.GetResourceNamesUnsubscribe()...)

	c.mu.Lock()
	defer c.mu.Unlock()
	if resp := c.respond(w, hints, replyEvenIfEmpty); resp != nil {
		out <- resp
		return func() {}, nil
	}
	c.watches[w] = struct{}{}
	return func() {
		c.mu.Lock()
		delete(c.watches, w)
		c.mu.Unlock()
	}, nil
}

// respond computes what the watch's client lacks and builds the response,
// or returns nil when there is nothing to send. c.mu is held.
func (c *typeCache) respond(w *deltaWatch, hints []string, replyEvenIfEmpty bool) *deltaResponse {
	known := w.sub.ReturnedResources()
	last, owned := seqOf(known)

	var updated []string
	var removed []string
	asked := map[string]bool{}
	if c.absentAsRemoved {
		for _, name := range w.req.GetResourceNamesSubscribe() {
			asked[name] = true
		}
	}
	consider := func(name string) {
		if name == seqKey {
			return
		}
		_, subscribed := w.sub.SubscribedResources()[name]
		subscribed = subscribed || w.sub.IsWildcard()
		e, exists := c.resources[name]
		version, isKnown := known[name]
		switch {
		case subscribed && exists && (!isKnown || version != e.version):
			updated = append(updated, name)
		case isKnown && (!exists || !subscribed):
			removed = append(removed, name)
		case !exists && !isKnown && asked[name]:
			removed = append(removed, name)
		}
	}
	// resume is what a partial response records under seqKey: a sequence
	// after which every change the client lacks is still found. A
	// comparison from the change log alone resumes where it started; one
	// that also looked beyond the log (a full scan, or names the request
	// named) resumes from 0, up to date with nothing: the next watch
	// compares the whole log, or everything once the log was trimmed.
	// Removals all go in the first part, so what remains is only resources
	// that exist, and the log names every one of them since 0.
	var resume uint64
	if !owned || last < c.forgotten || slices.Contains(hints, "*") {
		for _, name := range c.fullScan(w.sub, known) {
			consider(name)
		}
	} else {
		if len(hints) == 0 {
			resume = last
		}
		for _, name := range c.changedSince(last, hints) {
			consider(name)
		}
	}

	if len(updated) == 0 && len(removed) == 0 && !replyEvenIfEmpty {
		if owned {
			known[seqKey] = strconv.FormatUint(c.seq, 10)
		}
		return nil
	}
	next := known
	if !owned {
		next = maps.Clone(known)
		if next == nil {
			next = map[string]string{}
		}
	}
	sort.Strings(updated)
	sort.Strings(removed)
	sent := c.fit(updated, removed)
	resources := make([]*discoveryv3.Resource, 0, sent)
	for _, name := range updated[:sent] {
		e := c.resources[name]
		next[name] = e.version
		resources = append(resources, &discoveryv3.Resource{Name: name, Version: e.version,
			Resource: &anypb.Any{TypeUrl: c.typeURL, Value: e.value}})
	}
	for _, name := range removed {
		delete(next, name)
	}
	upTo := c.seq
	if sent < len(updated) {
		upTo = resume
	}
	next[seqKey] = strconv.FormatUint(upTo, 10)
	return &deltaResponse{
		req:  w.req,
		next: next,
		resp: &discoveryv3.DeltaDiscoveryResponse{
			TypeUrl:           c.typeURL,
			SystemVersionInfo: c.prefix + strconv.FormatUint(c.seq, 10),
			Resources:         resources,
			RemovedResources:  removed,
		},
	}
}

// fit returns how many of updated, in order, one response carries next to
// every one of removed within c.maxBytes: at least one when nothing is
// removed, so that a resource larger than the budget goes alone. Removals
// are never split: a name costs a few dozen bytes, and a removal of a name
// the cache never held (one a reconnecting client claimed) is found only by
// the full comparison of the first response.
func (c *typeCache) fit(updated, removed []string) int {
	size := 0
	for _, name := range removed {
		size += fieldSize(len(name))
	}
	n := 0
	for ; n < len(updated); n++ {
		s := c.resources[updated[n]].size
		if size+s > c.maxBytes && (n > 0 || len(removed) > 0) {
			break
		}
		size += s
	}
	return n
}

// fieldSize is what a length-delimited field of n bytes with a one-byte tag
// adds to a message: each resource and each removed name of a delta
// response is one.
func fieldSize(n int) int { return 1 + protowire.SizeBytes(n) }

// fullScan lists every name a client may lack or hold in excess: the
// resources it subscribes to and those it knows.
func (c *typeCache) fullScan(sub cache.Subscription, known map[string]string) []string {
	names := make(map[string]struct{}, len(known))
	if sub.IsWildcard() {
		for name := range c.resources {
			names[name] = struct{}{}
		}
	}
	for name := range sub.SubscribedResources() {
		names[name] = struct{}{}
	}
	for name := range known {
		names[name] = struct{}{}
	}
	return slices.Collect(maps.Keys(names))
}

// changedSince lists, once each, the names changed after sequence last and
// the hints.
func (c *typeCache) changedSince(last uint64, hints []string) []string {
	i := sort.Search(len(c.changes), func(i int) bool { return c.changes[i].seq > last })
	seen := make(map[string]struct{}, len(c.changes)-i+len(hints))
	var names []string
	add := func(name string) {
		if _, ok := seen[name]; !ok {
			seen[name] = struct{}{}
			names = append(names, name)
		}
	}
	for _, ch := range c.changes[i:] {
		add(ch.name)
	}
	for _, name := range hints {
		add(name)
	}
	return names
}

// seqOf returns the change sequence a version map records, and whether it
// records one, i.e. whether a response of this cache produced it.
func seqOf(known map[string]string) (uint64, bool) {
	s, ok := known[seqKey]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// deltaResponse is a built delta response.
type deltaResponse struct {
	req  *cache.DeltaRequest
	next map[string]string
	resp *discoveryv3.DeltaDiscoveryResponse
}

var _ cache.DeltaResponse = (*deltaResponse)(nil)

// GetDeltaDiscoveryResponse returns the response; the server sets its nonce.
func (r *deltaResponse) GetDeltaDiscoveryResponse() (*discoveryv3.DeltaDiscoveryResponse, error) {
	return r.resp, nil
}

// GetDeltaRequest returns the request the watch was opened for.
func (r *deltaResponse) GetDeltaRequest() *discoveryv3.DeltaDiscoveryRequest { return r.req }

// GetSystemVersion returns the cache's version at the response.
func (r *deltaResponse) GetSystemVersion() (string, error) { return r.resp.GetSystemVersionInfo(), nil }

// GetResponseVersion returns the cache's version at the response.
func (r *deltaResponse) GetResponseVersion() string { return r.resp.GetSystemVersionInfo() }

// GetNextVersionMap returns what the client knows once it has the response.
func (r *deltaResponse) GetNextVersionMap() map[string]string { return r.next }

// GetReturnedResources returns what the client knows once it has the response.
func (r *deltaResponse) GetReturnedResources() map[string]string { return r.next }

// GetContext returns a background context: responses carry no deadline.
func (r *deltaResponse) GetContext() context.Context { return context.Background() }
