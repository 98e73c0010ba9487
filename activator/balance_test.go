package activator

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kgate/kgate/translator/model"
)

// concurrencyCounter is a backend handler that tracks how many requests it
// serves at once and fails the test when that exceeds limit.
type concurrencyCounter struct {
	t      testing.TB
	name   string
	limit  int64
	now    atomic.Int64
	served atomic.Int64
}

func (c *concurrencyCounter) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	if n := c.now.Add(1); n > c.limit {
		c.t.Errorf("pod %s serves %d requests at once, containerConcurrency is %d", c.name, n, c.limit)
	}
	time.Sleep(2 * time.Millisecond) // long enough for requests to overlap
	c.now.Add(-1)
	c.served.Add(1)
	fmt.Fprint(w, c.name)
}

func TestContainerConcurrencyOnePerPod(t *testing.T) {
	const pods, requests = 10, 100
	h := newHarness(t, Options{})
	h.act.SetRevision(testKey, RevisionConfig{ContainerConcurrency: 1})
	counters := make([]*concurrencyCounter, pods)
	eps := make([]model.Endpoint, pods)
	for i := range counters {
		counters[i] = &concurrencyCounter{t: t, name: fmt.Sprint("pod", i), limit: 1}
		eps[i] = startBackend(t, model.HTTP1, counters[i])
	}
	h.act.SetEndpoints(testKey, eps)

	var wg sync.WaitGroup
	for range requests {
		wg.Go(func() {
			if got := h.get(t, "/"); got.status != http.StatusOK {
				t.Errorf("got %d %q, want 200", got.status, got.body)
			}
		})
	}
	wg.Wait()

	var served int64
	for _, c := range counters {
		served += c.served.Load()
	}
	if served != requests {
		t.Errorf("pods served %d requests, want %d", served, requests)
	}
	if s := h.stats(); s.Completed != requests || s.Errors != 0 {
		t.Errorf("stats: %+v, want %d completed without error", s, requests)
	}
}

// pods returns n pods named p0..pn-1 with the given requests in flight.
func podsWith(inFlight ...int) []*pod {
	ps := make([]*pod, len(inFlight))
	for i, n := range inFlight {
		ps[i] = &pod{addr: fmt.Sprint("p", i), inFlight: n, ready: true}
	}
	return ps
}

func TestFirstFree(t *testing.T) {
	for _, tc := range []struct {
		inFlight []int
		cc       int
		want     string
	}{
		{[]int{0, 0, 0}, 1, "p0"},
		{[]int{1, 0, 0}, 1, "p1"},
		{[]int{3, 2, 0}, 3, "p1"},
		{[]int{1, 1}, 1, "<nil>"},
		{nil, 1, "<nil>"},
	} {
		if got := name(firstFree(podsWith(tc.inFlight...), tc.cc)); got != tc.want {
			t.Errorf("firstFree(%v, cc=%d) = %s, want %s", tc.inFlight, tc.cc, got, tc.want)
		}
	}
}

func TestRoundRobin(t *testing.T) {
	ps := podsWith(0, 4, 0, 0) // p1 is full at cc=4
	var got []string
	next := 0
	for range 5 {
		var p *pod
		p, next = roundRobin(ps, 4, next)
		got = append(got, name(p))
	}
	if want := "[p0 p2 p3 p0 p2]"; fmt.Sprint(got) != want {
		t.Errorf("round robin picked %v, want %s", got, want)
	}
	if p, _ := roundRobin(podsWith(4, 4), 4, 7); p != nil {
		t.Errorf("picked %s among full pods", p.addr)
	}
}

func TestLeastOfTwo(t *testing.T) {
	// With two pods both are drawn: the less loaded always wins.
	for range 100 {
		if got := name(leastOfTwo(podsWith(5, 2))); got != "p1" {
			t.Fatalf("picked %s, want the less loaded p1", got)
		}
	}
	// With many, the most loaded can never win a draw.
	for range 1000 {
		if got := name(leastOfTwo(podsWith(1, 1, 9, 1, 1))); got == "p2" {
			t.Fatalf("picked the most loaded pod")
		}
	}
	if leastOfTwo(nil) != nil {
		t.Errorf("picked a pod among none")
	}
}

func name(p *pod) string {
	if p == nil {
		return "<nil>"
	}
	return p.addr
}
