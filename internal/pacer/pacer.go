// Package pacer is the test application whose response timing the request
// chooses, for the tests of the revision timeouts (docs/timeouts.md): the
// activator's, the dev gateway's and the end-to-end ones.
//
// Only tests use it.
package pacer

import (
	"context"
	"io"
	"net/http"
	"time"
)

// ServeHTTP waits ?delay= before the response starts, then sends "a",
// flushed, then waits ?pause=, then sends "b". It stops, sending nothing
// more, once the request goes away.
func ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	delay, _ := time.ParseDuration(q.Get("delay"))
	pause, _ := time.ParseDuration(q.Get("pause"))
	if !sleep(r.Context(), delay) {
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "a")
	_ = http.NewResponseController(w).Flush()
	if !sleep(r.Context(), pause) {
		return
	}
	_, _ = io.WriteString(w, "b")
}

// sleep waits d, unless ctx ends first: false then.
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}
