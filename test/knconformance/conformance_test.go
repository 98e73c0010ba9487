package knconformance

import (
	"flag"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"knative.dev/networking/test/conformance/ingress"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	kubesource "github.com/kgate/kgate/watcher/kube"
)

// cannotRun are the suite's cases that cannot run here, with why.
var cannotRun = map[string]string{
	"host-rewrite": "its backend is an ExternalName Service to the private load balancer's cluster DNS name " +
		"(kgate-gateway-internal.kgate-system.svc.cluster.local), which the gateway resolves when it connects: " +
		"there is no cluster DNS here (503 no healthy upstream); \"host-rewrite (kgate's own)\" checks the same with a name that resolves",
}

func TestMain(m *testing.M) {
	flag.Parse()
	// The suite's cases wait on the network, not the CPU: run them all at
	// once, whatever -parallel make test gives (GOMAXPROCS, 2 in CI).
	if p := flag.Lookup("test.parallel"); p != nil && p.Value.String() == strconv.Itoa(runtime.GOMAXPROCS(0)) {
		_ = flag.Set("test.parallel", "32")
	}
	// The suite polls v1 Endpoints, deprecated: one warning a second.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})
	// The controller and the clients log through controller-runtime's
	// logger, which otherwise complains that it was never set.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(m.Run())
}

// TestConformance runs Knative's ingress conformance suite, stable, beta
// and alpha cases, against the KIngress mode with the dev gateway.
func TestConformance(t *testing.T) {
	e := newEnv(t)
	bin := buildImages(t)
	e.install()
	c := e.startController()
	e.startGateway(c.XDSAddr().String())
	k := startKubelet(e, bin)
	// kgate's own tests of the cases that cannot run here, named after them.
	t.Run("host-rewrite (kgate's own)", func(t *testing.T) { testHostRewrite(t, e, k.ip) })

	skip := map[string]string{}
	for name, why := range cannotRun {
		skip[name] = why
	}
	var names []string
	for name := range skip {
		names = append(names, name)
		t.Logf("skipping %s: %s", name, skip[name])
	}
	sort.Strings(names)
	if s := flag.Lookup("skip-tests").Value.String(); s != "" {
		names = append(names, s)
	}
	for name, value := range map[string]string{
		"ingressClass":    kubesource.ClassName,
		"enable-alpha":    "true",
		"enable-beta":     "true",
		"skip-tests":      strings.Join(names, ","),
		"cluster-suffix":  clusterDomain,
		"kubeconfig":      e.kubeconfig,
		"ingressendpoint": "127.0.0.1",
		"imagetemplate":   "kgate.test/{{.Name}}",
	} {
		if err := flag.Set(name, value); err != nil {
			t.Fatalf("setting the suite's flag --%s: %v", name, err)
		}
	}
	// grpc-go's xDS client checks the gRPC cases as an independent peer.
	t.Run("grpc (grpc-go xDS client)", func(t *testing.T) { testGRPCOverXDS(t, e, c.XDSAddr().String(), false) })
	t.Run("grpc/split (grpc-go xDS client)", func(t *testing.T) { testGRPCOverXDS(t, e, c.XDSAddr().String(), true) })
	ingress.RunConformance(t)
}
