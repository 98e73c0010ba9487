package activator

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kgate/kgate/translator/model"
)

// These tests drive a revision's breakers directly: no request is sent, so
// the network plays no part in what they check.

func newTestRevision(cc int, eps ...model.Endpoint) *revision {
	r := newRevision(testKey, 10, nil)
	r.setConfig(RevisionConfig{ContainerConcurrency: cc, Timeout: time.Minute})
	r.setEndpoints(eps)
	return r
}

// noWait is a deadline long gone: acquire takes a free slot or fails at once.
func noWait() time.Time { return time.Time{} }

func ep(port uint32) model.Endpoint { return model.Endpoint{Address: "10.0.0.1", Port: port} }

func TestRevisionCapacityIsCCTimesPods(t *testing.T) {
	r := newTestRevision(2, ep(1), ep(2), ep(3))
	var held []*pod
	for range 6 {
		p, err := r.acquire(context.Background(), noWait())
		if err != nil {
			t.Fatalf("acquire %d of 6: %v", len(held)+1, err)
		}
		held = append(held, p)
	}
	if _, err := r.acquire(context.Background(), noWait()); !errors.Is(err, errWaitTimeout) {
		t.Fatalf("7th acquire at cc=2 × 3 pods: %v, want %v", err, errWaitTimeout)
	}

	// A waiter gets the first slot released.
	got := make(chan *pod, 1)
	go func() {
		p, err := r.acquire(context.Background(), time.Now().Add(time.Minute))
		if err != nil {
			t.Errorf("waiting acquire: %v", err)
		}
		got <- p
	}()
	waitFor(t, "a waiter", func() bool { return r.snapshot().Waiting == 1 })
	r.release(held[4])
	if p := <-got; p != held[4] {
		t.Errorf("waiter got %s, want the freed %s", name(p), held[4].addr)
	}
}

// A pod dropped from the endpoints with a request in flight, then added
// back, still counts that request: the pod never gets more than cc.
func TestDroppedPodKeepsItsBreaker(t *testing.T) {
	r := newTestRevision(1, ep(1))
	p, err := r.acquire(context.Background(), noWait())
	if err != nil {
		t.Fatal(err)
	}
	r.setEndpoints(nil)
	r.setEndpoints([]model.Endpoint{ep(1)})
	if _, err := r.acquire(context.Background(), noWait()); !errors.Is(err, errWaitTimeout) {
		t.Fatalf("acquire on a pod still busy: %v, want %v", err, errWaitTimeout)
	}
	r.release(p)
	if _, err := r.acquire(context.Background(), noWait()); err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
}

// A dropped pod is forgotten when its last request completes.
func TestDroppedPodForgottenWhenDrained(t *testing.T) {
	r := newTestRevision(1, ep(1))
	p, err := r.acquire(context.Background(), noWait())
	if err != nil {
		t.Fatal(err)
	}
	r.setEndpoints([]model.Endpoint{ep(2)})
	if len(r.pods) != 2 {
		t.Fatalf("tracking %d pods, want the new one and the draining one", len(r.pods))
	}
	r.release(p)
	if _, ok := r.pods[p.addr]; ok || len(r.pods) != 1 {
		t.Errorf("drained pod still tracked: %v", r.pods)
	}
}

func TestRaisingConcurrencyAdmitsWaiters(t *testing.T) {
	r := newTestRevision(1, ep(1))
	if _, err := r.acquire(context.Background(), noWait()); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := r.acquire(context.Background(), time.Now().Add(time.Minute))
		got <- err
	}()
	waitFor(t, "a waiter", func() bool { return r.snapshot().Waiting == 1 })
	r.setConfig(RevisionConfig{ContainerConcurrency: 2, Timeout: time.Minute})
	if err := <-got; err != nil {
		t.Errorf("waiter after raising cc: %v", err)
	}
}

func TestWaiterLeavesLineWhenClientGoes(t *testing.T) {
	r := newTestRevision(1)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		_, err := r.acquire(ctx, time.Now().Add(time.Minute))
		got <- err
	}()
	waitFor(t, "a waiter", func() bool { return r.snapshot().Waiting == 1 })
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Errorf("acquire: %v, want %v", err, context.Canceled)
	}
	if w := r.snapshot().Waiting; w != 0 {
		t.Errorf("%d still waiting", w)
	}
}

// Requests are admitted in arrival order.
func TestLineIsFirstInFirstOut(t *testing.T) {
	r := newTestRevision(1)
	order := make(chan int, 3)
	for i := range 3 {
		go func() {
			p, err := r.acquire(context.Background(), time.Now().Add(time.Minute))
			if err != nil {
				t.Errorf("acquire: %v", err)
				order <- -1
				return
			}
			order <- i
			r.release(p)
		}()
		waitFor(t, "the next waiter", func() bool { return r.snapshot().Waiting == i+1 })
	}
	r.setEndpoints([]model.Endpoint{ep(1)})
	for want := range 3 {
		if got := <-order; got != want {
			t.Errorf("admitted %d, want %d", got, want)
		}
	}
}
