package kube

import (
	"context"
	"log/slog"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	deploykube "github.com/kgate/kgate/deploy/kube"
)

// writer runs the writes to the API server behind the rounds, a few at a
// time: a round never waits for the API server. Writes are keyed by the
// object they write; a newer write of an object replaces one still
// waiting, and waits for one under way, so an object is written by one
// goroutine at a time and only with its latest state.
type writer struct {
	log     *slog.Logger
	workers int
	// onFailure asks for a later round, which recomputes and rewrites.
	onFailure func()

	mu      sync.Mutex
	pending map[string]func(context.Context) error
	order   []string // pending keys, oldest first
	running map[string]bool
	wake    chan struct{}
}

func newWriter(log *slog.Logger, workers int, onFailure func()) *writer {
	return &writer{
		log: log, workers: workers, onFailure: onFailure,
		pending: map[string]func(context.Context) error{}, running: map[string]bool{},
		wake: make(chan struct{}, 1),
	}
}

// put queues the write of the object key.
func (w *writer) put(key string, write func(context.Context) error) {
	w.mu.Lock()
	if _, queued := w.pending[key]; !queued {
		w.order = append(w.order, key)
	}
	w.pending[key] = write
	w.mu.Unlock()
	w.signal()
}

func (w *writer) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// next takes the oldest pending write whose object is not being written.
func (w *writer) next() (string, func(context.Context) error, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, key := range w.order {
		if w.running[key] {
			continue
		}
		write := w.pending[key]
		delete(w.pending, key)
		w.order = append(w.order[:i:i], w.order[i+1:]...)
		w.running[key] = true
		if len(w.order) > 0 {
			w.signal() // more work: wake another worker
		}
		return key, write, true
	}
	return "", nil, false
}

func (w *writer) done(key string) {
	w.mu.Lock()
	delete(w.running, key)
	w.mu.Unlock()
	w.signal()
}

// run writes until ctx ends.
func (w *writer) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range w.workers {
		wg.Go(func() {
			for {
				key, write, ok := w.next()
				if !ok {
					select {
					case <-ctx.Done():
						return
					case <-w.wake:
						continue
					}
				}
				err := write(ctx)
				w.done(key)
				switch {
				case err == nil:
				case apierrors.IsConflict(err):
					// The object changed since the round read it: the
					// change's event brings a round that writes again.
				case ctx.Err() != nil:
					return
				default:
					w.log.Error("writing to the API server", "object", key, "error", err)
					w.onFailure()
				}
			}
		})
	}
	wg.Wait()
}

// asyncScaler applies the autoscaler's replicas to the Deployments behind
// the loop: the loop decides under its lock and must not wait for the API
// server. The latest replicas of a revision win; a Deployment that does
// not exist yet is created with them (see desired).
type asyncScaler struct {
	scaler *deploykube.Scaler
	log    *slog.Logger

	mu    sync.Mutex
	want  map[string]int32 // by revision key: the latest decision
	dirty map[string]bool
	wake  chan struct{}
}

func newAsyncScaler(s *deploykube.Scaler, log *slog.Logger) *asyncScaler {
	return &asyncScaler{scaler: s, log: log, want: map[string]int32{}, dirty: map[string]bool{}, wake: make(chan struct{}, 1)}
}

func (a *asyncScaler) set(rev string, n int32) {
	a.mu.Lock()
	a.want[rev] = n
	a.dirty[rev] = true
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// desired is the latest replicas decided for a revision.
func (a *asyncScaler) desired(rev string) (int32, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n, ok := a.want[rev]
	return n, ok
}

// forget drops a revision that no longer exists.
func (a *asyncScaler) forget(rev string) {
	a.mu.Lock()
	delete(a.want, rev)
	delete(a.dirty, rev)
	a.mu.Unlock()
}

// run scales until ctx ends. A failed scale is retried a second later;
// one whose Deployment does not exist yet is left to its creation.
func (a *asyncScaler) run(ctx context.Context) {
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.wake:
		case <-retry.C:
		}
		a.mu.Lock()
		work := make(map[string]int32, len(a.dirty))
		for rev := range a.dirty {
			work[rev] = a.want[rev]
		}
		a.dirty = map[string]bool{}
		a.mu.Unlock()
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for rev, n := range work {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				err := a.scaler.Scale(ctx, rev, n)
				switch {
				case err == nil, ctx.Err() != nil:
				case apierrors.IsNotFound(err):
					// Its Deployment is being created (with the replicas
					// desired then): try again until it exists or the
					// revision is forgotten.
					a.mu.Lock()
					if n2, ok := a.want[rev]; ok && n2 == n {
						a.dirty[rev] = true
					}
					a.mu.Unlock()
				default:
					a.log.Error("scaling a revision", "revision", rev, "replicas", n, "error", err)
					a.mu.Lock()
					if a.want[rev] == n {
						a.dirty[rev] = true
					}
					a.mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
}
