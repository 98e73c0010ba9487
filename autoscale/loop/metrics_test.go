package loop

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/autoscale"
	"github.com/kgate/kgate/internal/promtest"
	"github.com/kgate/kgate/translator/model"
)

// The autoscaler's gauges, scraped over HTTP, carry Knative's names and
// labels and match the decision applied: concurrency 50 at target 10 runs
// 5 pods. A revision no longer scaled loses its series.
func TestMetricsMatchTheDecision(t *testing.T) {
	r := newRig(t, activators)
	reg := prometheus.NewRegistry()
	var err error
	r.loop, err = New(Options{Deployer: r.dep, Endpoints: r.pushes, Metrics: r.load, Activators: activators, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	url := promtest.Serve(t, reg)
	const rev = "default/hello-00001"
	r.configure(config.DefaultAutoscaler(), Revision{Key: rev, Service: "hello", Configuration: "hello", Spec: autoscale.RevisionSpec{
		Annotations: annotations("target", "10", "target-utilization-percentage", "100")}})
	r.load.set(rev, 50)
	r.run(90 * time.Second)

	d := r.loop.Decisions()[rev]
	mode := r.loop.Modes()[rev]
	labels := map[string]string{"namespace_name": "default", "revision_name": "hello-00001", "service_name": "hello", "configuration_name": "hello"}
	f := promtest.Scrape(t, url)
	for name, want := range map[string]float64{
		"autoscaler_desired_pods":               5,
		"autoscaler_actual_pods":                5,
		"autoscaler_requested_pods":             5,
		"autoscaler_panic_mode":                 0,
		"autoscaler_excess_burst_capacity":      float64(d.ExcessBurstCapacity),
		"autoscaler_stable_request_concurrency": 50,
		"autoscaler_panic_request_concurrency":  50,
		"autoscaler_target_concurrency_per_pod": 10,
	} {
		if got, ok := f.Value(name, labels); !ok || got != want {
			t.Errorf("%s = %v (found %v), want %v", name, got, ok, want)
		}
	}
	if d.Replicas != 5 {
		t.Errorf("decision %+v, want 5 replicas", d)
	}
	// The rps gauges belong to revisions scaling on rps.
	if s := f.Find("autoscaler_stable_requests_per_second", nil); len(s) != 0 {
		t.Errorf("rps gauges for a concurrency revision: %v", s)
	}
	modes := f.Find("kgate_revision_routing_mode", labels)
	if len(modes) != 1 || promtest.Label(modes[0], "mode") != string(mode) || modes[0].GetGauge().GetValue() != 1 {
		t.Errorf("routing mode series %v, want one with mode=%s at 1", modes, mode)
	}

	// Back to Serve or Proxy: the other mode's series goes.
	r.load.set(rev, 0)
	r.configure(config.DefaultAutoscaler(), Revision{Key: rev, Service: "hello", Configuration: "hello", Spec: autoscale.RevisionSpec{
		Annotations: annotations("target", "10", "target-burst-capacity", "-1")}})
	r.run(4 * time.Second)
	f = promtest.Scrape(t, url)
	if modes := f.Find("kgate_revision_routing_mode", labels); len(modes) != 1 || promtest.Label(modes[0], "mode") != string(model.Proxy) {
		t.Errorf("routing mode series %v after target-burst-capacity -1, want one, Proxy", modes)
	}

	r.configure(config.DefaultAutoscaler())
	f = promtest.Scrape(t, url)
	for name := range f {
		if s := f.Find(name, map[string]string{"revision_name": "hello-00001"}); len(s) != 0 {
			t.Errorf("%s of a revision no longer scaled still exported: %v", name, s)
		}
	}
}
