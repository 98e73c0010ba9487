package kube

import (
	"context"
	"log/slog"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/workqueue"
)

// The keyed queues below are client-go's workqueue: it hands a key to one
// worker at a time (a key added while its worker runs waits for it, then
// runs once), keeps a key queued once however often it is added, and paces
// the retries of a key with a rate limiter. What a key stands for lives
// beside the queue, in a map that keeps only the latest: the queue says
// when, the map says what.

// maxWriteRetries is how often the writer retries a failed write by
// itself, its rate limiter pacing the attempts; after that the write is
// left to the round that onFailure asks for, which rewrites what still
// differs.
const maxWriteRetries = 5

// writer runs the writes to the API server behind the rounds, a few at a
// time: a round never waits for the API server. Writes are keyed by the
// object they write; a newer write of an object replaces one still
// waiting, and waits for one under way, so an object is written by one
// goroutine at a time and only with its latest state. A write that fails
// (other than on a conflict, which the object's change event answers with
// a round) is logged, reported to onFailure, and retried a few times
// unless a newer write of its object replaced it.
type writer struct {
	log     *slog.Logger
	workers int
	// onFailure asks for a later round, which recomputes and rewrites.
	onFailure func()

	queue workqueue.TypedRateLimitingInterface[string]

	mu      sync.Mutex
	pending map[string]func(context.Context) error // by key: the latest write not yet started
	// below, when set, is called once the writes pending fall under
	// belowN (whenBelow).
	below  func()
	belowN int
}

func newWriter(log *slog.Logger, workers int, onFailure func()) *writer {
	return newWriterLimited(log, workers, onFailure, workqueue.DefaultTypedControllerRateLimiter[string]())
}

// newWriterLimited is newWriter with the rate limiter of the retries.
func newWriterLimited(log *slog.Logger, workers int, onFailure func(), limiter workqueue.TypedRateLimiter[string]) *writer {
	return &writer{
		log: log, workers: workers, onFailure: onFailure,
		queue:   workqueue.NewTypedRateLimitingQueue(limiter),
		pending: map[string]func(context.Context) error{},
	}
}

// put queues the write of the object key, replacing one not yet started.
func (w *writer) put(key string, write func(context.Context) error) {
	w.mu.Lock()
	w.pending[key] = write
	w.mu.Unlock()
	w.queue.Add(key)
}

// take removes the latest write of key, if one is pending: a key can be
// in the queue with no write left (a retry that a newer write ran before).
func (w *writer) take(key string) (func(context.Context) error, bool) {
	w.mu.Lock()
	write, ok := w.pending[key]
	delete(w.pending, key)
	var below func()
	if w.below != nil && len(w.pending) < w.belowN {
		below, w.below = w.below, nil
	}
	w.mu.Unlock()
	if below != nil {
		below()
	}
	return write, ok
}

// backlog is how many writes are waiting to start.
func (w *writer) backlog() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

// whenBelow calls f once, when fewer than n writes are waiting (at once if
// they are already); a later call replaces an earlier one not yet made.
func (w *writer) whenBelow(n int, f func()) {
	w.mu.Lock()
	if len(w.pending) < n {
		w.mu.Unlock()
		f()
		return
	}
	w.below, w.belowN = f, n
	w.mu.Unlock()
}

// retry puts a failed write back, unless a newer write of its object was
// put meanwhile (that one is queued already and runs instead), and queues
// its key after the rate limiter's delay; after maxWriteRetries it gives
// up.
func (w *writer) retry(key string, write func(context.Context) error) {
	if w.queue.NumRequeues(key) >= maxWriteRetries {
		w.queue.Forget(key)
		return
	}
	w.mu.Lock()
	_, newer := w.pending[key]
	if !newer {
		w.pending[key] = write
	}
	w.mu.Unlock()
	if !newer {
		w.queue.AddRateLimited(key)
	}
}

// run writes until ctx ends; it runs once (it shuts the queue down).
func (w *writer) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range w.workers {
		wg.Go(func() {
			for w.process(ctx) {
			}
		})
	}
	<-ctx.Done()
	w.queue.ShutDown()
	wg.Wait()
}

// process runs the next write; false when the queue is shut down.
func (w *writer) process(ctx context.Context) bool {
	key, shutdown := w.queue.Get()
	if shutdown {
		return false
	}
	defer w.queue.Done(key)
	if ctx.Err() != nil {
		return true // stopping: the queue drains without writing
	}
	write, ok := w.take(key)
	if !ok {
		return true
	}
	err := write(ctx)
	switch {
	case err == nil:
		w.queue.Forget(key)
	case apierrors.IsConflict(err):
		// The object changed since the round read it: the change's
		// event brings a round that writes again.
		w.queue.Forget(key)
	case ctx.Err() != nil:
	default:
		w.log.Error("writing to the API server", "object", key, "error", err)
		w.onFailure()
		w.retry(key, write)
	}
	return true
}

// replicaSetter scales a revision ("namespace/name"): deploykube.Scaler.
type replicaSetter interface {
	Scale(ctx context.Context, rev string, n int32) error
}

// scaleWorkers is how many revisions asyncScaler scales at once.
const scaleWorkers = 8

// asyncScaler applies the autoscaler's replicas to the Deployments behind
// the loop: the loop decides under its lock and must not wait for the API
// server. The latest replicas of a revision win; a Deployment that does
// not exist yet is created with them (see desired). A failed scale is
// retried, at most a second apart, until it succeeds or the revision is
// forgotten.
type asyncScaler struct {
	scaler replicaSetter
	log    *slog.Logger

	queue workqueue.TypedRateLimitingInterface[string] // revision keys to scale

	mu   sync.Mutex
	want map[string]int32 // by revision key: the latest decision
}

func newAsyncScaler(s replicaSetter, log *slog.Logger) *asyncScaler {
	return newAsyncScalerLimited(s, log, workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, time.Second))
}

// newAsyncScalerLimited is newAsyncScaler with the rate limiter of the
// retries.
func newAsyncScalerLimited(s replicaSetter, log *slog.Logger, limiter workqueue.TypedRateLimiter[string]) *asyncScaler {
	return &asyncScaler{
		scaler: s, log: log,
		queue: workqueue.NewTypedRateLimitingQueue(limiter),
		want:  map[string]int32{},
	}
}

func (a *asyncScaler) set(rev string, n int32) {
	a.mu.Lock()
	a.want[rev] = n
	a.mu.Unlock()
	a.queue.Add(rev)
}

// desired is the latest replicas decided for a revision.
func (a *asyncScaler) desired(rev string) (int32, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n, ok := a.want[rev]
	return n, ok
}

// forget drops a revision that no longer exists; a scale of it still
// queued does nothing.
func (a *asyncScaler) forget(rev string) {
	a.mu.Lock()
	delete(a.want, rev)
	a.mu.Unlock()
}

// run scales until ctx ends; it runs once (it shuts the queue down).
func (a *asyncScaler) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range scaleWorkers {
		wg.Go(func() {
			for a.process(ctx) {
			}
		})
	}
	<-ctx.Done()
	a.queue.ShutDown()
	wg.Wait()
}

// process applies the latest replicas of the next revision; false when
// the queue is shut down. A scale whose Deployment does not exist yet is
// retried quietly until it exists (its creation carries the replicas
// desired then) or the revision is forgotten.
func (a *asyncScaler) process(ctx context.Context) bool {
	rev, shutdown := a.queue.Get()
	if shutdown {
		return false
	}
	defer a.queue.Done(rev)
	n, ok := a.desired(rev)
	if !ok || ctx.Err() != nil {
		a.queue.Forget(rev)
		return true
	}
	err := a.scaler.Scale(ctx, rev, n)
	switch {
	case err == nil:
		a.queue.Forget(rev)
	case ctx.Err() != nil:
	case apierrors.IsNotFound(err):
		a.queue.AddRateLimited(rev)
	default:
		a.log.Error("scaling a revision", "revision", rev, "replicas", n, "error", err)
		a.queue.AddRateLimited(rev)
	}
	return true
}
