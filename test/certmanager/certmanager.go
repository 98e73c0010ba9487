// Package certmanager runs cert-manager's own certificate controllers, in
// the test process, against the real kube-apiserver of test/kube.
//
// Start installs cert-manager's CRDs (deploy/crds/*.yaml of the pinned
// github.com/cert-manager/cert-manager module, read from the module cache
// with `go list -m`, not copied here) and runs the controllers that turn a
// Certificate into a Secret with a SelfSigned or a CA Issuer: the
// certificates controllers (trigger, keymanager, requestmanager, issuing,
// readiness), the CertificateRequest approver and signers for SelfSigned and
// CA, and the Issuer and ClusterIssuer controllers that mark Issuers Ready.
// They are the module's pkg/controller packages, registered by their init
// functions and built from a controller.ContextFactory (cert-manager's
// cmd/controller module, which wires them in production, is not a
// dependency). There is no webhook: objects are neither defaulted nor
// validated beyond the CRDs' schemas.
//
// The controllers stop, and their informers with them, when the test ends.
// Two idle goroutines per controller stay behind: the event broadcaster that
// controller.ContextFactory.Build starts for each controller and never shuts
// down (cert-manager's process exits instead), and the trigger controller's
// renewal timer per Certificate (pkg/scheduler, not cancelled on shutdown;
// it fires at renewal time into the shut-down queue). Neither is reachable
// from outside the module.
//
// The controllers log errors to the test log (everything at debug level with
// KGATE_CERTMANAGER_DEBUG=1).
package certmanager

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	cmclient "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned"
	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"
	logf "github.com/cert-manager/cert-manager/pkg/logs"

	// The controllers, registered with controllerpkg by their init functions.
	"github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	crca "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	crselfsigned "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	"github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	"github.com/cert-manager/cert-manager/pkg/controller/issuers"

	// The Issuer implementations the issuers controllers set up.
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"

	"github.com/kgate/kgate/test/kube"
)

// Module is the module path of cert-manager, whose version go.mod pins.
const Module = "github.com/cert-manager/cert-manager"

// Controllers are the names of the controllers Start runs.
var Controllers = []string{
	trigger.ControllerName,
	keymanager.ControllerName,
	requestmanager.ControllerName,
	issuing.ControllerName,
	readiness.ControllerName,
	revisionmanager.ControllerName,
	approver.ControllerName,
	crselfsigned.CRControllerName,
	crca.CRControllerName,
	issuers.ControllerName,
	clusterissuers.ControllerName,
}

// ClusterResourceNamespace is where ClusterIssuers find their Secrets.
const ClusterResourceNamespace = "cert-manager"

// Manager is cert-manager's controllers running for a test.
type Manager struct {
	// Config reaches the API server as its admin.
	Config *rest.Config
	// CM is a cert-manager clientset, Kube a Kubernetes one.
	CM   cmclient.Interface
	Kube kubernetes.Interface
}

// Start installs cert-manager's CRDs on the cluster and runs its controllers
// until the test ends.
func Start(t testing.TB, c *kube.Cluster) *Manager {
	t.Helper()
	cfg := &rest.Config{Host: c.URL, BearerToken: c.Token, TLSClientConfig: rest.TLSClientConfig{CAFile: c.CertFile}, QPS: 500, Burst: 1000}
	InstallCRDs(t, cfg)
	m := &Manager{Config: cfg}
	var err error
	if m.CM, err = cmclient.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if m.Kube, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Kube.CoreV1().Namespaces().Create(context.Background(),
		nsObject(ClusterResourceNamespace), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	RunControllers(t, c)
	return m
}

// CRDFiles returns the paths of cert-manager's CRDs in the module cache.
func CRDFiles(t testing.TB) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", Module)
	cmd.Dir = kube.RepoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("certmanager: go list -m %s: %v %s", Module, err, stderr)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		t.Fatalf("certmanager: %s is not in the module cache (go mod download %s)", Module, Module)
	}
	files, err := filepath.Glob(filepath.Join(dir, "deploy", "crds", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("certmanager: no CRDs in %s/deploy/crds: %v", dir, err)
	}
	sort.Strings(files)
	return files
}

// InstallCRDs creates cert-manager's CRDs and waits until they are Established.
func InstallCRDs(t testing.TB, cfg *rest.Config) {
	t.Helper()
	cl, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var names []string
	for _, f := range CRDFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(b, &crd); err != nil {
			t.Fatalf("certmanager: %s: %v", f, err)
		}
		if _, err := cl.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, &crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("certmanager: creating %s: %v", crd.Name, err)
		}
		names = append(names, crd.Name)
	}
	for _, name := range names {
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			crd, err := cl.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			for _, c := range crd.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("certmanager: CRD %s not established: %v", name, err)
		}
	}
}

// RunControllers runs the controllers of Controllers against the cluster
// (whose cert-manager CRDs must be installed) until the test ends.
func RunControllers(t testing.TB, c *kube.Cluster) {
	t.Helper()
	kubeconfig := writeKubeconfig(t, c)

	logw := &testWriter{t: t}
	level := slog.LevelError
	if os.Getenv("KGATE_CERTMANAGER_DEBUG") != "" {
		level = slog.Level(-logf.DebugLevel)
	}
	logger := logr.FromSlogHandler(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: level}))

	ctx, cancel := context.WithCancel(logf.NewContext(context.Background(), logger))
	factory, err := controllerpkg.NewContextFactory(ctx, controllerpkg.ContextOptions{
		Kubeconfig:         kubeconfig,
		KubernetesAPIQPS:   500,
		KubernetesAPIBurst: 1000,
		IssuerOptions: controllerpkg.IssuerOptions{
			ClusterResourceNamespace: ClusterResourceNamespace,
		},
		CertificateOptions: controllerpkg.CertificateOptions{
			// cert-manager's defaults (cmd/controller's flags).
			CertificateRequestMinimumBackoffDuration: time.Hour,
			CertificateRequestMaximumBackoffDuration: 32 * time.Hour,
		},
	})
	if err != nil {
		cancel()
		t.Fatalf("certmanager: %v", err)
	}

	known := controllerpkg.Known()
	var ctrls []controllerpkg.Interface
	for _, name := range Controllers {
		fn, ok := known[name]
		if !ok {
			cancel()
			t.Fatalf("certmanager: controller %q is not registered", name)
		}
		ctrl, err := fn(factory)
		if err != nil {
			cancel()
			t.Fatalf("certmanager: building %s: %v", name, err)
		}
		ctrls = append(ctrls, ctrl)
	}

	// The informer factories are shared by every Context the factory builds;
	// the controllers above asked for their informers, which start now.
	shared, err := factory.Build("informers")
	if err != nil {
		cancel()
		t.Fatalf("certmanager: %v", err)
	}
	shared.KubeSharedInformerFactory.Start(ctx.Done())
	shared.SharedInformerFactory.Start(ctx.Done())
	shared.GWShared.Start(ctx.Done())
	shared.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())

	var wg sync.WaitGroup
	for i, ctrl := range ctrls {
		wg.Go(func() {
			if err := ctrl.Run(2, ctx); err != nil && ctx.Err() == nil {
				t.Errorf("certmanager: %s: %v", Controllers[i], err)
			}
		})
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		shared.KubeSharedInformerFactory.Shutdown()
		shared.SharedInformerFactory.Shutdown()
		shared.GWShared.Shutdown()
		shared.HTTP01ResourceMetadataInformersFactory.Shutdown()
		logw.close()
	})
}

// writeKubeconfig writes a kubeconfig for the cluster's admin, which is how
// a ContextFactory is told where the API server is.
func writeKubeconfig(t testing.TB, c *kube.Cluster) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kgate-test"] = &clientcmdapi.Cluster{Server: c.URL, CertificateAuthority: c.CertFile}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: c.Token}
	cfg.Contexts["kgate-test"] = &clientcmdapi.Context{Cluster: "kgate-test", AuthInfo: "admin"}
	cfg.CurrentContext = "kgate-test"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// testWriter sends the controllers' log to t.Log until close; a line written
// after (a goroutine the controllers leave behind) goes nowhere.
type testWriter struct {
	mu     sync.Mutex
	t      testing.TB
	closed bool
}

var _ io.Writer = (*testWriter)(nil)

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log("cert-manager: " + strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

func nsObject(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// String describes the manager for test logs.
func (m *Manager) String() string {
	return fmt.Sprintf("cert-manager controllers on %s", m.Config.Host)
}
