package xds

import (
	"context"
	"errors"
	"fmt"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/kgate/kgate/pki"
	"github.com/kgate/kgate/xds/auth"
)

// guard checks every stream against its client's identity and the
// server's limits: the node id must be the certificate's, the role must
// allow each type asked for, and the streams and subscribed names a client
// holds are bounded. A request that fails ends its stream with an error
// saying why, and is counted (see Server.Refusals).
type guard struct {
	tls      bool
	names    int
	streams  *auth.Streams
	refusals *auth.Refusals
	metrics  *metrics

	mu   sync.Mutex
	open map[streamKey]*guarded
}

// guarded is one open stream as the guard sees it.
type guarded struct {
	peer auth.Peer
	// typeURL is the stream's type when it serves one (not ADS).
	typeURL string
	node    string
	bound   bool
	release func()
	// subscribed are the names asked for, by type: delta requests add and
	// remove, state-of-the-world requests replace.
	subscribed map[string]map[string]struct{}
	total      int
}

func newGuard(tls bool, gate *auth.Gate, m *metrics) *guard {
	return &guard{
		tls: tls, names: gate.Limits.NamesPerStream, streams: gate.Streams, refusals: gate.Refusals, metrics: m,
		open: map[streamKey]*guarded{},
	}
}

// opened records a stream and its peer; a server with TLS refuses a peer
// without a verified identity (gRPC's handshake already did: this holds
// should the transport ever change).
func (g *guard) opened(ctx context.Context, k streamKey, typeURL string) error {
	p, err := auth.PeerOf(ctx)
	if err == nil && g.tls && p.Anonymous {
		err = errors.New("no client certificate")
	}
	if err != nil {
		return g.refusals.Refuse(auth.ReasonUnauthenticated, p, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open[k] = &guarded{peer: p, typeURL: typeURL, subscribed: map[string]map[string]struct{}{}}
	return nil
}

func (g *guard) closed(k streamKey) {
	g.mu.Lock()
	st := g.open[k]
	delete(g.open, k)
	g.mu.Unlock()
	if st != nil && st.release != nil {
		st.release()
	}
	if st != nil && st.bound {
		g.metrics.disconnected(roleLabel(st.peer), st.node)
	}
}

// roleLabel is the role a peer counts under in the metrics.
func roleLabel(p auth.Peer) string {
	if p.Anonymous {
		return "anonymous"
	}
	return string(p.Identity.Role)
}

// peer returns the peer of an open stream.
func (g *guard) peer(k streamKey) (auth.Peer, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	st, ok := g.open[k]
	if !ok {
		return auth.Peer{}, false
	}
	return st.peer, true
}

// request checks one request. replace is true for state of the world,
// where the names listed are the whole subscription of the type.
func (g *guard) request(k streamKey, node *corev3.Node, typeURL string, subscribe, unsubscribe []string, replace bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	st, ok := g.open[k]
	if !ok {
		return errors.New("request on a stream that was not opened")
	}
	if typeURL == "" {
		typeURL = st.typeURL
	}
	if err := g.checkNode(st, node); err != nil {
		return err
	}
	if !st.peer.MayReceive(typeURL) {
		return g.refusals.Refuse(auth.ReasonType, st.peer, fmt.Errorf("role %s may not receive %s", st.peer.Identity.Role, typeURL))
	}
	return g.subscribe(st, typeURL, subscribe, unsubscribe, replace)
}

// checkNode binds the stream to its node on the first request, which must
// carry one, and refuses a later request naming another.
func (g *guard) checkNode(st *guarded, node *corev3.Node) error {
	if st.bound {
		if node != nil && node.GetId() != st.node {
			return g.refusals.Refuse(auth.ReasonNode, st.peer, fmt.Errorf("node id changed from %q to %q on one stream", st.node, node.GetId()))
		}
		return nil
	}
	if err := st.peer.CheckNode(node.GetId()); err != nil {
		return g.refusals.Refuse(auth.ReasonNode, st.peer, err)
	}
	if err := kindFits(st.peer, node); err != nil {
		return g.refusals.Refuse(auth.ReasonNode, st.peer, err)
	}
	release, err := g.streams.Acquire(st.peer, node.GetId())
	if err != nil {
		return g.refusals.Refuse(auth.ReasonStreams, st.peer, err)
	}
	st.node, st.release, st.bound = node.GetId(), release, true
	g.metrics.connected(roleLabel(st.peer), st.node)
	return nil
}

// kindFits keeps the listener a node is served consistent with its role:
// the user agent picks gateway or API listeners (see KindOf), and only a
// proxyless client may have API listeners.
func kindFits(p auth.Peer, node *corev3.Node) error {
	if p.Anonymous || p.Identity.Role == pki.Observer {
		return nil
	}
	proxyless := KindOf(node) == Proxyless
	if proxyless != (p.Identity.Role == pki.Proxyless) {
		return fmt.Errorf("user agent %q does not fit role %s", node.GetUserAgentName(), p.Identity.Role)
	}
	return nil
}

func (g *guard) subscribe(st *guarded, typeURL string, subscribe, unsubscribe []string, replace bool) error {
	names := st.subscribed[typeURL]
	if names == nil || replace {
		st.total -= len(names)
		names = map[string]struct{}{}
		st.subscribed[typeURL] = names
	}
	for _, n := range unsubscribe {
		if _, ok := names[n]; ok {
			delete(names, n)
			st.total--
		}
	}
	for _, n := range subscribe {
		if n == "*" {
			continue // a wildcard costs one name however many resources it gets
		}
		if _, ok := names[n]; ok {
			continue
		}
		if st.total >= g.names {
			return g.refusals.Refuse(auth.ReasonNames, st.peer, fmt.Errorf("node %q subscribed to more than %d names on one stream", st.node, g.names))
		}
		names[n] = struct{}{}
		st.total++
	}
	return nil
}
