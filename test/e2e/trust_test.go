package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	loadstatsv3 "github.com/envoyproxy/go-control-plane/envoy/service/load_stats/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/kgate/kgate/pki"
)

// lrsVictim is the revision an attacker would wake: at zero, nothing
// sends it traffic.
const lrsVictim = `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: lrsvictim
  namespace: default
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/initial-scale: "0"
        autoscaling.knative.dev/max-scale: "3"
    spec:
      containers:
        - image: ghcr.io/knative/helloworld-go:latest
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: config-autoscaler
  namespace: knative-serving
data:
  allow-zero-initial-scale: "true"
`

// TestLocalControlPlaneTrustsOnlyItsOwn: kgate local's xDS port refuses a
// client without a certificate of this run; an observer's certificate
// (from --observer-tls-dir) reads config, but its load reports are refused
// and counted, and leave the revision at zero.
func TestLocalControlPlaneTrustsOnlyItsOwn(t *testing.T) {
	observerDir := t.TempDir()
	k := startKgate(t, map[string]string{"svc.yaml": lrsVictim}, "--observer-tls-dir", observerDir)
	k.eventually("lrsvictim is Ready at zero", 30*time.Second, func() error {
		svc, err := k.get("ksvc", "lrsvictim")
		if err != nil {
			return err
		}
		if s := condition(svc, "Ready"); s != "True" {
			return fmt.Errorf("Ready is %q", s)
		}
		return nil
	})

	// The dev gateway and the activator follow the control plane over
	// mutual TLS: the admin API's /readyz says so.
	k.eventually("kgate local is ready", 20*time.Second, func() error {
		resp, err := http.Get("http://" + k.admin + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %d %s", resp.StatusCode, body)
		}
		return nil
	})

	t.Run("without a certificate", func(t *testing.T) {
		for name, creds := range map[string]credentials.TransportCredentials{
			"plaintext":           insecure.NewCredentials(),
			"TLS, no certificate": credentials.NewTLS(&tls.Config{InsecureSkipVerify: true}),
		} {
			conn, err := grpc.NewClient(k.xds, grpc.WithTransportCredentials(creds))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
			if err == nil {
				err = stream.Send(&discoveryv3.DeltaDiscoveryRequest{
					Node: &corev3.Node{Id: "kgate-local-gateway"}, TypeUrl: resource.ClusterType, ResourceNamesSubscribe: []string{"*"},
				})
			}
			if err == nil {
				_, err = stream.Recv()
			}
			if status.Code(err) != codes.Unavailable {
				t.Errorf("%s: got %v, want the connection refused", name, err)
			}
		}
	})

	observer, err := pki.NewDir(observerDir)
	if err != nil {
		t.Fatalf("--observer-tls-dir: %v", err)
	}
	conn, err := grpc.NewClient(k.xds, grpc.WithTransportCredentials(credentials.NewTLS(pki.ClientConfig(observer))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	node := &corev3.Node{Id: "operator-test", UserAgentName: "kgate-test"}

	t.Run("an observer reads config", func(t *testing.T) {
		stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resource.ClusterType, ResourceNamesSubscribe: []string{"*"}}); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("the observer got no clusters: %v", err)
		}
		var names []string
		for _, r := range resp.GetResources() {
			names = append(names, r.GetName())
		}
		if !strings.Contains(strings.Join(names, " "), "default/lrsvictim-00001") {
			t.Errorf("the observer got clusters %v, want lrsvictim's", names)
		}
	})

	t.Run("an observer's load reports do not count", func(t *testing.T) {
		before := refusals(t, k, "load_report_role")
		stream, err := loadstatsv3.NewLoadReportingServiceClient(conn).StreamLoadStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		report := &loadstatsv3.LoadStatsRequest{Node: node, ClusterStats: []*endpointv3.ClusterStats{{
			ClusterName: "default/lrsvictim-00001",
			UpstreamLocalityStats: []*endpointv3.UpstreamLocalityStats{{
				Locality: &corev3.Locality{}, TotalRequestsInProgress: 1000, TotalIssuedRequests: 1000,
			}},
		}}}
		// The server refuses the stream as it opens: Send may already see
		// it end (io.EOF); Recv gives the status.
		_ = stream.Send(report)
		_, err = stream.Recv()
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("an observer's load report: %v, want PermissionDenied", err)
		}
		if after := refusals(t, k, "load_report_role"); after != before+1 {
			t.Errorf("refusals of load reports: %v → %v, want one more", before, after)
		}
		// The autoscaler ticks every second: a counted report of 1,000 in
		// flight would have started replicas within this.
		time.Sleep(3 * time.Second)
		if rev := k.revisions()["lrsvictim-00001"]; rev.Actual != 0 || rev.Desired != 0 {
			t.Errorf("lrsvictim-00001 is at %d (desired %d), want 0", rev.Actual, rev.Desired)
		}
	})
}

// refusals reads kgate_control_plane_refusals_total{reason} from the admin
// API's /metrics with Prometheus' own parser.
func refusals(t *testing.T, k *kgate, reason string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + k.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	fam, ok := families["kgate_control_plane_refusals_total"]
	if !ok || fam.GetType() != dto.MetricType_COUNTER {
		t.Fatalf("/metrics has no counter kgate_control_plane_refusals_total (%v)", fam)
	}
	for _, m := range fam.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "reason" && l.GetValue() == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no kgate_control_plane_refusals_total{reason=%q}", reason)
	return 0
}
