package xds

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kgate/kgate/xds/auth"
)

// metrics are the xDS server's Prometheus metrics; a nil *metrics records
// nothing, so that a server without a registry pays one nil check per
// event.
//
// Cardinality is bounded: type URLs are the handful the server serves,
// roles the pki roles, the NACK error is one series per type (the last),
// and the ACK lag has one series per node id only while the node has a
// stream open.
type metrics struct {
	clients   *prometheus.GaugeVec
	pushes    *prometheus.CounterVec
	resources *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	nacks     *prometheus.CounterVec
	lastNACK  *prometheus.GaugeVec
	ackLag    *prometheus.GaugeVec

	mu sync.Mutex
	// lastErr is the error label of each type's lastNACK series.
	lastErr map[string]string
	// nodes counts each connected node's streams, by role and node id: a
	// node is one client however many streams it opens.
	nodes map[nodeRole]int
}

type nodeRole struct{ role, node string }

// maxNACKErrorLen bounds the error label of kgate_xds_last_nack_info.
const maxNACKErrorLen = 200

// pushLatencyBuckets run from 100 µs to about 13 s, doubling.
var pushLatencyBuckets = prometheus.ExponentialBuckets(0.0001, 2, 18)

func newMetrics(reg prometheus.Registerer, gate *auth.Gate) *metrics {
	if reg == nil {
		return nil
	}
	m := &metrics{
		clients: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kgate_xds_connected_clients",
			Help: "Nodes with at least one xDS stream open, by the role their certificate names (anonymous without TLS).",
		}, []string{"role"}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kgate_xds_pushes_total",
			Help: "xDS responses sent, by type URL.",
		}, []string{"type_url"}),
		resources: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kgate_xds_resources_pushed_total",
			Help: "Resources carried by the xDS responses sent (removals not counted), by type URL.",
		}, []string{"type_url"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kgate_xds_push_latency_seconds",
			Help:    "Time from the latest change of a type's resources to a response carrying it being sent, for responses to a client already subscribed (not initial fetches).",
			Buckets: pushLatencyBuckets,
		}, []string{"type_url"}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kgate_xds_nacks_total",
			Help: "xDS responses a client rejected (NACK), by type URL.",
		}, []string{"type_url"}),
		lastNACK: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kgate_xds_last_nack_info",
			Help: "The last NACK's error message per type URL (truncated to 200 characters); the value is 1.",
		}, []string{"type_url", "error"}),
		ackLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kgate_xds_ack_lag_seconds",
			Help: "Time the node took to answer its latest answered xDS response (ACK or NACK), per node id while it is connected.",
		}, []string{"node_id"}),
		lastErr: map[string]string{},
		nodes:   map[nodeRole]int{},
	}
	reg.MustRegister(m.clients, m.pushes, m.resources, m.latency, m.nacks, m.lastNACK, m.ackLag, refusalsCollector{gate})
	return m
}

// refusalsCollector exports a gate's refusals, those of the Services
// sharing it (LRS) included, every reason shown, zeros too.
type refusalsCollector struct{ gate *auth.Gate }

var refusalsDesc = prometheus.NewDesc("kgate_control_plane_refusals_total",
	"Streams and requests the xDS and load-reporting servers refused, by reason.", []string{"reason"}, nil)

func (c refusalsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- refusalsDesc }

func (c refusalsCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.gate.Refusals.Counts()
	for _, reason := range auth.Reasons {
		ch <- prometheus.MustNewConstMetric(refusalsDesc, prometheus.CounterValue, float64(counts[reason]), reason)
	}
}

// connected counts a stream bound to a node.
func (m *metrics) connected(role, node string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := nodeRole{role, node}
	m.nodes[k]++
	if m.nodes[k] == 1 {
		m.clients.WithLabelValues(role).Inc()
	}
}

// disconnected counts a bound stream out; the node's series go with its
// last stream.
func (m *metrics) disconnected(role, node string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := nodeRole{role, node}
	if m.nodes[k] == 0 {
		return
	}
	m.nodes[k]--
	if m.nodes[k] > 0 {
		return
	}
	delete(m.nodes, k)
	// The node's series go before it is counted out: a scrape that sees
	// it gone sees them gone.
	held := false
	for other := range m.nodes {
		held = held || other.node == node // the same node id under another role
	}
	if !held {
		m.ackLag.DeleteLabelValues(node)
	}
	m.clients.WithLabelValues(role).Dec()
}

// pushed counts a response sent; changedAt, when not zero, is when the
// change it carries was made.
func (m *metrics) pushed(typeURL string, resources int, changedAt time.Time) {
	if m == nil {
		return
	}
	m.pushes.WithLabelValues(typeURL).Inc()
	m.resources.WithLabelValues(typeURL).Add(float64(resources))
	if !changedAt.IsZero() {
		m.latency.WithLabelValues(typeURL).Observe(time.Since(changedAt).Seconds())
	}
}

// answered records a node's answer to a response sent lag ago.
func (m *metrics) answered(node string, lag time.Duration) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// Only a connected node has a series: an answer racing the stream's
	// close must not bring one back.
	for k := range m.nodes {
		if k.node == node {
			m.ackLag.WithLabelValues(node).Set(lag.Seconds())
			return
		}
	}
}

// nacked counts a NACK and keeps its error as the type's last.
func (m *metrics) nacked(typeURL, errMsg string) {
	if m == nil {
		return
	}
	if len(errMsg) > maxNACKErrorLen {
		errMsg = truncateUTF8(errMsg, maxNACKErrorLen)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if prev, ok := m.lastErr[typeURL]; ok && prev != errMsg {
		m.lastNACK.DeleteLabelValues(typeURL, prev)
	}
	m.lastErr[typeURL] = errMsg
	// Counted before its error shows: a scrape started after the error
	// showed sees the count.
	m.nacks.WithLabelValues(typeURL).Inc()
	m.lastNACK.WithLabelValues(typeURL, errMsg).Set(1)
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// changeClock records when a cache last changed, in Unix nanoseconds.
type changeClock struct{ at atomic.Int64 }

func (c *changeClock) mark() { c.at.Store(time.Now().UnixNano()) }
func (c *changeClock) last() time.Time {
	if n := c.at.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}
