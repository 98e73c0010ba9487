package devgateway

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names of the dev gateway's requests.
const (
	RequestsMetric        = "kgate_gateway_requests_total"
	RequestDurationMetric = "kgate_gateway_request_duration_seconds"
)

// requestMetrics count the gateway's requests and their latency by
// upstream cluster ("<namespace>/<revision>", "" for a request answered
// without one: no route, say) and response code.
type requestMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newRequestMetrics(reg prometheus.Registerer) (*requestMetrics, error) {
	if reg == nil {
		return nil, nil
	}
	labels := []string{"cluster", "response_code"}
	m := &requestMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: RequestsMetric,
			Help: "Requests the dev gateway answered, by upstream cluster (empty: answered without one) and response code (0: the client left first).",
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    RequestDurationMetric,
			Help:    "Time from a request's arrival at the dev gateway to the end of its response, by upstream cluster and response code.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1 ms to 33 s
		}, labels),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// statusLabels caches the label values of the common status codes.
var statusLabels = func() map[int]string {
	m := map[int]string{}
	for code := 100; code < 600; code++ {
		if http.StatusText(code) != "" {
			m[code] = strconv.Itoa(code)
		}
	}
	m[0] = "0"
	return m
}()

func (m *requestMetrics) observe(rec *requestRecord, d time.Duration) {
	code, ok := statusLabels[rec.status]
	if !ok {
		code = strconv.Itoa(rec.status)
	}
	m.requests.WithLabelValues(rec.cluster, code).Inc()
	m.duration.WithLabelValues(rec.cluster, code).Observe(d.Seconds())
}
