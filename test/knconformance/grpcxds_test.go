package knconformance

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	grpcxds "google.golang.org/grpc/xds"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	netv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"
	"knative.dev/networking/test"
	"knative.dev/networking/test/conformance/ingress"
	ping "knative.dev/networking/test/test_images/grpc-ping/proto"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kgate/kgate/pki"
	"github.com/kgate/kgate/pki/secrets"
)

// testGRPCOverXDS is the suite's grpc and grpc/split cases with grpc-go's
// own xDS client in place of the gateway, as an independent peer of the
// KIngress mode: the suite's helpers create the grpc-ping backends (run
// by the fake kubelet) and a Ready Ingress over them; grpc-go, with a
// proxyless certificate from the controller's CA, resolves xds:///<host>
// through the API listener, route, clusters and endpoints kgate serves for
// the Ingress, and round-trips pings on the backends. With a 50/50 split
// both backends answer.
func testGRPCOverXDS(t *testing.T, e *env, xdsAddr string, split bool) {
	ctx := context.Background()
	clients := test.Setup(t)
	suffixes := []string{"- blue"}
	if split {
		suffixes = append(suffixes, "- green")
	}
	var splits []netv1alpha1.IngressBackendSplit
	for _, suffix := range suffixes {
		name, port, cancel := ingress.CreateGRPCService(ctx, t, clients, suffix)
		t.Cleanup(cancel)
		splits = append(splits, netv1alpha1.IngressBackendSplit{
			IngressBackend: netv1alpha1.IngressBackend{
				ServiceName: name, ServiceNamespace: test.ServingNamespace, ServicePort: intstr.FromInt(port),
			},
			Percent: 100 / len(suffixes),
		})
	}
	host := test.ObjectNameForTest(t) + "." + test.NetworkingFlags.ServiceDomain
	_, _, cancel := ingress.CreateIngressReady(ctx, t, clients, netv1alpha1.IngressSpec{
		Rules: []netv1alpha1.IngressRule{{
			Hosts:      []string{host},
			Visibility: netv1alpha1.IngressVisibilityExternalIP,
			HTTP:       &netv1alpha1.HTTPIngressRuleValue{Paths: []netv1alpha1.HTTPIngressPath{{Splits: splits}}},
		}},
	})
	t.Cleanup(cancel)

	builder, err := grpcxds.NewXDSResolverWithConfigForTesting(e.proxylessBootstrap(xdsAddr, "grpc-conformance-"+fmt.Sprint(split)))
	if err != nil {
		t.Fatalf("grpc-go's xds resolver: %v", err)
	}
	conn, err := grpc.NewClient("xds:///"+host, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(builder))
	if err != nil {
		t.Fatalf("a channel to xds:///%s: %v", host, err)
	}
	defer conn.Close()
	pc := ping.NewPingServiceClient(conn)
	ctx, cancelRPCs := context.WithTimeout(ctx, 60*time.Second)
	defer cancelRPCs()

	seen := map[string]bool{}
	for i := 0; i < 100 && len(seen) < len(suffixes); i++ {
		stream, err := pc.PingStream(ctx, grpc.WaitForReady(true))
		if err != nil {
			t.Fatalf("PingStream over xds:///%s: %v", host, err)
		}
		// A stream stays on the backend it started on: every round trip
		// carries the same suffix.
		var suffix string
		for j := range 10 {
			msg := fmt.Sprintf("ping %d-%d", i, j)
			if err := stream.Send(&ping.Request{Msg: msg}); err != nil {
				t.Fatalf("sending %q: %v", msg, err)
			}
			resp, err := stream.Recv()
			if err != nil {
				t.Fatalf("receiving the answer to %q: %v", msg, err)
			}
			got, ok := strings.CutPrefix(resp.GetMsg(), msg)
			if !ok {
				t.Fatalf("answer %q to %q", resp.GetMsg(), msg)
			}
			got = strings.TrimSpace(got)
			if suffix == "" {
				suffix = got
			} else if got != suffix {
				t.Fatalf("one stream answered by %q, then by %q", suffix, got)
			}
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		seen[suffix] = true
	}
	for _, want := range suffixes {
		if !seen[want] {
			t.Errorf("no stream answered by the backend %q over 100 streams; saw %v", want, seen)
		}
	}
}

// proxylessBootstrap is grpc-go's bootstrap for the controller's xDS
// server: mutual TLS with a proxyless certificate for node id issued by
// the controller's CA (its Secret), from files (gRFC A65's "tls" channel
// credentials), as a proxyless gRPC workload would mount it.
func (e *env) proxylessBootstrap(xdsAddr, id string) []byte {
	e.t.Helper()
	var s corev1.Secret
	e.eventually(30*time.Second, "Secret "+secrets.CASecret, func() error {
		return e.client.Get(context.Background(), client.ObjectKey{Namespace: systemNamespace, Name: secrets.CASecret}, &s)
	})
	ca, err := pki.LoadCA(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		e.t.Fatalf("the controller's CA: %v", err)
	}
	b, err := ca.Issue(pki.Request{Identity: pki.Identity{Role: pki.Proxyless, ID: id}, Now: time.Now()})
	if err != nil {
		e.t.Fatal(err)
	}
	dir := e.t.TempDir()
	if err := b.WriteFiles(dir); err != nil {
		e.t.Fatal(err)
	}
	out, err := json.Marshal(map[string]any{
		"xds_servers": []any{map[string]any{
			"server_uri": xdsAddr,
			"channel_creds": []any{map[string]any{"type": "tls", "config": map[string]string{
				"ca_certificate_file": filepath.Join(dir, pki.CAFile),
				"certificate_file":    filepath.Join(dir, pki.CertFile),
				"private_key_file":    filepath.Join(dir, pki.KeyFile),
			}}},
			"server_features": []string{"xds_v3"},
		}},
		"node": map[string]string{"id": id, "cluster": "kgate-conformance"},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}
