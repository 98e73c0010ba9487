package activator

import (
	"cmp"
	"container/list"
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kgate/kgate/translator/model"
)

// revision is one revision's pods, their breakers and the line of requests
// waiting for a slot. Every pod and the line are guarded by mu, so that
// admission and release see one consistent state.
type revision struct {
	key        string
	queueDepth int
	// onPoke is Options.OnPoke; nil when unset.
	onPoke func(revision string)

	// cfg is nil until SetRevision: the endpoints may arrive first, but
	// requests are refused until the protocol and limits are known. It is
	// read without mu on every request.
	cfg atomic.Pointer[RevisionConfig]

	mu sync.Mutex
	// pods holds the ready pods and the dropped ones that still have
	// requests in flight, by address: a pod that comes back gets its
	// breaker back with the requests it still holds.
	pods map[string]*pod
	// ready are the pods taking new requests, in address order.
	ready []*pod
	// waiting is the line of *waiter, oldest first.
	waiting list.List
	// next is where the round-robin policy looks first.
	next    int
	deleted bool

	// held counts the requests admitted under the revision's share of the
	// activator (Options.MaxHeldPerRevision) and not yet answered.
	held atomic.Int64
	counters
	// metrics records the revision's requests; nil without a registerer.
	metrics *revMetrics
}

// waiter is a request in line. Dispatch sends it the pod whose slot it
// now holds, or nil when the revision was deleted; the buffer of one lets
// dispatch send under mu without blocking.
type waiter struct {
	granted chan *pod
}

func newRevision(key string, queueDepth int, onPoke func(string)) *revision {
	return &revision{key: key, queueDepth: queueDepth, onPoke: onPoke, pods: map[string]*pod{}}
}

// config returns the revision's configuration, nil before SetRevision.
func (r *revision) config() *RevisionConfig { return r.cfg.Load() }

// setConfig applies a new configuration (see Activator.SetRevision).
func (r *revision) setConfig(cfg RevisionConfig) {
	r.cfg.Store(&cfg)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dispatchLocked()
}

// setEndpoints makes eps the revision's ready pods.
func (r *revision) setEndpoints(eps []model.Endpoint) {
	addrs := make([]string, 0, len(eps))
	for _, e := range eps {
		addrs = append(addrs, net.JoinHostPort(e.Address, strconv.FormatUint(uint64(e.Port), 10)))
	}
	// Address order is the stable order the first-free policy packs in.
	slices.SortFunc(addrs, cmp.Compare)
	addrs = slices.Compact(addrs)

	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.ready {
		p.ready = false
	}
	ready := make([]*pod, 0, len(addrs))
	for _, a := range addrs {
		p := r.pods[a]
		if p == nil {
			p = &pod{addr: a}
			r.pods[a] = p
		}
		p.ready = true
		ready = append(ready, p)
	}
	for a, p := range r.pods {
		if !p.ready && p.inFlight == 0 {
			delete(r.pods, a)
		}
	}
	r.ready = ready
	r.dispatchLocked()
}

// delete refuses the requests in line and any later acquire. Requests in
// flight complete on their pods.
func (r *revision) delete() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deleted = true
	for e := r.waiting.Front(); e != nil; e = e.Next() {
		e.Value.(*waiter).granted <- nil
	}
	r.waiting.Init()
}

// acquire takes a slot on a pod for one request, waiting in line while no
// pod has room, until deadline. The caller must release the pod.
func (r *revision) acquire(ctx context.Context, deadline time.Time) (*pod, error) {
	r.mu.Lock()
	if r.deleted {
		r.mu.Unlock()
		return nil, errRevisionDeleted
	}
	// Nobody waits while a slot is free (dispatch hands free slots to the
	// line at once), so an empty line is the only case to look for one.
	if r.waiting.Len() == 0 {
		if p := r.pickLocked(); p != nil {
			p.inFlight++
			r.mu.Unlock()
			return p, nil
		}
	}
	if r.waiting.Len() >= r.queueDepth {
		r.mu.Unlock()
		return nil, errQueueFull
	}
	w := &waiter{granted: make(chan *pod, 1)}
	elem := r.waiting.PushBack(w)
	// The first request to wait on a revision without pods is the news the
	// autoscaler needs to scale from zero; later ones add nothing.
	poke := len(r.ready) == 0 && r.waiting.Len() == 1
	r.mu.Unlock()

	if poke && r.onPoke != nil {
		r.onPoke(r.key)
	}
	return r.wait(ctx, w, elem, deadline)
}

// wait blocks until w is granted a pod, the deadline passes or ctx ends.
func (r *revision) wait(ctx context.Context, w *waiter, elem *list.Element, deadline time.Time) (*pod, error) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	var err error
	select {
	case p := <-w.granted:
		if p == nil {
			return nil, errRevisionDeleted
		}
		return p, nil
	case <-timer.C:
		err = errWaitTimeout
	case <-ctx.Done():
		err = fmt.Errorf("waiting for a pod: %w", context.Cause(ctx))
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case p := <-w.granted:
		// Granted while giving up: pass the slot on to the next in line.
		if p != nil {
			r.releaseLocked(p)
		}
	default:
		r.waiting.Remove(elem)
	}
	return nil, err
}

// release returns the slot a request held on p.
func (r *revision) release(p *pod) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.releaseLocked(p)
}

func (r *revision) releaseLocked(p *pod) {
	p.inFlight--
	if !p.ready && p.inFlight == 0 {
		delete(r.pods, p.addr) // drained
	}
	r.dispatchLocked()
}

// dispatchLocked hands free slots to the line, oldest waiter first.
func (r *revision) dispatchLocked() {
	for r.waiting.Len() > 0 {
		p := r.pickLocked()
		if p == nil {
			return
		}
		p.inFlight++
		w := r.waiting.Remove(r.waiting.Front()).(*waiter)
		w.granted <- p
	}
}

// pickLocked returns a ready pod with room under the revision's policy, or
// nil when there is none.
func (r *revision) pickLocked() *pod {
	cfg := r.config()
	if cfg == nil || len(r.ready) == 0 {
		return nil
	}
	switch cc := cfg.ContainerConcurrency; {
	case cc == 0:
		return leastOfTwo(r.ready)
	case cc <= 3:
		return firstFree(r.ready, cc)
	default:
		var p *pod
		p, r.next = roundRobin(r.ready, cc, r.next)
		return p
	}
}

// snapshot returns the revision's demand and pods now.
func (r *revision) snapshot() RevisionStats {
	r.mu.Lock()
	s := RevisionStats{Waiting: r.waiting.Len(), Pods: len(r.ready)}
	r.mu.Unlock()
	r.counters.fill(&s)
	return s
}
