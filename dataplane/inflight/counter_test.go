package inflight

import (
	"sync"
	"testing"
)

func TestCounter(t *testing.T) {
	var c Counter
	a1 := c.Begin("10.0.0.1:8080")
	a2 := c.Begin("10.0.0.1:8080")
	b := c.Begin("10.0.0.2:8080")
	for _, tc := range []struct {
		addr string
		want int
	}{{"10.0.0.1:8080", 2}, {"10.0.0.2:8080", 1}, {"10.0.0.3:8080", 0}} {
		if got := c.Count(tc.addr); got != tc.want {
			t.Errorf("Count(%s) = %d, want %d", tc.addr, got, tc.want)
		}
	}

	a1()
	a1() // idempotent: the second call does not count a2 out
	if got := c.Count("10.0.0.1:8080"); got != 1 {
		t.Errorf("after one done called twice: Count = %d, want 1", got)
	}
	a2()
	b()
	if got := c.Count("10.0.0.1:8080") + c.Count("10.0.0.2:8080"); got != 0 {
		t.Errorf("after every done: %d in flight, want 0", got)
	}
	if len(c.n) != 0 {
		t.Errorf("addresses kept after their last request: %v", c.n)
	}
}

func TestNilCounterCountsNothing(t *testing.T) {
	var c *Counter
	done := c.Begin("10.0.0.1:8080")
	done()
	if got := c.Count("10.0.0.1:8080"); got != 0 {
		t.Errorf("nil Counter: Count = %d, want 0", got)
	}
}

func TestCounterConcurrent(t *testing.T) {
	var c Counter
	var wg sync.WaitGroup
	dones := make(chan func(), 1000)
	for range 1000 {
		wg.Go(func() { dones <- c.Begin("pod:1") })
	}
	wg.Wait()
	close(dones)
	if got := c.Count("pod:1"); got != 1000 {
		t.Fatalf("Count = %d, want 1000", got)
	}
	for done := range dones {
		wg.Go(func() { done(); done() })
	}
	wg.Wait()
	if got := c.Count("pod:1"); got != 0 {
		t.Errorf("Count = %d after every request ended, want 0", got)
	}
}
