package kubemode

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kgate/kgate/internal/promtest"
)

// `kgate controller` and `kgate ingress` serve their metrics at /metrics
// on --health-address: once a gateway connects, the xDS server counts it
// as a gateway client and counts what it pushed.
func TestModesServeMetrics(t *testing.T) {
	e := newEnv(t)
	bin, kubeconfig := buildKgate(t), writeKubeconfig(t, e)
	for _, mode := range []string{"controller", "ingress"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "ingress" {
				// Knative Serving's Ingress CRD and namespace, as it finds them.
				installKnativeIngressCRD(t, e)
				if err := e.client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "knative-serving"}}); err != nil {
					t.Fatal(err)
				}
			}
			p := startMode(t, bin, kubeconfig, mode)
			watchHosts(t, e, p.xds)
			url := "http://" + p.health + "/metrics"
			e.eventually(30*time.Second, "a gateway counted and pushed to", func() error {
				f, err := promtest.ScrapeErr(url)
				if err != nil {
					return err
				}
				if n, _ := f.Value("kgate_xds_connected_clients", map[string]string{"role": "gateway"}); n != 1 {
					return fmt.Errorf("kgate_xds_connected_clients{role=gateway} = %v, want 1", n)
				}
				if n, _ := f.Value("kgate_xds_pushes_total", map[string]string{"type_url": resource.RouteType}); n < 1 {
					return fmt.Errorf("kgate_xds_pushes_total{type_url=RDS} = %v, want at least 1", n)
				}
				if n, ok := f.Value("kgate_controller_writes_waiting", nil); !ok || n < 0 {
					return fmt.Errorf("kgate_controller_writes_waiting = %v (found: %v), want a count", n, ok)
				}
				return nil
			})
		})
	}
}
