package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kgate/kgate/internal/promtest"
)

// Under a burst of load on the hello sample, the admin API's /metrics
// (scraped as Prometheus does) says what `kgate get revisions` says:
// autoscaler_desired_pods is the DESIRED column, autoscaler_actual_pods
// the ACTUAL one, kgate_revision_routing_mode the MODE. The activator's
// and the xDS server's metrics are served there too, and moved.
func TestMetricsMatchGetUnderLoad(t *testing.T) {
	svc := strings.Replace(example(t, "examples/hello.yaml"), "  template:\n", `  template:
    metadata:
      annotations:
        autoscaling.knative.dev/target: "5"
`, 1)
	k := startKgate(t, map[string]string{"autoscaler.yaml": fastAutoscaler, "hello.yaml": svc})
	k.ready("hello", host("hello"), "Hello World!", 60*time.Second)
	const rev = "hello-00001"
	labels := map[string]string{"namespace_name": "default", "revision_name": rev, "service_name": "hello", "configuration_name": "hello"}
	url := "http://" + k.admin + "/metrics"

	ctx, stop := context.WithTimeout(context.Background(), 60*time.Second)
	defer stop()
	l := runLoad(ctx, k, 50, host("hello"), "/")
	k.eventually("autoscaler_desired_pods above 1 and equal to kgate get's DESIRED", 50*time.Second, func() error {
		before := k.revisions()[rev]
		f, err := promtest.ScrapeErr(url)
		if err != nil {
			return err
		}
		after := k.revisions()[rev]
		if before != after {
			return fmt.Errorf("the revision changed during the scrape: %+v, then %+v", before, after)
		}
		desired, ok := f.Value("autoscaler_desired_pods", labels)
		if !ok {
			return fmt.Errorf("no autoscaler_desired_pods%v", labels)
		}
		actual, _ := f.Value("autoscaler_actual_pods", labels)
		if int(desired) != after.Desired || int(actual) != after.Actual {
			return fmt.Errorf("metrics desired %v actual %v, kgate get revisions %+v", desired, actual, after)
		}
		if mode, ok := f.Value("kgate_revision_routing_mode", map[string]string{"revision_name": rev, "mode": after.Mode}); !ok || mode != 1 {
			return fmt.Errorf("kgate_revision_routing_mode{mode=%q} = %v (found %v)", after.Mode, mode, ok)
		}
		if desired < 2 {
			return fmt.Errorf("desired %v: not scaled up yet", desired)
		}
		t.Logf("kgate get revisions %+v; autoscaler_desired_pods %v", after, desired)
		return nil
	})
	stop()
	l.wait()

	f := promtest.Scrape(t, url)
	// The first requests reached the revision through the activator (it
	// started at zero... or its initial scale, behind the activator).
	if n, _ := f.Value("activator_request_count", map[string]string{"revision_name": rev, "response_code": "200"}); n < 1 {
		t.Errorf("activator_request_count{revision_name=%s,response_code=200} = %v, want at least 1", rev, n)
	}
	if n, _ := f.Value("kgate_xds_connected_clients", map[string]string{"role": "gateway"}); n < 1 {
		t.Errorf("kgate_xds_connected_clients{role=gateway} = %v, want the dev gateway", n)
	}
	if n, _ := f.Value("kgate_xds_pushes_total", map[string]string{"type_url": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"}); n < 1 {
		t.Errorf("kgate_xds_pushes_total for endpoints = %v, want pushes", n)
	}
	if _, ok := f["kgate_control_plane_refusals_total"]; !ok {
		t.Error("kgate_control_plane_refusals_total is no longer served")
	}
}
