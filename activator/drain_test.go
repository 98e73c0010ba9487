package activator

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kgate/kgate/translator/model"
)

// SIGTERM as cmd handles it: the server stops accepting, and the requests
// in flight complete before shutdown returns.
func TestShutdownLosesNoRequestInFlight(t *testing.T) {
	const requests = 5
	h := newHarness(t, Options{})
	h.act.SetRevision(testKey, RevisionConfig{})
	g := newGate()
	h.act.SetEndpoints(testKey, []model.Endpoint{startBackend(t, model.HTTP1, g)})
	replies := make([]<-chan reply, requests)
	for i := range replies {
		replies[i] = h.getAsync(t, "/")
	}
	g.await(t, requests)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	drained := make(chan error, 1)
	go func() { drained <- h.shutdown(ctx) }()
	waitFor(t, "the listener to close", func() bool {
		conn, err := net.Dial("tcp", h.addr)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	select {
	case err := <-drained:
		t.Fatalf("shutdown returned with %d requests in flight: %v", requests, err)
	default:
	}

	close(g.open)
	for _, r := range replies {
		expect(t, <-r, http.StatusOK, "released")
	}
	if err := <-drained; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// Drain also waits for requests held at zero, and says how many remain
// when its context ends first.
func TestDrainWaitsForHeldRequests(t *testing.T) {
	h := newHarness(t, Options{})
	h.act.SetRevision(testKey, RevisionConfig{})
	held := h.getAsync(t, "/")
	waitFor(t, "a request waiting", func() bool { return h.stats().Waiting == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := h.act.Drain(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "1 requests still in flight") {
		t.Errorf("drain with a held request: %v, want the deadline and the count", err)
	}

	h.act.SetEndpoints(testKey, []model.Endpoint{startBackend(t, model.HTTP1, text("late"))})
	expect(t, <-held, http.StatusOK, "late")
	if err := h.act.Drain(context.Background()); err != nil {
		t.Errorf("drain when idle: %v", err)
	}
}

// A pod dropped from the endpoints takes no new request and finishes the
// ones it has.
func TestRemovedPodDrains(t *testing.T) {
	h := newHarness(t, Options{})
	h.act.SetRevision(testKey, RevisionConfig{ContainerConcurrency: 1})
	g := newGate()
	h.act.SetEndpoints(testKey, []model.Endpoint{startBackend(t, model.HTTP1, g)})
	first := h.getAsync(t, "/")
	g.await(t, 1)

	h.act.SetEndpoints(testKey, []model.Endpoint{startBackend(t, model.HTTP1, text("new pod"))})
	expect(t, h.get(t, "/"), http.StatusOK, "new pod")
	close(g.open)
	expect(t, <-first, http.StatusOK, "released")
	if s := h.stats(); s.Pods != 1 || s.InFlight != 0 {
		t.Errorf("stats: %+v, want 1 pod and nothing in flight", s)
	}
}
