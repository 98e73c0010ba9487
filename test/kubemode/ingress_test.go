package kubemode

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	netv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"
	"knative.dev/pkg/apis"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kubesource "github.com/kgate/kgate/watcher/kube"
)

// The KIngress mode beside Knative Serving: Knative's own Ingress CRD (from
// the pinned knative.dev/networking module), KIngresses shaped as Knative's
// route controller writes them. One of kgate's class reaches a connected
// gateway (hosts, and the endpoints of the revision's Service as its
// EndpointSlices change) and becomes Ready only once the gateway has
// applied it, with the gateways' Services as load balancers; one without
// an annotation is kgate's once config-network's ingress-class says so; one
// of Kourier's class is never touched.
func TestIngressMode(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	kn := knativeClient(t, e)
	installKnativeIngressCRD(t, e)
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "knative-serving"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "knative-serving", Name: "config-network"}, Data: map[string]string{}},
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hello-00001", Labels: map[string]string{"serving.knative.dev/revision": "hello-00001"}},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8012)},
				{Name: "https", Port: 443, TargetPort: intstr.FromInt32(8112)},
			}},
		},
		endpointSlice("hello-00001", "10.0.0.5"),
	} {
		if err := e.client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := e.startControllerWith(func(o *kubesource.Options) { o.Ingress = &kubesource.IngressOptions{} })
	gw := e.connectGateway(c.XDSAddr().String(), "ingress")

	hello := knativeIngress("hello", kubesource.ClassName)
	if err := kn.Create(ctx, hello); err != nil {
		t.Fatal(err)
	}
	const host = "hello.default.example.com"
	e.eventually(30*time.Second, "the KIngress Ready, served by the gateway", func() error {
		if err := kn.Get(ctx, client.ObjectKeyFromObject(hello), hello); err != nil {
			return err
		}
		if !hello.IsReady() {
			return fmt.Errorf("not Ready: %+v", hello.Status)
		}
		// Ready only once applied: the gateway ACKs after it holds it.
		if !slices.Contains(gw.hosts(), host) {
			t.Errorf("Ready before the gateway holds %s (it holds %v)", host, gw.hosts())
		}
		return nil
	})
	if lb := hello.Status.PublicLoadBalancer; lb == nil || len(lb.Ingress) != 1 || lb.Ingress[0].DomainInternal != "kgate-gateway."+systemNamespace+".svc.cluster.local" {
		t.Errorf("public load balancer %+v, want kgate-gateway's cluster-local name", lb)
	}
	if lb := hello.Status.PrivateLoadBalancer; lb == nil || len(lb.Ingress) != 1 || lb.Ingress[0].DomainInternal != "kgate-gateway-internal."+systemNamespace+".svc.cluster.local" {
		t.Errorf("private load balancer %+v, want kgate-gateway-internal's cluster-local name", lb)
	}
	for _, typ := range []string{"NetworkConfigured", "LoadBalancerReady", "Ready"} {
		if c := hello.Status.GetCondition(apis.ConditionType(typ)); c == nil || c.Status != corev1.ConditionTrue {
			t.Errorf("%s %+v, want True", typ, c)
		}
	}
	cluster := "default/hello-00001:80"
	e.eventually(10*time.Second, "the revision's endpoints at the gateway", func() error {
		if got := gw.endpoints(cluster); !slices.Equal(got, []string{"10.0.0.5:8012"}) {
			return fmt.Errorf("endpoints of %s: %v", cluster, got)
		}
		return nil
	})
	// Knative's activator takes the revision's traffic (scaled to zero):
	// its EndpointSlice changes, and the gateway follows.
	var slice discoveryv1.EndpointSlice
	if err := e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "hello-00001-slice"}, &slice); err != nil {
		t.Fatal(err)
	}
	slice.Endpoints[0].Addresses = []string{"10.0.9.9"}
	if err := e.client.Update(ctx, &slice); err != nil {
		t.Fatal(err)
	}
	e.eventually(10*time.Second, "the activator's endpoint at the gateway", func() error {
		if got := gw.endpoints(cluster); !slices.Equal(got, []string{"10.0.9.9:8012"}) {
			return fmt.Errorf("endpoints of %s: %v", cluster, got)
		}
		return nil
	})

	// Kourier's Ingress, and one without a class while config-network
	// names none (Knative's default is Istio's): neither is kgate's.
	kourier := knativeIngress("kourier", "kourier.ingress.networking.knative.dev")
	plain := knativeIngress("plain", "")
	for _, o := range []*netv1alpha1.Ingress{kourier, plain} {
		if err := kn.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	kourierVersion := kourier.ResourceVersion
	time.Sleep(2 * time.Second)
	if err := kn.Get(ctx, client.ObjectKeyFromObject(plain), plain); err != nil {
		t.Fatal(err)
	}
	if len(plain.Status.Conditions) != 0 {
		t.Errorf("an Ingress of the default class (Istio's) got a status: %+v", plain.Status)
	}
	// config-network makes kgate the default class.
	var cm corev1.ConfigMap
	if err := e.client.Get(ctx, client.ObjectKey{Namespace: "knative-serving", Name: "config-network"}, &cm); err != nil {
		t.Fatal(err)
	}
	cm.Data = map[string]string{"ingress-class": kubesource.ClassName}
	if err := e.client.Update(ctx, &cm); err != nil {
		t.Fatal(err)
	}
	e.eventually(30*time.Second, "the unannotated KIngress Ready once kgate is the default class", func() error {
		if err := kn.Get(ctx, client.ObjectKeyFromObject(plain), plain); err != nil {
			return err
		}
		if !plain.IsReady() {
			return fmt.Errorf("not Ready: %+v", plain.Status)
		}
		return nil
	})
	if err := kn.Get(ctx, client.ObjectKeyFromObject(kourier), kourier); err != nil {
		t.Fatal(err)
	}
	if kourier.ResourceVersion != kourierVersion || len(kourier.Status.Conditions) != 0 {
		t.Errorf("Kourier's Ingress was touched: resourceVersion %s (was %s), status %+v", kourier.ResourceVersion, kourierVersion, kourier.Status)
	}
}

// knativeClient reads and writes Knative's networking types (their scheme
// apart from kgate's, which has its own ClusterDomainClaim).
func knativeClient(t *testing.T, e *env) client.Client {
	t.Helper()
	scheme := k8sruntime.NewScheme()
	for _, add := range []func(*k8sruntime.Scheme) error{clientgoscheme.AddToScheme, netv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := client.New(e.cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// installKnativeIngressCRD installs the KIngress CRD of the pinned
// knative.dev/networking module: exactly what Knative Serving installs.
func installKnativeIngressCRD(t *testing.T, e *env) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "knative.dev/networking").Output()
	if err != nil {
		t.Fatalf("locating knative.dev/networking: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "config", "ingress.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(b, &crd); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.client.Create(ctx, &crd); err != nil {
		t.Fatal(err)
	}
	e.eventually(30*time.Second, "Knative's Ingress CRD served", func() error {
		var list netv1alpha1.IngressList
		return knativeClient(t, e).List(ctx, &list)
	})
}

// knativeIngress is the KIngress Knative's route controller writes for a
// Service hello with one revision, of the given class ("" for none).
func knativeIngress(name, class string) *netv1alpha1.Ingress {
	split := netv1alpha1.IngressBackendSplit{
		IngressBackend: netv1alpha1.IngressBackend{ServiceNamespace: "default", ServiceName: "hello-00001", ServicePort: intstr.FromInt32(80)},
		Percent:        100,
		AppendHeaders:  map[string]string{"Knative-Serving-Revision": "hello-00001", "Knative-Serving-Namespace": "default"},
	}
	paths := []netv1alpha1.HTTPIngressPath{{Splits: []netv1alpha1.IngressBackendSplit{split}}}
	ing := &netv1alpha1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"serving.knative.dev/route": name, "serving.knative.dev/routeNamespace": "default"}},
		Spec: netv1alpha1.IngressSpec{
			HTTPOption: netv1alpha1.HTTPOptionEnabled,
			Rules: []netv1alpha1.IngressRule{
				{Hosts: []string{name + ".default", name + ".default.svc", name + ".default.svc.cluster.local"}, Visibility: netv1alpha1.IngressVisibilityClusterLocal, HTTP: &netv1alpha1.HTTPIngressRuleValue{Paths: paths}},
				{Hosts: []string{name + ".default.example.com"}, Visibility: netv1alpha1.IngressVisibilityExternalIP, HTTP: &netv1alpha1.HTTPIngressRuleValue{Paths: paths}},
			},
		},
	}
	if class != "" {
		ing.Annotations = map[string]string{"networking.knative.dev/ingress.class": class}
	}
	return ing
}

// endpointSlice is a revision Service's EndpointSlice, one ready endpoint
// on the queue-proxy's port.
func endpointSlice(svc, ip string) *discoveryv1.EndpointSlice {
	ready := true
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: svc + "-slice", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: new("http"), Port: new(int32(8012))}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
	}
}
