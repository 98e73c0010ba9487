package kubemode

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	cmclient "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned"

	"github.com/kgate/kgate/test/certmanager"
	kubesource "github.com/kgate/kgate/watcher/kube"
)

// ACME HTTP-01 as cert-manager solves it, with http-protocol Redirected:
// the test plays cert-manager's ACME challenge controller (a Challenge for
// the Route's host, and a solver Service it owns, labelled as a solver)
// and kube-proxy (the Service's cluster IP and port lead to a real HTTP
// solver on a loopback address). The gateway receives, first on the host,
// the token's exact path to a cluster whose endpoint is the solver
// Service's; a plain HTTP request for it, matched against the gateway's
// route configuration as Envoy matches (first route whose prefix and
// headers match), reaches the solver and gets the key, while the rest of
// the host is still redirected to https. The Challenge gone, the route and
// the cluster's endpoints go.
func TestACMEHTTP01ChallengeRouting(t *testing.T) {
	e := newEnv(t)
	certmanager.InstallCRDs(t, e.cfg) // cert-manager's CRDs, Challenge among them, before the controller starts
	cm, err := cmclient.NewForConfig(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, o := range []*corev1.ConfigMap{
		{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: "config-autoscaler"},
			Data: map[string]string{"allow-zero-initial-scale": "true"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: "config-network"},
			Data: map[string]string{"external-domain-tls": "Enabled", "http-protocol": "Redirected"}},
	} {
		if err := e.client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	c, _ := e.startControllerWith(func(o *kubesource.Options) { o.StaleAfter = 2 * time.Second })
	e.kubelet(ctx)
	gw := e.connectGateway(c.XDSAddr().String(), "acme")
	const host = "hello.default.example.com"
	createService(t, e, "hello")
	e.eventually(60*time.Second, "the gateway serves "+host, func() error { return holds(gw, "hello") })

	// The solver, as cert-manager's acmesolver answers: the key for the
	// token, 404 otherwise.
	const token, key = "tok-3n_Zq9", "tok-3n_Zq9.thumbprint"
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	solver := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/acme-challenge/"+token || r.Host != host {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, key)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = solver.Serve(lis) }()
	t.Cleanup(func() { solver.Close() })

	challenges := cm.AcmeV1().Challenges("default")
	ch, err := challenges.Create(ctx, &cmacme.Challenge{
		ObjectMeta: metav1.ObjectMeta{Name: "route-hello-1-2345-6789"},
		Spec: cmacme.ChallengeSpec{
			URL: "https://acme.example/chall/1", AuthorizationURL: "https://acme.example/authz/1",
			DNSName: host, Type: cmacme.ACMEChallengeTypeHTTP01, Token: token, Key: key,
			Solver:    cmacme.ACMEChallengeSolver{HTTP01: &cmacme.ACMEChallengeSolverHTTP01{Ingress: &cmacme.ACMEChallengeSolverHTTP01Ingress{}}},
			IssuerRef: cmmeta.IssuerReference{Name: "letsencrypt", Kind: "ClusterIssuer", Group: "cert-manager.io"},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "default", GenerateName: "cm-acme-http-solver-",
			Labels: map[string]string{kubesource.LabelHTTP01Solver: "true", "acme.cert-manager.io/http-domain": "1", "acme.cert-manager.io/http-token": "2"},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "acme.cert-manager.io/v1", Kind: "Challenge", Name: ch.Name, UID: ch.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeNodePort,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 8089, TargetPort: intstr.FromInt32(8089)}},
			Selector: map[string]string{"acme.cert-manager.io/http-domain": "1", "acme.cert-manager.io/http-token": "2"},
		},
	}
	if err := e.client.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	cluster := "default/acme:" + svc.Name
	clusterIP := net.JoinHostPort(svc.Spec.ClusterIP, "8089")
	// kube-proxy: the Service's address leads to the solver.
	proxy := map[string]string{clusterIP: lis.Addr().String()}
	start := time.Now()

	path := "/.well-known/acme-challenge/" + token
	e.eventually(60*time.Second, "the solver's route first on "+host, func() error {
		vh := gw.virtualHost(host)
		if vh == nil || len(vh.Routes) == 0 {
			return fmt.Errorf("no virtual host %s", host)
		}
		first := vh.Routes[0]
		if first.GetMatch().GetPrefix() != path || len(first.GetMatch().GetHeaders()) > 0 || !slices.Equal(clustersOf(first), []string{cluster}) {
			return fmt.Errorf("first route %v", first)
		}
		if eps := gw.endpoints(cluster); !slices.Equal(eps, []string{clusterIP}) {
			return fmt.Errorf("cluster %s endpoints %v, want %s", cluster, eps, clusterIP)
		}
		return nil
	})
	t.Logf("Challenge and solver created to the route at the gateway: %s", time.Since(start).Round(time.Millisecond))

	// Plain HTTP, as the ACME server sends it: the solver answers.
	r := matchRoute(gw.virtualHost(host), path, "http")
	if got := clustersOf(r); !slices.Equal(got, []string{cluster}) {
		t.Fatalf("plain HTTP %s goes to %v (route %v), want the solver", path, got, r)
	}
	up := proxy[gw.endpoints(cluster)[0]]
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+up+path, nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != key {
		t.Errorf("the solver answered %d %q, want 200 %q", resp.StatusCode, body, key)
	}
	// Over HTTPS too; the rest of the host is as before: redirected over
	// plain HTTP, another ACME path to the host's own routing.
	if got := clustersOf(matchRoute(gw.virtualHost(host), path, "https")); !slices.Equal(got, []string{cluster}) {
		t.Errorf("HTTPS %s goes to %v, want the solver", path, got)
	}
	if r := matchRoute(gw.virtualHost(host), "/", "http"); r.GetRedirect() == nil {
		t.Errorf("plain HTTP / : route %v, want the https redirect", r)
	}
	if got := clustersOf(matchRoute(gw.virtualHost(host), "/.well-known/acme-challenge/other", "http")); len(got) != 1 || strings.HasPrefix(got[0], "default/acme:") {
		t.Errorf("another token goes to %v, want the Service's revision", got)
	}
	// No other host has the route.
	for _, h := range gw.hosts() {
		if vh := gw.virtualHost(h); h != host && h != host+":*" && vh != nil && len(vh.Routes) > 0 && vh.Routes[0].GetMatch().GetPrefix() == path {
			t.Errorf("host %s has the solver's route", h)
		}
	}

	// The Challenge gone (cert-manager deletes it once the order is
	// done; the garbage collector would take the Service with it), the
	// route goes, and the solver's endpoints.
	if err := challenges.Delete(ctx, ch.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually(60*time.Second, "the solver's route gone", func() error {
		vh := gw.virtualHost(host)
		if vh == nil {
			return fmt.Errorf("no virtual host %s", host)
		}
		for _, r := range vh.Routes {
			if r.GetMatch().GetPrefix() == path {
				return fmt.Errorf("route %v still there", r)
			}
		}
		if eps := gw.endpoints(cluster); len(eps) > 0 {
			return fmt.Errorf("cluster %s endpoints %v", cluster, eps)
		}
		return nil
	})
	if r := matchRoute(gw.virtualHost(host), path, "http"); clustersOf(r) == nil && r.GetRedirect() != nil {
		t.Errorf("after the challenge, plain HTTP %s is redirected; want the host's ACME route", path)
	}
}

// virtualHost is the virtual host the gateway holds for host.
func (g *gateway) virtualHost(host string) *routev3.VirtualHost {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, rc := range g.routes {
		for _, vh := range rc.VirtualHosts {
			if slices.Contains(vh.Domains, host) {
				return vh
			}
		}
	}
	return nil
}

// matchRoute is the route Envoy takes for a request on the virtual host:
// the first whose prefix and exact header matches match (the gateways set
// x-forwarded-proto to the connection's scheme); routes with a 0 % runtime
// fraction never match.
func matchRoute(vh *routev3.VirtualHost, path, proto string) *routev3.Route {
	for _, r := range vh.GetRoutes() {
		m := r.GetMatch()
		if m.GetRuntimeFraction() != nil && m.GetRuntimeFraction().GetDefaultValue().GetNumerator() == 0 {
			continue
		}
		if !strings.HasPrefix(path, m.GetPrefix()) {
			continue
		}
		ok := true
		for _, h := range m.GetHeaders() {
			if h.GetName() != "x-forwarded-proto" || h.GetStringMatch().GetExact() != proto {
				ok = false
			}
		}
		if ok {
			return r
		}
	}
	return nil
}

// clustersOf are the clusters a route sends traffic to.
func clustersOf(r *routev3.Route) []string {
	var out []string
	if c := r.GetRoute().GetCluster(); c != "" {
		out = append(out, c)
	}
	for _, w := range r.GetRoute().GetWeightedClusters().GetClusters() {
		out = append(out, w.GetName())
	}
	return out
}
