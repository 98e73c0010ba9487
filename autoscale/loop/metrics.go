package loop

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kgate/kgate/api/autoscaling"
	"github.com/kgate/kgate/autoscale"
	"github.com/kgate/kgate/translator/model"
)

// revisionLabels are Knative's autoscaler metric labels.
var revisionLabels = []string{"namespace_name", "configuration_name", "revision_name", "service_name"}

// promMetrics are the autoscaler's Prometheus metrics, with Knative's names
// and labels so that Knative's dashboards read them unchanged, and kgate's
// routing mode. Each applied decision sets its revision's series; a
// revision no longer scaled loses them. nil records nothing.
type promMetrics struct {
	desired, actual, requested, ebc, panic *prometheus.GaugeVec
	stableCC, panicCC, targetCC            *prometheus.GaugeVec
	stableRPS, panicRPS, targetRPS         *prometheus.GaugeVec
	mode                                   *prometheus.GaugeVec
}

func newPromMetrics(reg prometheus.Registerer) *promMetrics {
	if reg == nil {
		return nil
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, revisionLabels)
		reg.MustRegister(g)
		return g
	}
	m := &promMetrics{
		desired:   gauge("autoscaler_desired_pods", "Number of pods autoscaler wants to allocate (the revision's desired replicas, as kgate get revisions shows)."),
		actual:    gauge("autoscaler_actual_pods", "Number of pods that are allocated currently in ready state."),
		requested: gauge("autoscaler_requested_pods", "Number of pods autoscaler requested from the deployer."),
		ebc:       gauge("autoscaler_excess_burst_capacity", "Excess burst capacity observed over the stable window."),
		panic:     gauge("autoscaler_panic_mode", "1 if autoscaler is in panic mode, 0 otherwise."),
		stableCC:  gauge("autoscaler_stable_request_concurrency", "Average of requests count over the stable window (concurrency metric)."),
		panicCC:   gauge("autoscaler_panic_request_concurrency", "Average of requests count over the panic window (concurrency metric)."),
		targetCC:  gauge("autoscaler_target_concurrency_per_pod", "The desired number of concurrent requests for each pod (concurrency metric)."),
		stableRPS: gauge("autoscaler_stable_requests_per_second", "Average requests-per-second over the stable window (rps metric)."),
		panicRPS:  gauge("autoscaler_panic_requests_per_second", "Average requests-per-second over the panic window (rps metric)."),
		targetRPS: gauge("autoscaler_target_requests_per_second", "The desired requests-per-second for each pod (rps metric)."),
	}
	m.mode = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kgate_revision_routing_mode",
		Help: "1 for the mode the revision's traffic is routed in: Proxy (through the activators) or Serve (straight to its pods).",
	}, append(append([]string{}, revisionLabels...), "mode"))
	reg.MustRegister(m.mode)
	return m
}

// labels are a revision's label values, in revisionLabels' order.
func labels(r Revision) []string {
	ns, name, _ := strings.Cut(r.Key, "/")
	return []string{ns, r.Configuration, name, r.Service}
}

// record sets a revision's series from the decision applied.
func (m *promMetrics) record(r Revision, d autoscale.Decision, s autoscale.Settings, eps model.RevisionEndpoints, requested int32) {
	if m == nil {
		return
	}
	lv := labels(r)
	m.desired.WithLabelValues(lv...).Set(float64(d.Replicas))
	m.actual.WithLabelValues(lv...).Set(float64(len(eps.Pods)))
	m.requested.WithLabelValues(lv...).Set(float64(requested))
	m.ebc.WithLabelValues(lv...).Set(float64(d.ExcessBurstCapacity))
	panicking := 0.0
	if d.Panicking {
		panicking = 1
	}
	m.panic.WithLabelValues(lv...).Set(panicking)
	stable, panicked, target := m.stableCC, m.panicCC, m.targetCC
	if s.Metric == autoscaling.MetricRPS {
		stable, panicked, target = m.stableRPS, m.panicRPS, m.targetRPS
	}
	stable.WithLabelValues(lv...).Set(d.StableValue)
	panicked.WithLabelValues(lv...).Set(d.PanicValue)
	target.WithLabelValues(lv...).Set(s.TargetValue)
	for _, mode := range []model.Mode{model.Proxy, model.Serve} {
		if mode != eps.Mode {
			m.mode.DeleteLabelValues(append(lv, string(mode))...)
		}
	}
	m.mode.WithLabelValues(append(lv, string(eps.Mode))...).Set(1)
}

// delete drops every series of the revision keyed key.
func (m *promMetrics) delete(key string) {
	if m == nil {
		return
	}
	ns, name, _ := strings.Cut(key, "/")
	l := prometheus.Labels{"namespace_name": ns, "revision_name": name}
	for _, g := range []*prometheus.GaugeVec{m.desired, m.actual, m.requested, m.ebc, m.panic,
		m.stableCC, m.panicCC, m.targetCC, m.stableRPS, m.panicRPS, m.targetRPS, m.mode} {
		g.DeletePartialMatch(l)
	}
}
