package kube

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/kgate/kgate/watcher/knative"
)

// TestPublisherRunsOneAtATimeTheLatestFirst: a publication offered while
// one runs waits for it, and one offered after it replaces it unrun: the
// latest covers the others (level-based writes), and two never run at
// once.
func TestPublisherRunsOneAtATimeTheLatestFirst(t *testing.T) {
	p := newPublisher()
	ctx, cancel := context.WithCancel(t.Context())
	var (
		mu      sync.Mutex
		ran     []int
		running int
		overlap bool
	)
	started, release := make(chan struct{}, 10), make(chan struct{})
	pubs := make([]*publication, 4)
	for i := range pubs {
		pubs[i] = &publication{res: &knative.Result{Recomputed: i}}
	}
	var done sync.WaitGroup
	done.Go(func() {
		p.run(ctx, func(w *publication) {
			mu.Lock()
			running++
			overlap = overlap || running > 1
			ran = append(ran, w.res.Recomputed)
			mu.Unlock()
			started <- struct{}{}
			<-release
			mu.Lock()
			running--
			mu.Unlock()
		})
	})
	p.offer(pubs[0])
	<-started // the first runs, and holds
	p.offer(pubs[1])
	p.offer(pubs[2])
	p.offer(pubs[3])
	// What was offered while the first ran is published before run looks
	// at ctx again.
	close(release)
	cancel()
	done.Wait()
	if want := []int{0, 3}; !slices.Equal(ran, want) || overlap {
		t.Errorf("ran %v (overlapping: %v), want %v one at a time", ran, overlap, want)
	}
}
