package kube

import (
	"context"
	"sync"

	"github.com/kgate/kgate/watcher/knative"
)

// A round's writes are compared and queued behind the rounds while the
// serving loop runs them: the round hands what it computed to the
// publisher and goes on to the next, whose new Services then do not wait
// for 10,000 objects to be compared with the cache. At 10,000 Services
// created at once, the round that published took up to 450 ms where the
// others took 100–150, and the Services that came during it waited for it
// and for the longer round after it: the tail of create → host.
//
// One publication runs at a time, so the writes of two rounds never
// interleave. A round that publishes while one runs replaces any waiting
// behind it: writes are level-based (a publication compares the whole
// Result with its snapshot), so the latest covers the ones it replaces.
// The publisher reads only the publication, which no round changes after
// handing it over (a Result's objects are never changed once returned;
// the snapshot's maps are the indexes' copy-on-write ones), the write
// marks (settledMu) and what only it touches (roundState.publishLimit,
// Controller.clashes).

// publication is what a round hands the publisher.
type publication struct {
	s      *snapshot
	res    *knative.Result
	wanted map[string]*routeCert
	// collected are the Revisions being deleted (deleteCollected): their
	// routing state is not written.
	collected collectedRevisions
}

// publisher runs publications one at a time, the latest first.
type publisher struct {
	mu   sync.Mutex
	next *publication
	wake chan struct{}
}

func newPublisher() *publisher { return &publisher{wake: make(chan struct{}, 1)} }

// offer hands over a publication, replacing one not yet started.
func (p *publisher) offer(w *publication) {
	p.mu.Lock()
	p.next = w
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default: // woken already
	}
}

// take is the publication to run next, nil when none waits.
func (p *publisher) take() *publication {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.next
	p.next = nil
	return w
}

// run publishes what the rounds offer until ctx ends; what was offered
// before a publication it runs ends is published before it looks at ctx.
func (p *publisher) run(ctx context.Context, publish func(*publication)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		}
		for w := p.take(); w != nil; w = p.take() {
			publish(w)
		}
	}
}

// publishAll queues the writes of one round (publish and its kin).
func (c *Controller) publishAll(w *publication) {
	c.publish(w.s, w.res)
	c.publishDomainClaims(w.s, w.res)
	c.publishCertificates(w.s, w.wanted)
	c.publishRoutingStates(w.s, w.res, w.collected)
}
