package knconformance

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	netv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kubesource "github.com/kgate/kgate/watcher/kube"
)

// testHostRewrite is kgate's own test of the suite's host-rewrite case,
// which cannot run here (its ExternalName Service names the private load
// balancer's cluster DNS name, and there is no cluster DNS): the same
// shape with a name that resolves here. A public Ingress rewrites the Host
// to a cluster-local one and sends the request to an ExternalName Service
// naming the gateway's internal listener ("localhost" and its port, where
// the suite has kgate-gateway-internal.kgate-system.svc.cluster.local); a
// ClusterLocal Ingress routes that host to the backend, which sees the
// rewritten Host.
func testHostRewrite(t *testing.T, e *env, ip string) {
	ctx := context.Background()
	lis, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Host)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Close() })
	backendPort := int32(lis.Addr().(*net.TCPAddr).Port)

	const privateHost, publicHost = "rewrite-target.serving-tests.svc.cluster.local", "rewrite.example.com"
	gatewayPort := int32(e.internalPort)
	objs := []client.Object{
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: "rewrite-target"},
			Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(backendPort)}}},
		},
		&discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: testNamespace, Name: "rewrite-target", Labels: map[string]string{discoveryv1.LabelServiceName: "rewrite-target"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: new("http"), Port: new(backendPort)}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: new(true)}}},
		},
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: "rewrite-gateway"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost",
				Ports: []corev1.ServicePort{{Name: "http", Port: gatewayPort}}},
		},
		rewriteIngress("rewrite-private", privateHost, netv1alpha1.IngressVisibilityClusterLocal, "", "rewrite-target", 80),
		rewriteIngress("rewrite-public", publicHost, netv1alpha1.IngressVisibilityExternalIP, privateHost, "rewrite-gateway", gatewayPort),
	}
	for _, o := range objs {
		if err := e.client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, o := range objs {
			_ = e.client.Delete(ctx, o)
		}
	})
	e.eventually(30*time.Second, "the rewritten request at the backend", func() error {
		req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(e.httpPort)+"/", nil)
		if err != nil {
			return err
		}
		req.Host = publicHost
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(body) != privateHost {
			return fmt.Errorf("%s %q, want 200 and the backend seeing Host %s", resp.Status, body, privateHost)
		}
		return nil
	})
}

// rewriteIngress is a KIngress of kgate's class with one rule: host, at
// visibility, to a Service's port, its Host rewritten when rewrite is set.
func rewriteIngress(name, host string, vis netv1alpha1.IngressVisibility, rewrite, svc string, port int32) *netv1alpha1.Ingress {
	return &netv1alpha1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: name,
			Annotations: map[string]string{"networking.knative.dev/ingress.class": kubesource.ClassName}},
		Spec: netv1alpha1.IngressSpec{Rules: []netv1alpha1.IngressRule{{
			Hosts: []string{host}, Visibility: vis,
			HTTP: &netv1alpha1.HTTPIngressRuleValue{Paths: []netv1alpha1.HTTPIngressPath{{
				RewriteHost: rewrite,
				Splits: []netv1alpha1.IngressBackendSplit{{Percent: 100, IngressBackend: netv1alpha1.IngressBackend{
					ServiceNamespace: testNamespace, ServiceName: svc, ServicePort: intstr.FromInt32(port)}}},
			}}},
		}}},
	}
}
