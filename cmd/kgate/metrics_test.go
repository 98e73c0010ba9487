package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/kgate/kgate/internal/promtest"
)

// `kgate activator` serves its metrics at /metrics on its port: after N
// requests for a revision, Knative's activator_request_count says N for it
// and the code.
func TestActivatorCommandServesMetrics(t *testing.T) {
	xdsFlags := serveRevision(t, newHoldingPod())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, _, _ := startActivator(t, ctx, xdsFlags)
	before := requestCount(t, addr) // awaitRevision's requests count too
	awaitRevision(t, addr)
	const n = 7
	for range n {
		if status, body, err := get(addr, "/"); err != nil || status != http.StatusOK {
			t.Fatalf("request: %d %q %v", status, body, err)
		}
	}
	// A request is counted once its handler returns, which may be just
	// after its client read the response: wait for the count to settle.
	after := settledCount(t, addr)
	// awaitRevision sent at least one successful request of its own.
	if after-before < n+1 {
		t.Errorf("activator_request_count went from %v to %v after %d requests and awaitRevision's", before, after, n)
	}
	// Exactly: count again after n more.
	for range n {
		if status, _, err := get(addr, "/"); err != nil || status != http.StatusOK {
			t.Fatalf("request: %d %v", status, err)
		}
	}
	if got := settledCount(t, addr); got != after+n {
		t.Errorf("activator_request_count %v after %d more requests, want %v", got, n, after+n)
	}
}

// settledCount is requestCount once two reads 100 ms apart agree.
func settledCount(t *testing.T, addr string) float64 {
	t.Helper()
	prev := requestCount(t, addr)
	for range 50 {
		time.Sleep(100 * time.Millisecond)
		v := requestCount(t, addr)
		if v == prev {
			return v
		}
		prev = v
	}
	t.Fatal("activator_request_count did not settle")
	return 0
}

// requestCount is activator_request_count of default/hello-00001 and 200,
// 0 when absent.
func requestCount(t *testing.T, addr string) float64 {
	t.Helper()
	f := promtest.Scrape(t, "http://"+addr+metricsPath)
	v, _ := f.Value("activator_request_count", map[string]string{
		"namespace_name": "default", "revision_name": "hello-00001", "response_code": "200", "response_code_class": "2xx",
	})
	return v
}
