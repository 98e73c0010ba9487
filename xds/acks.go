package xds

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/kgate/kgate/xds/auth"
)

// NodeACK is what one connected stream last ACKed of a resource.
type NodeACK struct {
	// NodeID and Kind identify the node holding the stream.
	NodeID string
	Kind   NodeKind
	// Version is the resource version the node ACKed (see ResourceVersion),
	// empty when it has not ACKed the resource.
	Version string
	// Counts says the node's ACKs decide readiness: it authenticated as a
	// gateway (or, on a server without TLS, has a gateway's user agent).
	Counts bool
	// Behind is how long the stream's oldest unanswered response of the
	// type has waited for an answer; zero when it answered them all.
	Behind time.Duration
}

// ResourceVersion is the version a resource carries on the wire: a hash of
// its deterministic encoding, the same in delta (where it is the resource's
// version) and in state of the world (where Acked derives it from the
// response). Equal content means equal version.
func ResourceVersion(res types.Resource) (string, error) {
	b, err := cache.MarshalResource(res)
	if err != nil {
		return "", err
	}
	return cache.HashResource(b), nil
}

// Acked reports, for every open stream that has asked for typeURL, the
// version of the named resource its node last ACKed. A caller holding the
// resource it published can tell whether every connected gateway applied
// it: each Gateway entry's Version equals ResourceVersion(res). A node with
// several streams appears once per stream. Sorted by node id.
func (s *Server) Acked(typeURL, name string) []NodeACK {
	return s.acks.acked(typeURL, name)
}

// streamKey names a stream: the sotw and delta servers number their
// streams separately.
type streamKey struct {
	delta bool
	id    int64
}

// ackTracker follows every stream's responses and the client's replies to
// them: it logs NACKs and remembers what each stream ACKed.
type ackTracker struct {
	log   *slog.Logger
	onACK func(nodeID, typeURL string)
	// peer returns who holds a stream, from the guard.
	peer func(streamKey) (auth.Peer, bool)
	now  func() time.Time
	// metrics, when set, count NACKs and ACK lag.
	metrics *metrics

	mu      sync.Mutex
	streams map[streamKey]*streamState
	// changed is closed, and replaced, whenever a stream ACKs or closes:
	// a waiter (Engine.apply holding back routes) re-checks then.
	changed chan struct{}
}

type streamState struct {
	node  *corev3.Node
	types map[string]*typeState
}

// typeState is one type's traffic on a stream.
type typeState struct {
	// pending are the responses sent and not yet answered, oldest first.
	pending []sentResponse
	// acked maps resource names to the versions last ACKed.
	acked map[string]string
}

// sentResponse is a response as the tracker needs it; sotw resources are
// decoded only when the client answers.
type sentResponse struct {
	nonce   string
	version string
	at      time.Time
	// full says the response lists every resource the stream has (sotw
	// LDS and CDS): a resource it leaves out is gone.
	full     bool
	sotw     []*anypb.Any
	delta    []*discoveryv3.Resource
	removals []string
}

func newAckTracker(log *slog.Logger, onACK func(nodeID, typeURL string), peer func(streamKey) (auth.Peer, bool)) *ackTracker {
	return &ackTracker{log: log, onACK: onACK, peer: peer, now: time.Now, streams: map[streamKey]*streamState{}, changed: make(chan struct{})}
}

func (t *ackTracker) callbacks() serverv3.CallbackFuncs {
	return serverv3.CallbackFuncs{
		StreamClosedFunc:      func(id int64, _ *corev3.Node) { t.closed(streamKey{id: id}) },
		DeltaStreamClosedFunc: func(id int64, _ *corev3.Node) { t.closed(streamKey{delta: true, id: id}) },
		StreamRequestFunc: func(id int64, req *discoveryv3.DiscoveryRequest) error {
			t.request(streamKey{id: id}, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail().GetMessage(), req.GetErrorDetail() != nil)
			return nil
		},
		StreamDeltaRequestFunc: func(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
			t.request(streamKey{delta: true, id: id}, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail().GetMessage(), req.GetErrorDetail() != nil)
			return nil
		},
		StreamResponseFunc: func(_ context.Context, id int64, req *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
			t.sent(streamKey{id: id}, req.GetTypeUrl(), sentResponse{
				nonce:   resp.GetNonce(),
				version: resp.GetVersionInfo(),
				full:    cache.ResourceRequiresFullStateInSotw(req.GetTypeUrl()),
				sotw:    resp.GetResources(),
			})
		},
		StreamDeltaResponseFunc: func(id int64, req *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
			t.sent(streamKey{delta: true, id: id}, req.GetTypeUrl(), sentResponse{
				nonce:    resp.GetNonce(),
				version:  resp.GetSystemVersionInfo(),
				delta:    resp.GetResources(),
				removals: resp.GetRemovedResources(),
			})
		},
	}
}

func (t *ackTracker) closed(k streamKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.streams, k)
	t.signal()
}

// signal wakes the waiters on changed; t.mu is held.
func (t *ackTracker) signal() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// changes returns a channel closed at the next ACK or stream end.
func (t *ackTracker) changes() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changed
}

// heldVersion is a resource at the version a waiter wants applied.
type heldVersion struct {
	typeURL, name, version string
}

// applied says whether every stream that counts (see NodeACK.Counts) and
// takes clusters has ACKed each wanted resource at its version. A stream
// that has left a response unanswered for longer than stale is not waited
// for, as it does not hold readiness either.
func (t *ackTracker) applied(want []heldVersion, stale time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	for k, st := range t.streams {
		if _, ok := st.types[resource.ClusterType]; !ok {
			continue
		}
		if p, ok := t.peer(k); !ok || !p.IsGateway() || KindOf(st.node) != Gateway {
			continue
		}
		if st.behind(now) > stale {
			continue
		}
		for _, w := range want {
			ts, ok := st.types[w.typeURL]
			if !ok || ts.acked[w.name] != w.version {
				return false
			}
		}
	}
	return true
}

// behind is how long the stream's oldest unanswered response has waited.
func (st *streamState) behind(now time.Time) time.Duration {
	var d time.Duration
	for _, ts := range st.types {
		if len(ts.pending) > 0 {
			d = max(d, now.Sub(ts.pending[0].at))
		}
	}
	return d
}

// stream returns the state of a stream, creating it. Only the first
// request of a stream is sure to carry the node.
func (t *ackTracker) stream(k streamKey, node *corev3.Node) *streamState {
	st, ok := t.streams[k]
	if !ok {
		st = &streamState{node: node, types: map[string]*typeState{}}
		t.streams[k] = st
	}
	if st.node == nil {
		st.node = node
	}
	return st
}

func (st *streamState) typ(typeURL string) *typeState {
	ts, ok := st.types[typeURL]
	if !ok {
		ts = &typeState{acked: map[string]string{}}
		st.types[typeURL] = ts
	}
	return ts
}

func (t *ackTracker) sent(k streamKey, typeURL string, resp sentResponse) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ts := t.stream(k, nil).typ(typeURL)
	resp.at = t.now()
	ts.pending = append(ts.pending, resp)
}

// request handles a client's request: the first of a type subscribes, a
// later one answers a response by its nonce, as an ACK or, with an error
// detail, a NACK.
func (t *ackTracker) request(k streamKey, node *corev3.Node, typeURL, nonce, errMsg string, nack bool) {
	t.mu.Lock()
	st := t.stream(k, node)
	ts := st.typ(typeURL)
	resp, ok := ts.answered(nonce)
	if !ok {
		t.mu.Unlock()
		return
	}
	nodeID := st.node.GetId()
	if t.metrics != nil {
		t.metrics.answered(nodeID, t.now().Sub(resp.at))
	}
	if nack {
		kind := KindOf(st.node)
		t.mu.Unlock()
		t.metrics.nacked(typeURL, errMsg)
		// The cache keeps serving what it has: the node keeps its previous
		// config and gets the next change as usual.
		t.log.Warn("xDS config rejected (NACK)",
			"node", nodeID, "kind", kind, "type", typeURL,
			"version", resp.version, "nonce", nonce,
			"resources", resp.names(), "error", errMsg)
		return
	}
	ts.apply(resp)
	t.signal()
	t.mu.Unlock()
	if t.onACK != nil {
		t.onACK(nodeID, typeURL)
	}
}

// answered takes the response with this nonce off the pending list, with
// every older one (the client answered them, or skipped them as stale).
func (ts *typeState) answered(nonce string) (sentResponse, bool) {
	if nonce == "" {
		return sentResponse{}, false
	}
	for i, r := range ts.pending {
		if r.nonce == nonce {
			ts.pending = ts.pending[i+1:]
			return r, true
		}
	}
	return sentResponse{}, false
}

// apply records an ACKed response.
func (ts *typeState) apply(r sentResponse) {
	if r.full {
		clear(ts.acked)
	}
	for _, res := range r.delta {
		ts.acked[res.GetName()] = res.GetVersion()
	}
	for _, name := range r.removals {
		delete(ts.acked, name)
	}
	for _, a := range r.sotw {
		name, ok := anyName(a)
		if !ok {
			continue
		}
		ts.acked[name] = cache.HashResource(a.GetValue())
	}
}

// names lists the resources of a response, for logs.
func (r sentResponse) names() []string {
	var names []string
	for _, res := range r.delta {
		names = append(names, res.GetName())
	}
	for _, a := range r.sotw {
		if name, ok := anyName(a); ok {
			names = append(names, name)
		}
	}
	return names
}

// anyName decodes a resource to learn its name.
func anyName(a *anypb.Any) (string, bool) {
	m, err := a.UnmarshalNew()
	if err != nil {
		return "", false
	}
	name := cache.GetResourceName(m)
	return name, name != ""
}

func (t *ackTracker) acked(typeURL, name string) []NodeACK {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []NodeACK
	keys := make([]streamKey, 0, len(t.streams))
	for k, st := range t.streams {
		if _, ok := st.types[typeURL]; ok {
			keys = append(keys, k)
		}
	}
	// Stable order: by node id, then stream.
	slices.SortFunc(keys, func(a, b streamKey) int {
		return cmp.Or(
			cmp.Compare(t.streams[a].node.GetId(), t.streams[b].node.GetId()),
			cmp.Compare(boolInt(a.delta), boolInt(b.delta)),
			cmp.Compare(a.id, b.id))
	})
	now := t.now()
	for _, k := range keys {
		st := t.streams[k]
		ts := st.types[typeURL]
		a := NodeACK{
			NodeID:  st.node.GetId(),
			Kind:    KindOf(st.node),
			Version: ts.acked[name],
		}
		if p, ok := t.peer(k); ok {
			a.Counts = p.IsGateway() && a.Kind == Gateway
		}
		if len(ts.pending) > 0 {
			a.Behind = now.Sub(ts.pending[0].at)
		}
		out = append(out, a)
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
