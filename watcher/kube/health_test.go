package kube

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestProfilingIsServedOnlyWhenAsked: Go's profiles show a process's
// insides; the health address serves them with --profiling only.
func TestProfilingIsServedOnlyWhenAsked(t *testing.T) {
	for _, on := range []bool{false, true} {
		c := &Controller{opts: Options{Profiling: on}, registry: prometheus.NewRegistry()}
		rec := httptest.NewRecorder()
		c.healthHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/pprof/", nil))
		if want := map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[on]; rec.Code != want {
			t.Errorf("Profiling %v: GET /debug/pprof/ = %d, want %d", on, rec.Code, want)
		}
	}
}
