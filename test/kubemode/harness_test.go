// Package kubemode tests kgate's Kubernetes mode end to end against a real
// kube-apiserver and etcd (test/kube): the CRDs of deploy/install, the
// controller in process, a gateway as an xDS client, and the test playing
// the kubelet (there is none): it marks Deployments ready and writes the
// EndpointSlices the EndpointSlice controller would.
package kubemode

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"

	networkingv1alpha1 "github.com/kgate/kgate/api/networking/v1alpha1"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/api/serving/v1beta1"
	"github.com/kgate/kgate/dataplane/xdsclient"
	deploykube "github.com/kgate/kgate/deploy/kube"
	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/pki"
	"github.com/kgate/kgate/pki/secrets"
	"github.com/kgate/kgate/test/kube"
	kubesource "github.com/kgate/kgate/watcher/kube"
)

const systemNamespace = "kgate-system"

// env is one API server with the CRDs installed, and a client.
type env struct {
	t       testing.TB
	cluster *kube.Cluster
	cfg     *rest.Config
	client  client.Client
}

func newEnv(t testing.TB) *env {
	t.Helper()
	kube.Require(t)
	c := kube.Start(t)
	cfg := &rest.Config{Host: c.URL, BearerToken: c.Token, TLSClientConfig: rest.TLSClientConfig{CAFile: c.CertFile}, QPS: 500, Burst: 1000}
	scheme := k8sruntime.NewScheme()
	for _, add := range []func(*k8sruntime.Scheme) error{clientgoscheme.AddToScheme, servingv1.AddToScheme, v1beta1.AddToScheme, networkingv1alpha1.AddToScheme, apiextensionsv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, cluster: c, cfg: cfg, client: cl}
	e.installCRDs()
	for _, ns := range []string{systemNamespace, "default"} {
		if err := cl.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	return e
}

// installCRDs creates the CRDs of deploy/install and waits until they serve.
func (e *env) installCRDs() {
	files, err := filepath.Glob(filepath.Join(kube.RepoRoot(e.t), "deploy", "install", "*knative.dev_*.yaml"))
	if err != nil || len(files) != 6 {
		e.t.Fatalf("the CRDs in deploy/install: %v %v", files, err)
	}
	ctx := context.Background()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			e.t.Fatal(err)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(b, &crd); err != nil {
			e.t.Fatalf("%s: %v", f, err)
		}
		if err := e.client.Create(ctx, &crd); err != nil {
			e.t.Fatalf("creating %s: %v", crd.Name, err)
		}
	}
	e.eventually(30*time.Second, "the CRDs serve", func() error {
		var l servingv1.ServiceList
		return e.client.List(ctx, &l)
	})
	e.eventually(30*time.Second, "the CRDs serve", func() error {
		var l servingv1.RevisionList
		return e.client.List(ctx, &l)
	})
	e.eventually(30*time.Second, "the CRDs serve", func() error {
		var l v1beta1.DomainMappingList
		return e.client.List(ctx, &l)
	})
}

// eventually retries check until it passes or timeout.
func (e *env) eventually(timeout time.Duration, what string, check func() error) {
	e.t.Helper()
	testrun.Poll{Within: timeout, Every: 50 * time.Millisecond}.Eventually(e.t, what, check)
}

// apply creates the objects of a YAML file (several documents).
func (e *env) apply(path string) []client.Object {
	e.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []client.Object
	for _, doc := range strings.Split(string(b), "\n---") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil || meta.Kind == "" {
			continue
		}
		var obj client.Object
		switch meta.Kind {
		case servingv1.KindService:
			obj = &servingv1.Service{}
		case servingv1.KindConfiguration:
			obj = &servingv1.Configuration{}
		case servingv1.KindRoute:
			obj = &servingv1.Route{}
		case "ConfigMap":
			obj = &corev1.ConfigMap{}
		default:
			e.t.Fatalf("%s: unexpected kind %s", path, meta.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			e.t.Fatalf("%s: %v", path, err)
		}
		if obj.GetNamespace() == "" {
			obj.SetNamespace("default")
		}
		if err := e.client.Create(context.Background(), obj); err != nil {
			if !apierrors.IsAlreadyExists(err) {
				e.t.Fatalf("%s: creating %s %s: %v", path, meta.Kind, obj.GetName(), err)
			}
			// Applied again with changes (seed 004's v2 and v3): update.
			cur := obj.DeepCopyObject().(client.Object)
			if err := e.client.Get(context.Background(), client.ObjectKeyFromObject(obj), cur); err != nil {
				e.t.Fatal(err)
			}
			obj.SetResourceVersion(cur.GetResourceVersion())
			if err := e.client.Update(context.Background(), obj); err != nil {
				e.t.Fatalf("%s: updating %s %s: %v", path, meta.Kind, obj.GetName(), err)
			}
		}
		out = append(out, obj)
	}
	return out
}

// startController runs a controller until the test ends or stop is called.
func (e *env) startController() (c *kubesource.Controller, stop func()) {
	e.t.Helper()
	return e.startControllerWith(func(*kubesource.Options) {})
}

// startControllerWith runs a controller with options edited by edit.
func (e *env) startControllerWith(edit func(*kubesource.Options)) (c *kubesource.Controller, stop func()) {
	e.t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{e.t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts := kubesource.Options{
		Config: e.cfg, SystemNamespace: systemNamespace, XDSAddress: "127.0.0.1:0",
		LeaderElection: true, Logger: log,
	}
	edit(&opts)
	c, err := kubesource.New(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	exited := make(chan error, 1)
	stop = testrun.Go(e.t, context.Background(), "controller", 30*time.Second, func(ctx context.Context) error {
		err := c.Run(ctx)
		exited <- err
		return err
	})
	select {
	case <-c.Served():
	case err := <-exited:
		e.t.Fatalf("controller stopped: %v", err)
	case <-time.After(60 * time.Second):
		e.t.Fatal("controller did not serve xDS within 60s")
	}
	return c, stop
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// kubelet plays the kubelet and the EndpointSlice controller: every
// revision Deployment gets its replicas ready, and its private Service an
// EndpointSlice listing them at 10.0.<i>.<n>:8080 (never dialled).
func (e *env) kubelet(ctx context.Context) {
	go func() {
		for ctx.Err() == nil {
			e.kubeletOnce(ctx)
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
}

func (e *env) kubeletOnce(ctx context.Context) {
	var deps appsv1.DeploymentList
	if err := e.client.List(ctx, &deps, client.HasLabels{deploykube.LabelRevision}); err != nil {
		return
	}
	for i := range deps.Items {
		d := &deps.Items[i]
		n := int32(1)
		if d.Spec.Replicas != nil {
			n = *d.Spec.Replicas
		}
		if d.Status.ReadyReplicas != n || d.Status.Replicas != n {
			d.Status.Replicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas, d.Status.UpdatedReplicas = n, n, n, n
			_ = e.client.Status().Update(ctx, d)
		}
		rev := d.Labels[deploykube.LabelRevision]
		slice := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: d.Namespace, Name: deploykube.PrivateServiceName(rev) + "-kubelet",
				Labels: map[string]string{
					discoveryv1.LabelServiceName: deploykube.PrivateServiceName(rev),
					deploykube.LabelRevision:     rev, deploykube.LabelServiceType: deploykube.ServiceTypePrivate,
				},
			},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: new("http"), Port: new(int32(8080))}},
		}
		for p := range n {
			slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
				Addresses: []string{fmt.Sprintf("10.0.%d.%d", i%250, p+1)}, Conditions: discoveryv1.EndpointConditions{Ready: new(true)},
			})
		}
		var cur discoveryv1.EndpointSlice
		err := e.client.Get(ctx, client.ObjectKeyFromObject(slice), &cur)
		switch {
		case apierrors.IsNotFound(err):
			_ = e.client.Create(ctx, slice)
		case err == nil && len(cur.Endpoints) != len(slice.Endpoints):
			slice.ResourceVersion = cur.ResourceVersion
			_ = e.client.Update(ctx, slice)
		}
	}
}

// gateway is an Envoy gateway as the control plane sees one: a delta ADS
// client holding every route configuration and endpoint assignment.
type gateway struct {
	mu     sync.Mutex
	routes map[string]*routev3.RouteConfiguration
	cla    map[string]*endpointv3.ClusterLoadAssignment
}

// dialAs connects to the controller's xDS server with the credentials in
// a Secret the controller keeps, as a pod mounting it would; opts add to
// the connection's options.
func (e *env) dialAs(addr, secret string, opts ...grpc.DialOption) *grpc.ClientConn {
	e.t.Helper()
	var s corev1.Secret
	if err := e.client.Get(context.Background(), client.ObjectKey{Namespace: systemNamespace, Name: secret}, &s); err != nil {
		e.t.Fatalf("reading the credentials in Secret %s: %v", secret, err)
	}
	b, err := pki.NewBundle(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey], s.Data[pki.CAFile])
	if err != nil {
		e.t.Fatalf("Secret %s: %v", secret, err)
	}
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(pki.ClientConfig(pki.Static{B: b})))}, opts...)
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return conn
}

// connectGateway connects a gateway with node id kgate-gateway-<id>, the
// gateways' certificate's.
func (e *env) connectGateway(addr string, id string) *gateway {
	e.t.Helper()
	conn := e.dialAs(addr, secrets.GatewaySecret)
	g := &gateway{routes: map[string]*routev3.RouteConfiguration{}, cla: map[string]*endpointv3.ClusterLoadAssignment{}}
	cl, err := xdsclient.New(conn, xdsclient.Options{Node: xdsclient.Node{ID: "kgate-gateway-" + id, Cluster: "kgate-gateway"}})
	if err != nil {
		e.t.Fatal(err)
	}
	cl.Watch(resource.RouteType, func(u xdsclient.Update) error {
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, r := range u.Resources {
			g.routes[r.Name] = r.Message.(*routev3.RouteConfiguration)
		}
		for _, n := range u.Removed {
			delete(g.routes, n)
		}
		return nil
	}, xdsclient.Wildcard)
	cl.Watch(resource.EndpointType, func(u xdsclient.Update) error {
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, r := range u.Resources {
			g.cla[r.Name] = r.Message.(*endpointv3.ClusterLoadAssignment)
		}
		for _, n := range u.Removed {
			delete(g.cla, n)
		}
		return nil
	}, xdsclient.Wildcard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = cl.Run(ctx); close(done) }()
	e.t.Cleanup(func() { cancel(); <-done }) // before Dial's: conn closes after Run returns
	return g
}

// hosts are the domains of every virtual host the gateway holds.
func (g *gateway) hosts() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, rc := range g.routes {
		for _, vh := range rc.VirtualHosts {
			out = append(out, vh.Domains...)
		}
	}
	slices.Sort(out)
	return out
}

// endpoints are the addresses of a ClusterLoadAssignment.
func (g *gateway) endpoints(name string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, l := range g.cla[name].GetEndpoints() {
		for _, ep := range l.LbEndpoints {
			a := ep.GetEndpoint().GetAddress().GetSocketAddress()
			out = append(out, fmt.Sprintf("%s:%d", a.GetAddress(), a.GetPortValue()))
		}
	}
	slices.Sort(out)
	return out
}
