package devgateway

import "github.com/kgate/kgate/dataplane/xdsclient"

// refs subscribes a watch to the names that resources reference, while
// any does: a name is subscribed with its first reference and
// unsubscribed with its last.
type refs struct {
	w     *xdsclient.Watch
	count map[string]int
	// forget drops what was received of a name unsubscribed: the client
	// does not tell the handler (it asked).
	forget func(name string)
}

func newRefs(w *xdsclient.Watch, forget func(string)) *refs {
	return &refs{w: w, count: map[string]int{}, forget: forget}
}

// replace moves one reference from old to name; "" is no name. The new
// reference is taken first, so that a name kept is never unsubscribed.
func (r *refs) replace(old, name string) {
	r.add(name)
	r.remove(old)
}

func (r *refs) add(name string) {
	if name == "" {
		return
	}
	r.count[name]++
	if r.count[name] == 1 {
		r.w.Subscribe(name)
	}
}

func (r *refs) remove(name string) {
	if r.count[name] == 0 {
		return
	}
	r.count[name]--
	if r.count[name] == 0 {
		delete(r.count, name)
		r.w.Unsubscribe(name)
		r.forget(name)
	}
}
