package kube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The queue tests synchronise on channels. A wait that should succeed is
// bounded by waitLimit (a failure, not a timing assumption); a wait that
// checks that something does NOT happen lasts quietFor.
const (
	waitLimit = 10 * time.Second
	quietFor  = 50 * time.Millisecond
)

var discard = slog.New(slog.DiscardHandler)

// receive waits for a value on ch, failing the test after waitLimit.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// quiet checks that nothing arrives on ch for quietFor.
func quiet[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %s: %v", what, v)
	case <-time.After(quietFor):
	}
}

// testLimiter is a workqueue rate limiter with no delay that reports what
// the queue asks of it: When (a retry is scheduled) and Forget (a key's
// failures are forgotten: it succeeded, or was given up or dropped).
type testLimiter struct {
	mu       sync.Mutex
	failures map[string]int
	when     chan string
	forgot   chan string
}

func newTestLimiter() *testLimiter {
	return &testLimiter{failures: map[string]int{}, when: make(chan string, 100), forgot: make(chan string, 100)}
}

func (l *testLimiter) When(key string) time.Duration {
	l.mu.Lock()
	l.failures[key]++
	l.mu.Unlock()
	l.when <- key
	return 0
}

func (l *testLimiter) NumRequeues(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failures[key]
}

func (l *testLimiter) Forget(key string) {
	l.mu.Lock()
	delete(l.failures, key)
	l.mu.Unlock()
	l.forgot <- key
}

// startWriter runs a writer with n workers until the test ends; stop ends
// it earlier and waits for run to return.
func startWriter(t *testing.T, w *writer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		w.run(ctx)
		close(done)
	}()
	stop = func() {
		cancel()
		receive(t, done, "the writer to stop")
	}
	t.Cleanup(stop)
	return sync.OnceFunc(stop)
}

// recorder is a write that says when it runs and, when gated, waits to be
// released before it returns.
type recorder struct {
	name    string
	started chan string
	release chan error // nil: returns nil at once
	ran     atomic.Int32
}

func (r *recorder) write(ctx context.Context) error {
	r.ran.Add(1)
	r.started <- r.name
	if r.release == nil {
		return nil
	}
	select {
	case err := <-r.release:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestWriterRunsTheLatestWriteOfAKeyQueuedTwice(t *testing.T) {
	w := newWriterLimited(discard, 2, func() {}, newTestLimiter())
	started := make(chan string, 10)
	first := &recorder{name: "first", started: started}
	second := &recorder{name: "second", started: started}
	w.put("Route/default/hello", first.write)
	w.put("Route/default/hello", second.write)
	startWriter(t, w)

	if got := receive(t, started, "a write"); got != "second" {
		t.Fatalf("ran %q, want the latest write (second)", got)
	}
	quiet(t, started, "write")
	if first.ran.Load() != 0 {
		t.Error("the replaced write ran")
	}
}

func TestWriterWritesAKeyOneAtATimeWithItsLatestState(t *testing.T) {
	w := newWriterLimited(discard, 4, func() {}, newTestLimiter())
	startWriter(t, w)
	started := make(chan string, 10)
	running := &recorder{name: "running", started: started, release: make(chan error)}
	w.put("Service/default/hello", running.write)
	receive(t, started, "the first write")

	// While the first write runs, two newer ones of the same object and
	// one of another object are put.
	var firstDone atomic.Bool
	overlapped := make(chan bool, 1)
	stale := &recorder{name: "stale", started: started}
	w.put("Service/default/hello", stale.write)
	w.put("Service/default/hello", func(context.Context) error {
		overlapped <- !firstDone.Load()
		started <- "latest"
		return nil
	})
	other := &recorder{name: "other", started: started}
	w.put("Service/default/other", other.write)

	// Another object is written meanwhile: only its own key waits.
	if got := receive(t, started, "the other object's write"); got != "other" {
		t.Fatalf("ran %q while the first write ran, want the other object's write", got)
	}
	quiet(t, started, "write of the object being written")

	firstDone.Store(true)
	running.release <- nil
	if got := receive(t, started, "the latest write"); got != "latest" {
		t.Fatalf("ran %q after the first write, want the latest", got)
	}
	if receive(t, overlapped, "the latest write") {
		t.Error("the latest write ran while the first was under way")
	}
	quiet(t, started, "write")
	if stale.ran.Load() != 0 {
		t.Error("a write replaced while it waited ran")
	}
}

func TestWriterRunsDifferentKeysUpToTheWorkerCount(t *testing.T) {
	const workers = 2
	w := newWriterLimited(discard, workers, func() {}, newTestLimiter())
	started := make(chan string, 10)
	release := make(chan error)
	var inFlight, most atomic.Int32
	for _, key := range []string{"a", "b", "c", "d"} {
		w.put("Revision/default/"+key, func(ctx context.Context) error {
			n := inFlight.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			started <- key
			defer inFlight.Add(-1)
			select {
			case err := <-release:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}
	startWriter(t, w)

	got := []string{receive(t, started, "a write"), receive(t, started, "a second write")}
	quiet(t, started, "write beyond the worker count")
	for range 2 {
		release <- nil
		got = append(got, receive(t, started, "the next write"))
	}
	release <- nil
	release <- nil
	slices.Sort(got)
	if want := []string{"a", "b", "c", "d"}; !slices.Equal(got, want) {
		t.Errorf("wrote %v, want %v", got, want)
	}
	if m := most.Load(); m != workers {
		t.Errorf("at most %d writes ran at once, want %d", m, workers)
	}
}

func TestWriterFailures(t *testing.T) {
	boom := errors.New("the API server is unavailable")
	conflict := apierrors.NewConflict(schema.GroupResource{Group: "serving.knative.dev", Resource: "routes"}, "hello", errors.New("changed"))
	tests := []struct {
		name string
		// results are what the write returns, attempt after attempt.
		results []error
		// attempts is how often the write runs.
		attempts int
		// reported is how often onFailure is called (and an error logged).
		reported int
	}{
		{name: "a write that succeeds runs once", results: []error{nil}, attempts: 1},
		{name: "a conflict is neither retried nor reported: the object's change brings a round",
			results: []error{conflict}, attempts: 1},
		{name: "a failed write is reported and retried until it succeeds",
			results: []error{boom, boom, nil}, attempts: 3, reported: 2},
		{name: "a write that keeps failing is retried maxWriteRetries times, then left to the round",
			results: slices.Repeat([]error{boom}, maxWriteRetries+1), attempts: maxWriteRetries + 1, reported: maxWriteRetries + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			limiter := newTestLimiter()
			var reported atomic.Int32
			w := newWriterLimited(slog.New(slog.NewTextHandler(&logs, nil)), 2, func() { reported.Add(1) }, limiter)
			var attempts atomic.Int32
			w.put("Route/default/hello", func(context.Context) error {
				n := attempts.Add(1)
				if int(n) > len(tt.results) {
					return fmt.Errorf("attempt %d: more than the test expects", n)
				}
				return tt.results[n-1]
			})
			startWriter(t, w)

			// The queue forgets the key's failures when it is done with
			// it: written, given up, or left to a later event.
			receive(t, limiter.forgot, "the key to be forgotten")
			if got := int(attempts.Load()); got != tt.attempts {
				t.Errorf("the write ran %d times, want %d", got, tt.attempts)
			}
			if got := int(reported.Load()); got != tt.reported {
				t.Errorf("onFailure was called %d times, want %d", got, tt.reported)
			}
			if got := strings.Count(logs.String(), "writing to the API server"); got != tt.reported {
				t.Errorf("%d errors logged, want %d:\n%s", got, tt.reported, logs.String())
			}
		})
	}
}

func TestWriterRetriesOnlyTheLatestWrite(t *testing.T) {
	limiter := newTestLimiter()
	var reported atomic.Int32
	w := newWriterLimited(discard, 2, func() { reported.Add(1) }, limiter)
	startWriter(t, w)
	started := make(chan string, 10)
	failing := &recorder{name: "failing", started: started, release: make(chan error)}
	w.put("Revision/default/hello-00001", failing.write)
	receive(t, started, "the first write")
	newer := &recorder{name: "newer", started: started}
	w.put("Revision/default/hello-00001", newer.write)
	failing.release <- errors.New("timeout")

	if got := receive(t, started, "the newer write"); got != "newer" {
		t.Fatalf("ran %q after the failure, want the newer write", got)
	}
	receive(t, limiter.forgot, "the newer write's success")
	quiet(t, started, "write")
	if n := failing.ran.Load(); n != 1 {
		t.Errorf("the failed write ran %d times, want once: a newer write replaced it", n)
	}
	if n := reported.Load(); n != 1 {
		t.Errorf("onFailure was called %d times, want 1", n)
	}
}

func TestWriterStopsWhenTheContextEnds(t *testing.T) {
	var reported atomic.Int32
	w := newWriterLimited(discard, 1, func() { reported.Add(1) }, newTestLimiter())
	stop := startWriter(t, w)
	started := make(chan string, 10)
	running := &recorder{name: "running", started: started, release: make(chan error)}
	w.put("Service/default/a", running.write)
	receive(t, started, "the write")
	waiting := &recorder{name: "waiting", started: started}
	w.put("Service/default/b", waiting.write)

	stop() // cancels the running write's context, waits for run to return
	if n := waiting.ran.Load(); n != 0 {
		t.Error("a write queued before the end ran after it")
	}
	if n := reported.Load(); n != 0 {
		t.Errorf("the write cancelled by the end was reported as a failure %d times", n)
	}
}

// The asynchronous scaler.

// scaleCall is one Scale call; the test answers it on reply.
type scaleCall struct {
	rev   string
	n     int32
	reply chan error
}

func (c scaleCall) String() string { return fmt.Sprintf("%s=%d", c.rev, c.n) }

// fakeScaler hands every Scale call to the test and returns its answer.
type fakeScaler struct{ calls chan scaleCall }

func (f fakeScaler) Scale(ctx context.Context, rev string, n int32) error {
	c := scaleCall{rev: rev, n: n, reply: make(chan error, 1)}
	f.calls <- c
	select {
	case err := <-c.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func startScaler(t *testing.T, a *asyncScaler) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		a.run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		receive(t, done, "the scaler to stop")
	})
}

// call waits for the next Scale call and answers it with err.
func call(t *testing.T, f fakeScaler, err error) string {
	t.Helper()
	c := receive(t, f.calls, "a Scale call")
	c.reply <- err
	return c.String()
}

func TestAsyncScalerAppliesTheLatestReplicasOfEachRevision(t *testing.T) {
	f := fakeScaler{calls: make(chan scaleCall, 10)}
	a := newAsyncScalerLimited(f, discard, newTestLimiter())
	a.set("default/a-00001", 1)
	a.set("default/b-00001", 5)
	a.set("default/a-00001", 2)
	if n, ok := a.desired("default/a-00001"); !ok || n != 2 {
		t.Errorf("desired = %d, %v; want 2, true", n, ok)
	}
	startScaler(t, a)

	got := []string{call(t, f, nil), call(t, f, nil)}
	slices.Sort(got)
	if want := []string{"default/a-00001=2", "default/b-00001=5"}; !slices.Equal(got, want) {
		t.Errorf("scaled %v, want %v", got, want)
	}
	quiet(t, f.calls, "Scale call")
}

func TestAsyncScalerAppliesTheLatestReplicasAfterAScaleUnderWay(t *testing.T) {
	f := fakeScaler{calls: make(chan scaleCall, 10)}
	a := newAsyncScalerLimited(f, discard, newTestLimiter())
	startScaler(t, a)
	a.set("default/a-00001", 1)
	first := receive(t, f.calls, "the first Scale call")
	a.set("default/a-00001", 2)
	a.set("default/a-00001", 3)
	quiet(t, f.calls, "Scale call while one of the revision is under way")
	first.reply <- nil

	if got := call(t, f, nil); got != "default/a-00001=3" {
		t.Errorf("then scaled %s, want the latest replicas (3)", got)
	}
	quiet(t, f.calls, "Scale call")
}

func TestAsyncScalerForgetDropsAPendingScale(t *testing.T) {
	f := fakeScaler{calls: make(chan scaleCall, 10)}
	limiter := newTestLimiter()
	a := newAsyncScalerLimited(f, discard, limiter)
	a.set("default/gone-00001", 3)
	a.set("default/kept-00001", 4)
	a.forget("default/gone-00001")
	if _, ok := a.desired("default/gone-00001"); ok {
		t.Error("a forgotten revision still has desired replicas")
	}
	startScaler(t, a)

	if got := call(t, f, nil); got != "default/kept-00001=4" {
		t.Errorf("scaled %s, want only the revision not forgotten", got)
	}
	quiet(t, f.calls, "Scale call")
}

func TestAsyncScalerFailures(t *testing.T) {
	notFound := apierrors.NewNotFound(schema.GroupResource{Group: "apps", Resource: "deployments"}, "a-00001-deployment")
	boom := errors.New("the API server is unavailable")
	tests := []struct {
		name    string
		results []error // answers to the Scale calls, in order
		logged  int     // errors logged
	}{
		{name: "a scale whose Deployment does not exist yet is retried quietly until it exists",
			results: []error{notFound, notFound, nil}},
		{name: "a failed scale is logged and retried until it succeeds",
			results: []error{boom, boom, nil}, logged: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			f := fakeScaler{calls: make(chan scaleCall, 10)}
			limiter := newTestLimiter()
			a := newAsyncScalerLimited(f, slog.New(slog.NewTextHandler(&logs, nil)), limiter)
			a.set("default/a-00001", 2)
			startScaler(t, a)
			for i, err := range tt.results {
				if got := call(t, f, err); got != "default/a-00001=2" {
					t.Fatalf("call %d scaled %s, want default/a-00001=2", i+1, got)
				}
			}
			receive(t, limiter.forgot, "the success to be recorded")
			quiet(t, f.calls, "Scale call")
			if got := strings.Count(logs.String(), "scaling a revision"); got != tt.logged {
				t.Errorf("%d errors logged, want %d:\n%s", got, tt.logged, logs.String())
			}
		})
	}
}

func TestAsyncScalerStopsRetryingAForgottenRevision(t *testing.T) {
	f := fakeScaler{calls: make(chan scaleCall, 10)}
	limiter := newTestLimiter()
	a := newAsyncScalerLimited(f, discard, limiter)
	a.set("default/a-00001", 2)
	startScaler(t, a)
	c := receive(t, f.calls, "the Scale call")
	a.forget("default/a-00001") // deleted while its Deployment is awaited
	c.reply <- apierrors.NewNotFound(schema.GroupResource{Group: "apps", Resource: "deployments"}, "a-00001-deployment")

	receive(t, limiter.when, "the retry to be scheduled")
	// The retry finds the revision forgotten and drops it without scaling.
	receive(t, limiter.forgot, "the retry to be dropped")
	select {
	case c := <-f.calls:
		t.Errorf("scaled a forgotten revision: %s", c)
	default:
	}
}

// syncBuffer is a bytes.Buffer for a logger written from several
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
