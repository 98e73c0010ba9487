package activator

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/kgate/kgate/dataplane/inflight"
	"github.com/kgate/kgate/translator/model"
)

func TestHeldLimitsDefaults(t *testing.T) {
	b := inflight.DefaultBudget()
	for _, tc := range []struct {
		name                       string
		total, perRevision         int
		wantTotal, wantPerRevision int
	}{
		{"both unset: the file limit's budget", 0, 0, b.Held, b.HeldPerRevision},
		{"total set: half of it per revision", 10, 0, 10, 5},
		{"a total of 1", 1, 0, 1, 1},
		{"both set", 10, 3, 10, 3},
		{"per revision over the total", 10, 20, 10, 10},
		{"per revision set alone", 0, 3, b.Held, min(3, b.Held)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			total, perRevision := heldLimits(tc.total, tc.perRevision)
			if total != tc.wantTotal || perRevision != tc.wantPerRevision {
				t.Errorf("heldLimits(%d, %d) = %d, %d; want %d, %d", tc.total, tc.perRevision, total, perRevision, tc.wantTotal, tc.wantPerRevision)
			}
		})
	}
}

// requestFor returns a request to the activator for the revision
// "default/<name>".
func (h *harness) requestFor(t testing.TB, name string) *http.Request {
	req := h.request(context.Background(), t, "/")
	req.Header.Set(RevisionHeader, name)
	return req
}

// doAsync sends req on its own goroutine.
func (h *harness) doAsync(t testing.TB, req *http.Request) <-chan reply {
	out := make(chan reply, 1)
	go func() { out <- h.do(t, req) }()
	return out
}

// statsOf returns the stats of the revision "default/<name>".
func (h *harness) statsOf(name string) RevisionStats { return h.act.Stats()[testNamespace+"/"+name] }

// A revision holds at most its share of the activator, and the activator
// at most its ceiling across revisions; beyond either, a request is
// answered 503 at once, with its HTTP/1 connection closed, and counted
// rejected. The requests held are answered normally.
func TestHeldCeilings(t *testing.T) {
	h := newHarness(t, Options{MaxHeld: 5, MaxHeldPerRevision: 3})
	revs := []string{"a-00001", "b-00001", "c-00001"}
	for _, name := range revs {
		h.act.SetRevision(testNamespace+"/"+name, RevisionConfig{ContainerConcurrency: 1})
	}

	var held []<-chan reply
	for range 3 {
		held = append(held, h.doAsync(t, h.requestFor(t, "a-00001")))
	}
	waitFor(t, "3 requests waiting for a", func() bool { return h.statsOf("a-00001").Waiting == 3 })
	shedA := h.do(t, h.requestFor(t, "a-00001"))

	for range 2 {
		held = append(held, h.doAsync(t, h.requestFor(t, "b-00001")))
	}
	waitFor(t, "2 requests waiting for b", func() bool { return h.statsOf("b-00001").Waiting == 2 })
	shedC := h.do(t, h.requestFor(t, "c-00001"))

	for _, tc := range []struct {
		name string
		got  reply
		want string
	}{
		{"a beyond its share", shedA, "revision default/a-00001: 3 requests already held for it, its share of the activator"},
		{"c beyond the activator's ceiling", shedC, "5 requests already held across revisions, as many as the activator takes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, tc.got, http.StatusServiceUnavailable, tc.want)
			if tc.got.header.Get(RejectedHeader) != "true" || !tc.got.closed {
				t.Errorf("headers %v, connection closed %v: want %s and the connection closed", tc.got.header, tc.got.closed, RejectedHeader)
			}
		})
	}
	for name, want := range map[string]RevisionStats{
		"a-00001": {InFlight: 3, Waiting: 3, Issued: 4, Completed: 1, Errors: 1, Rejected: 1},
		"b-00001": {InFlight: 2, Waiting: 2, Issued: 2},
		"c-00001": {Issued: 1, Completed: 1, Errors: 1, Rejected: 1},
	} {
		if got := h.statsOf(name); got != want {
			t.Errorf("stats of %s: %+v, want %+v", name, got, want)
		}
	}

	pod := startBackend(t, model.HTTP1, text("ok"))
	for _, name := range revs {
		h.act.SetEndpoints(testNamespace+"/"+name, []model.Endpoint{pod})
	}
	for _, r := range held {
		expect(t, <-r, http.StatusOK, "ok")
	}
	// Once answered, the held requests leave room for others.
	expect(t, h.do(t, h.requestFor(t, "c-00001")), http.StatusOK, "ok")
	if got := h.act.held.Load(); got != 0 {
		t.Errorf("held across revisions after every answer: %d, want 0", got)
	}
}

// A full line sheds as the ceilings do: 503, connection closed, counted.
func TestQueueFullSheds(t *testing.T) {
	h := newHarness(t, Options{QueueDepth: 1})
	h.act.SetRevision(testKey, RevisionConfig{})
	held := h.getAsync(t, "/")
	waitFor(t, "a request waiting", func() bool { return h.stats().Waiting == 1 })
	got := h.get(t, "/")
	expect(t, got, http.StatusServiceUnavailable, "queue full")
	if !got.closed {
		t.Error("the connection stayed open after a 503")
	}
	if s := h.stats(); s.Rejected != 1 || s.Errors != 1 {
		t.Errorf("stats %+v: want the 503 counted rejected", s)
	}
	h.act.SetEndpoints(testKey, []model.Endpoint{startBackend(t, model.HTTP1, text("ok"))})
	expect(t, <-held, http.StatusOK, "ok")
}

// The shared counter has a request in flight to its pod from before it is
// sent until its response body has been copied in full; a request waiting
// for a pod is in flight to none.
func TestInflightCounter(t *testing.T) {
	counter := new(inflight.Counter)
	h := newHarness(t, Options{Inflight: counter})
	h.act.SetRevision(testKey, RevisionConfig{ContainerConcurrency: 1})

	waiting := h.getAsync(t, "/")
	waitFor(t, "a request waiting", func() bool { return h.stats().Waiting == 1 })

	// The pod answers its headers and the first half of the body at once,
	// the rest when released.
	arrived, release := make(chan struct{}, 2), make(chan struct{})
	pod := startBackend(t, model.HTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		_, _ = io.WriteString(w, "first half, ")
		http.NewResponseController(w).Flush()
		select {
		case <-release:
			_, _ = io.WriteString(w, "second half")
		case <-r.Context().Done():
		}
	}))
	addr := net.JoinHostPort(pod.Address, strconv.FormatUint(uint64(pod.Port), 10))
	if n := counter.Count(addr); n != 0 {
		t.Fatalf("in flight to the pod before it is an endpoint: %d", n)
	}
	h.act.SetEndpoints(testKey, []model.Endpoint{pod})
	<-arrived
	if n := counter.Count(addr); n != 1 {
		t.Errorf("in flight to the pod while it answers: %d, want 1", n)
	}
	release <- struct{}{}
	expect(t, <-waiting, http.StatusOK, "first half, second half")
	waitFor(t, "the request counted out", func() bool { return counter.Count(addr) == 0 })

	// A response under way: the headers are in, the body is not.
	resp, err := h.client.Do(h.request(context.Background(), t, "/"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	<-arrived
	if n := counter.Count(addr); n != 1 {
		t.Errorf("in flight while the body streams: %d, want 1", n)
	}
	close(release)
	if body, err := io.ReadAll(resp.Body); err != nil || string(body) != "first half, second half" {
		t.Errorf("body %q, %v", body, err)
	}
	waitFor(t, "the request counted out", func() bool { return counter.Count(addr) == 0 })
}
