package activator

import (
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kgate/kgate/internal/promtest"
	"github.com/kgate/kgate/translator/model"
)

// After N requests through the activator, its Knative-named counter says N
// for the revision and the code, and the latency histogram has N samples;
// a shed request counts under 503 and as a queue rejection; the requests
// held show while they wait; a deleted revision's series go.
func TestMetricsCountRequestsByRevisionAndCode(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t, Options{QueueDepth: 1, Registerer: reg})
	url := promtest.Serve(t, reg)
	// The revision's Service and Configuration, from its cluster's
	// metadata, label its series as Knative's.
	h.act.SetRevision(testKey, RevisionConfig{Service: "hello", Configuration: "hello-cfg"})
	rev := map[string]string{"namespace_name": testNamespace, "revision_name": testRevision}
	with := func(code, class string) map[string]string {
		return map[string]string{"namespace_name": testNamespace, "revision_name": testRevision, "response_code": code, "response_code_class": class,
			"service_name": "hello", "configuration_name": "hello-cfg"}
	}

	// One request waits at zero pods; a second finds the line full.
	held := h.getAsync(t, "/")
	waitFor(t, "a request waiting", func() bool { return h.stats().Waiting == 1 })
	f := promtest.Scrape(t, url)
	expectValue(t, f, "kgate_activator_requests_held", rev, 1)
	expectValue(t, f, "kgate_activator_requests_waiting", rev, 1)
	expect(t, h.get(t, "/"), http.StatusServiceUnavailable, "queue full")

	h.act.SetEndpoints(testKey, []model.Endpoint{startBackend(t, model.HTTP1, text("ok"))})
	expect(t, <-held, http.StatusOK, "ok")
	const n = 25
	for range n {
		expect(t, h.get(t, "/"), http.StatusOK, "ok")
	}

	// A request is counted once its handler returns, which may be just
	// after its client read the response.
	waitFor(t, "every request counted", func() bool {
		v, _ := promtest.Scrape(t, url).Value("activator_request_count", with("200", "2xx"))
		return v == n+1
	})
	f = promtest.Scrape(t, url)
	expectValue(t, f, "activator_request_count", with("200", "2xx"), n+1)
	expectValue(t, f, "activator_request_latencies", with("200", "2xx"), n+1)
	expectValue(t, f, "activator_request_count", with("503", "5xx"), 1)
	expectValue(t, f, "kgate_activator_queue_rejections_total", rev, 1)
	expectValue(t, f, "kgate_activator_requests_held", rev, 0)
	if got := f["activator_request_count"].GetType().String(); got != "COUNTER" {
		t.Errorf("activator_request_count is a %s, want COUNTER", got)
	}
	for _, m := range f.Find("activator_request_count", rev) {
		for _, l := range []string{"service_name", "configuration_name"} {
			if !hasLabel(m.GetLabel(), l) {
				t.Errorf("activator_request_count has no %s label: %v", l, m.GetLabel())
			}
		}
	}

	h.act.DeleteRevision(testKey)
	f = promtest.Scrape(t, url)
	for _, name := range []string{"activator_request_count", "activator_request_latencies", "kgate_activator_requests_held", "kgate_activator_queue_rejections_total"} {
		if s := f.Find(name, rev); len(s) != 0 {
			t.Errorf("%s of a deleted revision still exported: %v", name, s)
		}
	}
}

func expectValue(t *testing.T, f promtest.Families, name string, labels map[string]string, want float64) {
	t.Helper()
	if got, ok := f.Value(name, labels); !ok || got != want {
		t.Errorf("%s%v = %v (found %v), want %v", name, labels, got, ok, want)
	}
}

func hasLabel[L interface{ GetName() string }](ls []L, name string) bool {
	for _, l := range ls {
		if l.GetName() == name {
			return true
		}
	}
	return false
}

// BenchmarkRequestMetrics measures a request through the activator to a
// zero-work pod on loopback, one at a time, with metrics off and on. Run
// the two interleaved, as separate runs alternate, for benchstat:
//
//	go test -c -o act.test ./activator
//	for i in $(seq 10); do for m in off on; do
//	  ./act.test -test.run '^$' -test.bench "RequestMetrics/metrics=$m$"; done; done | benchstat -col /metrics -
func BenchmarkRequestMetrics(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "metrics=off"
		if on {
			name = "metrics=on"
		}
		b.Run(name, func(b *testing.B) {
			opts := Options{}
			if on {
				opts.Registerer = prometheus.NewRegistry()
			}
			h := newHarness(b, opts)
			h.act.SetRevision(testKey, RevisionConfig{})
			h.act.SetEndpoints(testKey, []model.Endpoint{startBackend(b, model.HTTP1, text("ok"))})
			h.get(b, "/") // the connections open before the timer starts
			// CPU time as well as wall time: on a shared machine the wall
			// time of a loopback round trip is mostly scheduling.
			start := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				if r := h.get(b, "/"); r.status != http.StatusOK {
					b.Fatalf("status %d", r.status)
				}
			}
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkObserve is what metrics add to one request: the count and the
// latency of a revision and code already seen.
func BenchmarkObserve(b *testing.B) {
	a := New(Options{Registerer: prometheus.NewRegistry()})
	a.SetRevision(testKey, RevisionConfig{})
	rev := a.lookupNamed(testNamespace, testRevision)
	arrived := time.Now()
	rev.metrics.observe(http.StatusOK, arrived)
	b.ReportAllocs()
	for b.Loop() {
		rev.metrics.observe(http.StatusOK, arrived)
	}
}

// cpuTime is the CPU time the process has used (user and system): the
// client, the activator and the pod of the benchmark all run in it.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
