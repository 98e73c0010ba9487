package knconformance

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	netv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kgate/kgate/dataplane/devgateway"
	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/pki"
	"github.com/kgate/kgate/pki/secrets"
	"github.com/kgate/kgate/test/kube"
	"github.com/kgate/kgate/translator"
	kubesource "github.com/kgate/kgate/watcher/kube"
)

const (
	systemNamespace  = "kgate-system"
	knativeNamespace = "knative-serving"
	testNamespace    = "serving-tests" // the suite's (test.ServingNamespace)
	networkingModule = "knative.dev/networking"
	clusterDomain    = "cluster.local"
)

// env is the API server, its clients, and where the dev gateway listens.
type env struct {
	t       *testing.T
	cluster *kube.Cluster
	cfg     *rest.Config
	client  client.Client
	// kubeconfig is a kubeconfig file for the API server, for the suite.
	kubeconfig string
	// ports of the dev gateway's listeners: external (HTTP, HTTPS) are
	// the NodePorts of kgate-gateway's ports 80 and 443.
	httpPort, httpsPort, internalPort, internalTLSPort int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	kube.Require(t)
	c := kube.Start(t)
	cfg := &rest.Config{Host: c.URL, BearerToken: c.Token, TLSClientConfig: rest.TLSClientConfig{CAFile: c.CertFile}, QPS: 500, Burst: 1000}
	scheme := k8sruntime.NewScheme()
	for _, add := range []func(*k8sruntime.Scheme) error{clientgoscheme.AddToScheme, netv1alpha1.AddToScheme, apiextensionsv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, cluster: c, cfg: cfg, client: cl}
	e.kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: test
  context: {cluster: test, user: admin}
current-context: test
`, c.URL, c.CertFile, c.Token)
	if err := os.WriteFile(e.kubeconfig, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	nodePorts := freeNodePorts(t, 2)
	e.httpPort, e.httpsPort = nodePorts[0], nodePorts[1]
	others := freePorts(t, 2)
	e.internalPort, e.internalTLSPort = others[0], others[1]
	return e
}

func (e *env) eventually(timeout time.Duration, what string, check func() error) {
	e.t.Helper()
	testrun.Poll{Within: timeout, Every: 50 * time.Millisecond}.Eventually(e.t, what, check)
}

// install creates Knative's Ingress CRD (the pinned module's
// config/ingress.yaml), the namespaces, config-network naming kgate's
// class, and the gateways' Services.
func (e *env) install() {
	e.t.Helper()
	ctx := context.Background()
	b, err := os.ReadFile(filepath.Join(moduleDir(e.t), "config", "ingress.yaml"))
	if err != nil {
		e.t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(b, &crd); err != nil {
		e.t.Fatal(err)
	}
	if err := e.client.Create(ctx, &crd); err != nil {
		e.t.Fatal(err)
	}
	e.eventually(30*time.Second, "Knative's Ingress CRD served", func() error {
		var list netv1alpha1.IngressList
		return e.client.List(ctx, &list)
	})
	port := func(name string, p int32, nodePort int) corev1.ServicePort {
		return corev1.ServicePort{Name: name, Port: p, TargetPort: intstr.FromInt32(p), NodePort: int32(nodePort)}
	}
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNamespace}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: knativeNamespace}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNamespace}},
		// No ingress-class: Knative's route controller annotates every
		// Ingress it writes (the suite does with --ingressClass), and the
		// ingressclass cases expect one without an annotation to be left to
		// the default class (Istio's). test/kube and test/kubemode check
		// that kgate takes unannotated Ingresses once ingress-class names it.
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: knativeNamespace, Name: "config-network"}},
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: "kgate-gateway"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"app": "kgate-gateway"},
				Ports: []corev1.ServicePort{port("http", 80, e.httpPort), port("https", 443, e.httpsPort)}},
		},
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: "kgate-gateway-internal"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "kgate-gateway"},
				Ports: []corev1.ServicePort{port("http", 80, 0), port("https", 443, 0)}},
		},
	} {
		if err := e.client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			e.t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// startController runs the KIngress mode in process until the test ends.
func (e *env) startController() *kubesource.Controller {
	e.t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{e.t}, &slog.HandlerOptions{Level: logLevel()}))
	c, err := kubesource.New(kubesource.Options{
		Config: e.cfg, SystemNamespace: systemNamespace, XDSAddress: "127.0.0.1:0",
		LeaderElection: true, Logger: log,
		Ingress: &kubesource.IngressOptions{KnativeNamespace: knativeNamespace, ClusterDomain: clusterDomain},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	exited := make(chan error, 1)
	testrun.Go(e.t, context.Background(), "controller", 30*time.Second, func(ctx context.Context) error {
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
	return c
}

// startGateway connects the dev gateway to the controller with the
// gateways' certificate (the Secret secrets.GatewaySecret names),
// its listeners bound on loopback at the env's ports.
func (e *env) startGateway(xdsAddr string) *devgateway.Gateway {
	e.t.Helper()
	conn := e.dialAs(xdsAddr, secrets.GatewaySecret)
	ports := map[string]int{
		translator.ExternalListener:    e.httpPort,
		translator.ExternalTLSListener: e.httpsPort,
		translator.InternalListener:    e.internalPort,
		translator.InternalTLSListener: e.internalTLSPort,
	}
	log := slog.New(slog.NewTextHandler(testWriter{e.t}, &slog.HandlerOptions{Level: logLevel()}))
	gw, err := devgateway.New(conn, devgateway.Options{
		Node:   xdsclient.Node{ID: "kgate-gateway-conformance", Cluster: "kgate-gateway"},
		Logger: log,
		ListenAddress: func(name, configured string) string {
			if p, ok := ports[name]; ok {
				return "127.0.0.1:" + strconv.Itoa(p)
			}
			return "127.0.0.1:0"
		},
		DrainTimeout: time.Second,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	testrun.Go(e.t, context.Background(), "dev gateway", 30*time.Second, gw.Run)
	e.eventually(30*time.Second, "the dev gateway's listeners bound", func() error {
		for name, p := range ports {
			if got, want := gw.Addr(name), "127.0.0.1:"+strconv.Itoa(p); got != want {
				return fmt.Errorf("listener %s at %q, want %s", name, got, want)
			}
		}
		return nil
	})
	return gw
}

// dialAs connects to the controller's xDS server with the credentials in
// a Secret the controller keeps, as a pod mounting it would.
func (e *env) dialAs(addr, secret string) *grpc.ClientConn {
	e.t.Helper()
	var s corev1.Secret
	e.eventually(30*time.Second, "Secret "+secret, func() error {
		return e.client.Get(context.Background(), client.ObjectKey{Namespace: systemNamespace, Name: secret}, &s)
	})
	b, err := pki.NewBundle(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey], s.Data[pki.CAFile])
	if err != nil {
		e.t.Fatalf("Secret %s: %v", secret, err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(pki.ClientConfig(pki.Static{B: b}))))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return conn
}

// logLevel is the controller's and the gateway's: warnings, or
// everything with KGATE_CONFORMANCE_DEBUG=1.
func logLevel() slog.Level {
	if os.Getenv("KGATE_CONFORMANCE_DEBUG") == "1" {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// moduleDir is the pinned knative.dev/networking module's folder.
func moduleDir(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", networkingModule).Output()
	if err != nil {
		t.Fatalf("locating %s: %v", networkingModule, err)
	}
	return strings.TrimSpace(string(out))
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// freeNodePorts returns n ports of the API server's default NodePort
// range (30000-32767) free on loopback a moment ago.
func freeNodePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n && tries < 1000; tries++ {
		p := 30000 + rand.IntN(2768)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		ls = append(ls, l)
		ports = append(ports, p)
	}
	if len(ports) < n {
		t.Fatal("no free port in the NodePort range")
	}
	return ports
}
