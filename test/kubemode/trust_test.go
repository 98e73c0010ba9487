package kubemode

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	loadstatsv3 "github.com/envoyproxy/go-control-plane/envoy/service/load_stats/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/pki"
	"github.com/kgate/kgate/pki/secrets"
	kubesource "github.com/kgate/kgate/watcher/kube"
	"github.com/kgate/kgate/xds/auth"
)

// TestControlPlaneTrust runs the controller on the real API server with
// short-lived certificates and a short StaleAfter, and checks the control
// plane's trust as an attacker and an operator would see it.
func TestControlPlaneTrust(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := e.client.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: "config-autoscaler"},
		Data:       map[string]string{"allow-zero-initial-scale": "true"},
	}); err != nil {
		t.Fatal(err)
	}
	const lifetime = 12 * time.Second // renewed after 8 s
	c, _ := e.startControllerWith(func(o *kubesource.Options) {
		o.CertLifetime, o.CertCheckInterval, o.StaleAfter = lifetime, 300*time.Millisecond, 2*time.Second
	})
	addr := c.XDSAddr().String()
	e.kubelet(ctx)

	t.Run("the Secrets", func(t *testing.T) {
		for _, name := range []string{secrets.CASecret, secrets.GatewaySecret, secrets.ActivatorSecret} {
			var s corev1.Secret
			if err := e.client.Get(ctx, client.ObjectKey{Namespace: systemNamespace, Name: name}, &s); err != nil {
				t.Fatalf("Secret %s: %v", name, err)
			}
			if s.Type != corev1.SecretTypeTLS || len(s.Data[corev1.TLSPrivateKeyKey]) == 0 || len(s.Data[pki.CAFile]) == 0 {
				t.Errorf("Secret %s: type %s with keys %v, want kubernetes.io/tls with ca.crt", name, s.Type, keys(s.Data))
			}
		}
	})

	t.Run("without a certificate", func(t *testing.T) {
		conn := testrun.Dial(t, addr)
		stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
		if err == nil {
			err = stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: &corev3.Node{Id: "kgate-gateway-x"}, TypeUrl: resource.RouteType})
		}
		if err == nil {
			_, err = stream.Recv()
		}
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("got %v, want the connection refused", err)
		}
	})

	// A gateway connected now keeps its stream through every renewal below.
	gw := e.connectGateway(addr, "steady")
	createService(t, e, "first")
	e.eventually(30*time.Second, "the gateway holds first's host", func() error { return holds(gw, "first") })

	t.Run("an activator gets clusters and endpoints only", func(t *testing.T) {
		conn := e.dialAs(addr, secrets.ActivatorSecret)
		node := &corev3.Node{Id: "kgate-activator-1", UserAgentName: "kgate-activator"}
		if _, err := firstResponse(ctx, conn, node, resource.ClusterType); err != nil {
			t.Errorf("clusters: %v", err)
		}
		if _, err := firstResponse(ctx, conn, node, resource.RouteType); status.Code(err) != codes.PermissionDenied {
			t.Errorf("route configurations: %v, want PermissionDenied", err)
		}
		if _, err := firstResponse(ctx, conn, &corev3.Node{Id: "kgate-gateway-1", UserAgentName: "envoy"}, resource.ClusterType); status.Code(err) != codes.PermissionDenied {
			t.Errorf("as a gateway's node id: %v, want PermissionDenied", err)
		}
	})

	t.Run("an observer's load reports do not count", func(t *testing.T) {
		createService(t, e, "victim")
		e.eventually(30*time.Second, "victim is Ready", func() error { return serviceReady(ctx, e, "victim") })
		conn := e.dialObserver(t, addr)
		stream, err := loadstatsv3.NewLoadReportingServiceClient(conn).StreamLoadStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_ = stream.Send(&loadstatsv3.LoadStatsRequest{
			Node: &corev3.Node{Id: "operator-1"},
			ClusterStats: []*endpointv3.ClusterStats{{ClusterName: "default/victim-00001", UpstreamLocalityStats: []*endpointv3.UpstreamLocalityStats{{
				Locality: &corev3.Locality{}, TotalRequestsInProgress: 1000, TotalIssuedRequests: 1000,
			}}}},
		})
		if _, err := stream.Recv(); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("an observer's load report: %v, want PermissionDenied", err)
		}
		if n := c.Server().Refusals()[auth.ReasonLoadReport]; n != 1 {
			t.Errorf("load-report refusals = %d, want 1", n)
		}
		time.Sleep(3 * time.Second) // a counted report would have scaled it within a tick
		var d appsv1.Deployment
		if err := e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "victim-00001-deployment"}, &d); err != nil {
			t.Fatal(err)
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 0 {
			t.Errorf("victim's Deployment has %v replicas, want 0", d.Spec.Replicas)
		}
	})

	t.Run("a gateway that never ACKs does not hold Routes", func(t *testing.T) {
		conn := e.dialAs(addr, secrets.GatewaySecret)
		stuck, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i, typ := range []string{resource.RouteType, resource.ScopedRouteType} {
			req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: typ, ResourceNamesSubscribe: []string{"*"}}
			if i == 0 {
				req.Node = &corev3.Node{Id: "kgate-gateway-stuck", UserAgentName: "envoy"}
			}
			if err := stuck.Send(req); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := stuck.Recv(); err != nil { // and never answered
			t.Fatal(err)
		}
		createService(t, e, "late")
		var rt servingv1.Route
		e.eventually(30*time.Second, "late's Route Ready", func() error {
			if err := e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "late"}, &rt); err != nil {
				return err
			}
			return ready(rt.Generation, rt.Status.ObservedGeneration, rt.Status.Conditions)
		})
		for _, cond := range rt.Status.Conditions {
			if cond.Type == servingv1.ConditionIngressReady && !strings.Contains(cond.Message, "kgate-gateway-stuck") {
				t.Errorf("IngressReady %+v, want the stuck gateway named", cond)
			}
		}
		e.eventually(10*time.Second, "the steady gateway holds late's host", func() error { return holds(gw, "late") })
	})

	t.Run("renewal keeps the open gateway stream", func(t *testing.T) {
		first := secretCert(t, e, secrets.GatewaySecret)
		e.eventually(3*lifetime, "the gateways' certificate renewed", func() error {
			if secretCert(t, e, secrets.GatewaySecret) == first {
				return fmt.Errorf("not yet")
			}
			return nil
		})
		createService(t, e, "after-renewal")
		e.eventually(30*time.Second, "the steady gateway holds the new host", func() error { return holds(gw, "after-renewal") })
		// A gateway starting now, with the renewed Secret, is served too.
		fresh := e.connectGateway(addr, "fresh")
		e.eventually(30*time.Second, "a new gateway holds every host", func() error { return holds(fresh, "after-renewal") })
	})
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func createService(t *testing.T, e *env, name string) {
	t.Helper()
	s := &servingv1.Service{}
	s.Namespace, s.Name = "default", name
	s.Spec.Template.Annotations = map[string]string{"autoscaling.knative.dev/initial-scale": "0"}
	s.Spec.Template.Spec.Containers = []corev1.Container{{Image: "ghcr.io/knative/helloworld-go"}}
	if err := e.client.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

func serviceReady(ctx context.Context, e *env, name string) error {
	var s servingv1.Service
	if err := e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, &s); err != nil {
		return err
	}
	return ready(s.Generation, s.Status.ObservedGeneration, s.Status.Conditions)
}

func holds(g *gateway, name string) error {
	if !slices.Contains(g.hosts(), name+".default.example.com") {
		return fmt.Errorf("no host %s.default.example.com", name)
	}
	return nil
}

// firstResponse subscribes to typeURL by wildcard and returns the first
// response, or how the stream ended.
func firstResponse(ctx context.Context, conn *grpc.ClientConn, node *corev3.Node, typeURL string) (*discoveryv3.DeltaDiscoveryResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: typeURL, ResourceNamesSubscribe: []string{"*"}}); err != nil {
		return nil, err
	}
	return stream.Recv()
}

// dialObserver connects with an observer certificate issued from the CA
// Secret, as an operator with access to kgate-system would make one
// (kgate certs issue).
func (e *env) dialObserver(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	var s corev1.Secret
	if err := e.client.Get(context.Background(), client.ObjectKey{Namespace: systemNamespace, Name: secrets.CASecret}, &s); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		t.Fatal(err)
	}
	b, err := ca.Issue(pki.Request{Identity: pki.Identity{Role: pki.Observer, ID: "operator-*"}, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(pki.ClientConfig(pki.Static{B: b}))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// secretCert is the certificate a Secret holds now.
func secretCert(t *testing.T, e *env, name string) string {
	t.Helper()
	var s corev1.Secret
	if err := e.client.Get(context.Background(), client.ObjectKey{Namespace: systemNamespace, Name: name}, &s); err != nil {
		t.Fatal(err)
	}
	return string(s.Data[corev1.TLSCertKey])
}
