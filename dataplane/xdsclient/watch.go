package xdsclient

import (
	"maps"
	"slices"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
)

// Wildcard subscribes a watch to every resource of its type.
const Wildcard = "*"

// Handler applies one response's changes to a watched type. It returns
// nil to accept them all, and the client ACKs; or an error to reject them
// all, and the client NACKs with the error's text and keeps the versions
// accepted before, so the handler must then leave its state as it was.
//
// Handlers are called one at a time, on Run's goroutine. They may change
// subscriptions (Watch.Subscribe, Unsubscribe): the change is sent once
// the handler returns.
type Handler func(Update) error

// Update is what one response changed.
type Update struct {
	// TypeURL is the watched type.
	TypeURL string
	// Resources are the resources added or changed, decoded.
	Resources []Resource
	// Removed names the resources the server removed among those the
	// handler had accepted.
	Removed []string
	// Absent names resources the watch subscribes to by name that the
	// server says it does not have: removed without the handler ever
	// having accepted them. A delta server answers so for a name it does
	// not hold (kgate's does for secrets, which gateways ask for on
	// demand), so that a caller waiting for the resource can give up at
	// once. The subscription stands: the server sends the resource if it
	// comes. Wildcard watches never see it.
	Absent []string
}

// Resource is one resource of a response.
type Resource struct {
	Name    string
	Version string
	// Message is the resource decoded into the Go type its type URL
	// names (*clusterv3.Cluster for CDS, …) and validated.
	Message proto.Message
}

// Watch is a Client's watch on one resource type.
type Watch struct {
	c       *Client
	typeURL string
	handler Handler

	// want are the names subscribed to (Wildcard among them); guarded by
	// c.mu, since any goroutine may subscribe.
	want map[string]struct{}
	// versions are the resources the handler accepted and their versions,
	// by name: what a new stream tells the server it holds. Only Run's
	// goroutine touches it.
	versions map[string]string
	// synced says the handler has accepted a response; until then,
	// rejected is why it rejected the last. Guarded by c.mu: Err reads
	// them.
	synced   bool
	rejected error
}

// TypeURL is the type the watch receives.
func (w *Watch) TypeURL() string { return w.typeURL }

// Subscribe adds names to the watch's subscription; Wildcard adds every
// resource of the type. It may be called at any time, from any goroutine.
func (w *Watch) Subscribe(names ...string) {
	w.c.mu.Lock()
	for _, n := range names {
		w.want[n] = struct{}{}
	}
	w.c.mu.Unlock()
	w.c.wake()
}

// Unsubscribe removes names from the watch's subscription; Wildcard
// removes the wildcard, leaving the names subscribed one by one. The
// handler is not told of the resources it so drops: it asked. It may be
// called at any time, from any goroutine.
func (w *Watch) Unsubscribe(names ...string) {
	w.c.mu.Lock()
	for _, n := range names {
		delete(w.want, n)
	}
	w.c.mu.Unlock()
	w.c.wake()
}

// wants reports whether the watch subscribes to name. c.mu is held.
func (w *Watch) wants(name string) bool {
	_, named := w.want[name]
	_, wildcard := w.want[Wildcard]
	return named || wildcard
}

// relevantLocked returns what of a response concerns the handler: the
// resources subscribed to (one may arrive just after its unsubscription),
// the removals of resources the handler accepted before, and the names
// subscribed to one by one that the server says it does not have. c.mu
// is held.
func (w *Watch) relevantLocked(resp *discoveryv3.DeltaDiscoveryResponse) (resources []*discoveryv3.Resource, removed, absent []string) {
	for _, r := range resp.GetResources() {
		if w.wants(r.GetName()) {
			resources = append(resources, r)
		}
	}
	for _, name := range resp.GetRemovedResources() {
		if _, ok := w.versions[name]; ok {
			removed = append(removed, name)
		} else if _, named := w.want[name]; named && name != Wildcard {
			absent = append(absent, name)
		}
	}
	return resources, removed, absent
}

// subscriptionLocked returns the names subscribed to, sorted. c.mu is
// held.
func (w *Watch) subscriptionLocked() []string {
	return slices.Sorted(maps.Keys(w.want))
}

// forgetLocked drops the versions held of the named resources that are no
// longer subscribed to, so that a later subscription gets them anew.
// c.mu is held.
func (w *Watch) forgetLocked(names []string) {
	if _, wildcard := w.want[Wildcard]; wildcard {
		return
	}
	for _, n := range names {
		if _, ok := w.want[n]; !ok {
			delete(w.versions, n)
		}
	}
}

// apply decodes what of a response concerns the watch and hands it to the
// handler, recording the versions it accepts. Only Run's goroutine calls
// it.
func (w *Watch) apply(resources []*discoveryv3.Resource, removed, absent []string) error {
	u, err := decode(w.typeURL, resources, removed)
	if err != nil {
		return undecodable{err}
	}
	u.Absent = absent
	if err := w.handler(u); err != nil {
		return err
	}
	w.accept(u)
	w.c.log.Debug("xDS response accepted", "type", u.TypeURL, "updated", len(u.Resources), "removed", len(u.Removed), "absent", len(u.Absent))
	return nil
}

// accept records an accepted update's versions.
func (w *Watch) accept(u Update) {
	for _, r := range u.Resources {
		w.versions[r.Name] = r.Version
	}
	for _, n := range u.Removed {
		delete(w.versions, n)
	}
}
