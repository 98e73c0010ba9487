package kubemode

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/pki/secrets"
)

// TestControllerFailover runs two `kgate controller` replicas with leader
// election, as deploy/install does, and kills the leader with SIGKILL (no
// Lease released, as a node failure would): a gateway that reaches the
// replicas through one address list (the controller Service's endpoints)
// keeps the config it holds, reconnects to the new leader, and never
// receives a removal or another version of what it held; a Service
// created at the kill reaches it through the new leader. The recovery
// times are logged: kill → the new leader ready, kill → the change at the
// gateway.
func TestControllerFailover(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.kubelet(ctx)
	bin, kubeconfig := buildKgate(t), writeKubeconfig(t, e)
	// Services start at zero: routable without pods or activators.
	if err := e.client.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: "config-autoscaler"},
		Data:       map[string]string{"allow-zero-initial-scale": "true"},
	}); err != nil {
		t.Fatal(err)
	}

	leader := startMode(t, bin, kubeconfig, "controller")
	follower := launch(t, bin, kubeconfig, "controller")
	gw := watchFailover(t, e, leader.xds, follower.xds)

	const before = 3
	for i := range before {
		if err := e.client.Create(ctx, benchService(i)); err != nil {
			t.Fatal(err)
		}
	}
	e.eventually(time.Minute, "the gateway holds every host", func() error {
		for i := range before {
			if _, ok := gw.seen(benchHost(i)); !ok {
				return fmt.Errorf("no %s", benchHost(i))
			}
		}
		return nil
	})
	if follower.ready() {
		t.Fatal("both replicas are ready: both lead")
	}
	held := gw.snapshot()

	killed := time.Now()
	if err := leader.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-leader.done
	if err := e.client.Create(ctx, benchService(before)); err != nil {
		t.Fatal(err)
	}
	follower.waitReady(t, 2*time.Minute)
	takeover := time.Since(killed)
	e.eventually(time.Minute, "the Service created at the kill reaches the gateway", func() error {
		if _, ok := gw.seen(benchHost(before)); !ok {
			return fmt.Errorf("no %s", benchHost(before))
		}
		return nil
	})
	at, _ := gw.seen(benchHost(before))
	flows := at.Sub(killed)

	// Nothing the gateway held was taken away or replaced on the way.
	gw.mu.Lock()
	defer gw.mu.Unlock()
	if len(gw.removed) > 0 {
		t.Errorf("the gateway was told to remove %v across the failover", gw.removed)
	}
	for name, v := range held {
		if got := gw.versions[name]; got[len(got)-1] != v || slices.Index(got, v) != len(got)-1 {
			t.Errorf("route configuration %s: versions %v, held %s before the kill: the gateway got another version", name, got, v)
		}
	}
	t.Logf("leader killed (SIGKILL): the new leader ready after %v, a change at the gateway after %v (the Lease expires first: 15 s)",
		takeover.Round(time.Millisecond), flows.Round(time.Millisecond))
}

// failoverGateway is a gateway's view of the route configurations across
// a failover: every version of each, in order, and every removal.
type failoverGateway struct {
	mu       sync.Mutex
	versions map[string][]string
	removed  []string
	first    map[string]time.Time
}

// watchFailover connects a gateway to the replicas at addrs, as it reaches
// them through the controller Service: the first that accepts.
func watchFailover(t *testing.T, e *env, addrs ...string) *failoverGateway {
	r := manual.NewBuilderWithScheme("kgate-controllers")
	var state resolver.State
	for _, a := range addrs {
		state.Addresses = append(state.Addresses, resolver.Address{Addr: a})
	}
	r.InitialState(state)
	// Reconnect within half a second, as the xdsclient below: the
	// recovery measured is the control plane's, not a client's backoff.
	conn := e.dialAs(r.Scheme()+":///kgate-controller", secrets.GatewaySecret, grpc.WithResolvers(r),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, MaxDelay: 500 * time.Millisecond}}))
	g := &failoverGateway{versions: map[string][]string{}, first: map[string]time.Time{}}
	cl, err := xdsclient.New(conn, xdsclient.Options{
		Node:    xdsclient.Node{ID: "kgate-gateway-failover", Cluster: "kgate-gateway"},
		Backoff: xdsclient.Backoff{Initial: 50 * time.Millisecond, Max: 500 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	cl.Watch(resource.RouteType, func(u xdsclient.Update) error {
		now := time.Now()
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, res := range u.Resources {
			g.versions[res.Name] = append(g.versions[res.Name], res.Version)
			for _, vh := range res.Message.(*routev3.RouteConfiguration).GetVirtualHosts() {
				for _, d := range vh.GetDomains() {
					if _, ok := g.first[d]; !ok {
						g.first[d] = now
					}
				}
			}
		}
		g.removed = append(g.removed, u.Removed...)
		return nil
	}, xdsclient.Wildcard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = cl.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return g
}

func (g *failoverGateway) seen(host string) (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	at, ok := g.first[host]
	return at, ok
}

// snapshot is the version the gateway holds of each route configuration.
func (g *failoverGateway) snapshot() map[string]string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]string{}
	for name, vs := range g.versions {
		out[name] = vs[len(vs)-1]
	}
	return out
}
