package activator

import (
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Knative's activator metrics, as its Prometheus exporter names them, so
// that Knative's dashboards read kgate's activator unchanged; the labels
// are Knative's, without pod_name and container_name (a scrape target is
// the pod). service_name and configuration_name come from the revision
// cluster's metadata (empty for a revision of no Service, or a control
// plane that does not say).
const (
	requestCountName     = "activator_request_count"
	requestLatenciesName = "activator_request_latencies"
)

var requestLabels = []string{"namespace_name", "service_name", "configuration_name", "revision_name", "response_code", "response_code_class"}

// latencyBuckets are Knative's request latency buckets, in milliseconds.
var latencyBuckets = []float64{5, 10, 20, 40, 60, 80, 100, 150, 200, 250, 300, 350, 400, 450, 500, 600, 700, 800, 900, 1000, 2000, 5000, 10000, 20000, 50000, 100000}

var (
	heldDesc = prometheus.NewDesc("kgate_activator_requests_held",
		"Requests the activator holds for the revision now: waiting for a pod or proxied to one.",
		[]string{"namespace_name", "revision_name"}, nil)
	waitingDesc = prometheus.NewDesc("kgate_activator_requests_waiting",
		"Requests among those held still waiting for a pod with room.",
		[]string{"namespace_name", "revision_name"}, nil)
	rejectedDesc = prometheus.NewDesc("kgate_activator_queue_rejections_total",
		"Requests answered 503 at once because the revision's line, its share of the activator or the activator was full.",
		[]string{"namespace_name", "revision_name"}, nil)
)

// metrics are the activator's Prometheus metrics. Request count and
// latency are recorded per request through per-revision handles (no label
// hashing on the request path); held, waiting and rejections are read from
// the revisions' counters when scraped.
type metrics struct {
	a         *Activator
	requests  *prometheus.CounterVec
	latencies *prometheus.HistogramVec
}

func newMetrics(a *Activator, reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	m := &metrics{
		a: a,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: requestCountName,
			Help: "The number of requests that are routed to the activator, by the status answered (0: the client left first).",
		}, requestLabels),
		latencies: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    requestLatenciesName,
			Help:    "The response time in milliseconds of the requests routed to the activator, from arrival to the end of the response.",
			Buckets: latencyBuckets,
		}, requestLabels),
	}
	reg.MustRegister(m.requests, m.latencies, m)
	return m
}

// Describe is the held/waiting/rejections collector's.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- heldDesc
	ch <- waitingDesc
	ch <- rejectedDesc
}

// Collect reads every revision's held and waiting requests and
// rejections.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for key, s := range m.a.Stats() {
		ns, name, _ := strings.Cut(key, "/")
		ch <- prometheus.MustNewConstMetric(heldDesc, prometheus.GaugeValue, float64(s.InFlight), ns, name)
		ch <- prometheus.MustNewConstMetric(waitingDesc, prometheus.GaugeValue, float64(s.Waiting), ns, name)
		ch <- prometheus.MustNewConstMetric(rejectedDesc, prometheus.CounterValue, float64(s.Rejected), ns, name)
	}
}

// revMetrics are one revision's request metrics, by status code.
type revMetrics struct {
	m       *metrics
	ns      string
	name    string
	byCode  [600]atomic.Pointer[codeMetrics]
	deleted atomic.Bool
	// owners are the revision's Service and Configuration names.
	owners atomic.Pointer[[2]string]
}

// setOwners sets the Service and Configuration the labels name; the
// handles made before (requests before the revision's config, which the
// activator answers 404) keep theirs.
func (r *revMetrics) setOwners(service, configuration string) {
	if r == nil {
		return
	}
	if o := r.owners.Load(); o != nil && *o == [2]string{service, configuration} {
		return
	}
	r.owners.Store(&[2]string{service, configuration})
	for i := range r.byCode {
		r.byCode[i].Store(nil) // new handles under the new labels
	}
}

type codeMetrics struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// forRevision returns the request metrics of the revision keyed key.
func (m *metrics) forRevision(key string) *revMetrics {
	if m == nil {
		return nil
	}
	ns, name, _ := strings.Cut(key, "/")
	return &revMetrics{m: m, ns: ns, name: name}
}

// observe records one request answered status (0: nobody was answered)
// after arriving at arrived.
func (r *revMetrics) observe(status int, arrived time.Time) {
	ms := float64(time.Since(arrived)) / float64(time.Millisecond)
	if r.deleted.Load() {
		return // a request finishing after its revision: no series to bring back
	}
	if status < 0 || status >= len(r.byCode) {
		c := r.code(status)
		c.count.Inc()
		c.latency.Observe(ms)
		return
	}
	c := r.byCode[status].Load()
	if c == nil {
		c = r.code(status)
		r.byCode[status].Store(c)
	}
	c.count.Inc()
	c.latency.Observe(ms)
}

func (r *revMetrics) code(status int) *codeMetrics {
	code := strconv.Itoa(status)
	class := strconv.Itoa(status/100) + "xx"
	var owners [2]string
	if o := r.owners.Load(); o != nil {
		owners = *o
	}
	lv := []string{r.ns, owners[0], owners[1], r.name, code, class}
	return &codeMetrics{count: r.m.requests.WithLabelValues(lv...), latency: r.m.latencies.WithLabelValues(lv...)}
}

// delete drops the revision's series.
func (r *revMetrics) delete() {
	if r == nil {
		return
	}
	r.deleted.Store(true)
	l := prometheus.Labels{"namespace_name": r.ns, "revision_name": r.name}
	r.m.requests.DeletePartialMatch(l)
	r.m.latencies.DeletePartialMatch(l)
}
