package kube

import (
	"log/slog"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kgate/kgate/api/config"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/watcher/knative"
)

// tagged gives a Route's status traffic one target per tag (and one
// untagged), as the reconciler resolves it.
func tagged(tags ...string) opt {
	return func(o client.Object) {
		rt := o.(*servingv1.Route)
		rt.Status.Traffic = []servingv1.TrafficTarget{{RevisionName: "hello-00001", Percent: new(int64(100))}}
		for _, tag := range tags {
			rt.Status.Traffic = append(rt.Status.Traffic, servingv1.TrafficTarget{Tag: tag, RevisionName: "hello-00001", Percent: new(int64(0))})
		}
	}
}

// TestTagServices: a served Route's tags get ExternalName Services to the
// internal gateway named by config-network's tag-template, owned by the
// Route, as Knative's placeholder Services; a tag that goes takes its
// Service with it, and what the Route does not control is left alone.
func TestTagServices(t *testing.T) {
	netWith := func(tmpl string) config.Network {
		n, err := config.ParseNetwork(map[string]string{"tag-template": tmpl})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	tests := []struct {
		name   string
		cache  []client.Object
		route  *servingv1.Route
		net    config.Network
		queued []string
		calls  []string
		// have are the Route Services the API server holds then.
		have []string
	}{
		{
			name:   "each tag gets a Service named <tag>-<route> beside the Route's",
			cache:  []client.Object{kroute("hello", addressed(), tagged("v1", "v2"))},
			route:  kroute("hello", addressed(), tagged("v1", "v2")),
			queued: []string{"RouteService/default/hello", "RouteService/default/v1-hello", "RouteService/default/v2-hello"},
			calls:  []string{"create corev1.Service default/hello", "create corev1.Service default/v1-hello", "create corev1.Service default/v2-hello"},
			have:   []string{"hello", "v1-hello", "v2-hello"},
		},
		{
			name:   "the names follow config-network's tag-template",
			cache:  []client.Object{kroute("hello", addressed(), tagged("v1"))},
			route:  kroute("hello", addressed(), tagged("v1")),
			net:    netWith("{{.Name}}-at-{{.Tag}}"),
			queued: []string{"RouteService/default/hello", "RouteService/default/hello-at-v1"},
			calls:  []string{"create corev1.Service default/hello", "create corev1.Service default/hello-at-v1"},
			have:   []string{"hello", "hello-at-v1"},
		},
		{
			name: "a tag no longer in the traffic loses its Service; the others stay untouched",
			cache: []client.Object{
				kroute("hello", addressed(), tagged("v2")),
				routeService("hello", internalGateway, ownedBy(servingv1.KindRoute, "hello")),
				tagService("v1-hello", "hello", ownedBy(servingv1.KindRoute, "hello")),
				tagService("v2-hello", "hello", ownedBy(servingv1.KindRoute, "hello")),
			},
			route:  kroute("hello", addressed(), tagged("v2")),
			queued: []string{"RouteService/default/v1-hello"},
			calls:  []string{"delete corev1.Service default/v1-hello"},
			have:   []string{"hello", "v2-hello"},
		},
		{
			name: "a Service the Route does not control is never deleted nor taken over",
			cache: []client.Object{
				kroute("hello", addressed(), tagged("v2")),
				routeService("hello", internalGateway, ownedBy(servingv1.KindRoute, "hello")),
				tagService("v1-hello", "hello"),                                              // labelled, not controlled
				tagService("v2-hello", "v2-hello", ownedBy(servingv1.KindRoute, "v2-hello")), // a Route of that name
				kroute("v2-hello"),
			},
			route: kroute("hello", addressed(), tagged("v2")),
			have:  []string{"hello", "v1-hello", "v2-hello"},
		},
		{
			name: "a Service of the name without the label is someone else's: never created over, every round",
			cache: []client.Object{
				kroute("hello", addressed()),
				&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hello"}},
			},
			route: kroute("hello", addressed()),
		},
		{
			name: "a Route not served keeps its tags' Services (a passing failure deletes nothing)",
			cache: []client.Object{
				kroute("hello", tagged()),
				tagService("v1-hello", "hello", ownedBy(servingv1.KindRoute, "hello")),
			},
			route: kroute("hello", tagged()),
			have:  []string{"v1-hello"},
		},
		{
			name:   "a tag whose name cannot name a Service gets none",
			cache:  []client.Object{kroute("hello", addressed(), tagged("v1"))},
			route:  kroute("hello", addressed(), tagged("v1")),
			net:    netWith("{{.Tag}}.{{.Name}}"),
			queued: []string{"RouteService/default/hello"},
			calls:  []string{"create corev1.Service default/hello"},
			have:   []string{"hello"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, calls := newTestController(t, tt.cache...)
			res := knative.Result{Routes: []*servingv1.Route{tt.route}, Config: config.Default()}
			if tt.net.TagTemplate != "" {
				res.Config.Network = tt.net
			}
			c.publish(snap(t, c), &res)
			if got := queued(c); !slices.Equal(got, tt.queued) {
				t.Errorf("queued writes:\n got %q\nwant %q", got, tt.queued)
			}
			flush(t, c)
			if got := calls.take(); !slices.Equal(got, tt.calls) {
				t.Errorf("API calls:\n got %q\nwant %q", got, tt.calls)
			}
			var list corev1.ServiceList
			if err := c.client.List(t.Context(), &list, client.HasLabels{LabelRoute}); err != nil {
				t.Fatal(err)
			}
			var have []string
			for _, s := range list.Items {
				have = append(have, s.Name)
				if !slices.Contains(tt.have, s.Name) {
					continue
				}
				if s.Spec.Type != corev1.ServiceTypeExternalName || s.Spec.ExternalName != internalGateway {
					t.Errorf("Service %s is %s to %q, want an ExternalName to %s", s.Name, s.Spec.Type, s.Spec.ExternalName, internalGateway)
				}
			}
			slices.Sort(have)
			if !slices.Equal(have, tt.have) {
				t.Errorf("Route Services %q, want %q", have, tt.have)
			}
			// Those this test created are the Route's: labelled and owned.
			for _, call := range tt.calls {
				name, created := strings.CutPrefix(call, "create corev1.Service "+ns+"/")
				if !created {
					continue
				}
				s := get(t, c, &corev1.Service{}, name)
				if s.Labels[LabelRoute] != "hello" || !equalRefs(s.OwnerReferences, []metav1.OwnerReference{owner(servingv1.KindRoute, "hello")}) {
					t.Errorf("Service %s: labels %v, owners %v; want the Route hello's", name, s.Labels, s.OwnerReferences)
				}
			}
		})
	}
}

// TestTagServicesPrunedWithTheRoute: a deleted Route's tag Services go
// with its own, as its owner references make Kubernetes' collector do.
func TestTagServicesPrunedWithTheRoute(t *testing.T) {
	c, calls := newTestController(t,
		routeService("hello", internalGateway, ownedBy(servingv1.KindRoute, "hello")),
		tagService("v1-hello", "hello", ownedBy(servingv1.KindRoute, "hello")),
	)
	res := knative.Result{Config: config.Default()}
	c.publish(snap(t, c), &res)
	flush(t, c)
	want := []string{"delete corev1.Service default/hello", "delete corev1.Service default/v1-hello"}
	if got := calls.take(); !slices.Equal(got, want) {
		t.Errorf("API calls:\n got %q\nwant %q", got, want)
	}
}

// tagService is a tag's ExternalName Service, labelled with its Route.
func tagService(name, route string, opts ...opt) *corev1.Service {
	s := routeService(route, internalGateway, opts...)
	s.Name = name
	return s
}

// TestTagServiceNameTakenIsLeftAlone: a Service labelled as a Route's but
// not controlled by it keeps its target, though the Route's tag wants its
// name; the clash is logged once.
func TestTagServiceNameTakenIsLeftAlone(t *testing.T) {
	taken := tagService("v2-hello", "hello")
	taken.Spec.ExternalName = "elsewhere.example.com"
	c, calls := newTestController(t,
		kroute("hello", addressed(), tagged("v2")),
		routeService("hello", internalGateway, ownedBy(servingv1.KindRoute, "hello")),
		taken)
	logs := &testrun.Buffer{}
	c.log = slog.New(slog.NewTextHandler(logs, nil))
	res := knative.Result{Routes: []*servingv1.Route{kroute("hello", addressed(), tagged("v2"))}, Config: config.Default()}
	for range 2 {
		c.publish(snap(t, c), &res)
		flush(t, c)
	}
	if got := calls.take(); len(got) != 0 {
		t.Errorf("API calls %q, want none", got)
	}
	if s := get(t, c, &corev1.Service{}, "v2-hello"); s.Spec.ExternalName != "elsewhere.example.com" {
		t.Errorf("the taken Service now points to %q", s.Spec.ExternalName)
	}
	if n := strings.Count(logs.String(), "taken by a Service it does not control"); n != 1 {
		t.Errorf("%d clash warnings over two rounds, want 1:\n%s", n, logs)
	}
}

// TestRouteServiceCreatedSinceTheSnapshot: the Route's own Service,
// created after the round's snapshot was read (a publication runs behind
// the round), is neither created again nor taken for someone else's; one
// of the name that is someone else's is, once.
func TestRouteServiceCreatedSinceTheSnapshot(t *testing.T) {
	for _, tt := range []struct {
		name      string
		since     *corev1.Service
		wantClash int
	}{
		{"the Route's own", routeService("hello", internalGateway, ownedBy(servingv1.KindRoute, "hello")), 0},
		{"someone else's, unlabelled", &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hello"}}, 1},
		{"another Route's of the name", routeService("hello", internalGateway, ownedBy(servingv1.KindRoute, "other")), 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, calls := newTestController(t, kroute("hello", addressed()))
			logs := &testrun.Buffer{}
			c.log = slog.New(slog.NewTextHandler(logs, nil))
			s := snap(t, c)
			if err := c.client.Create(t.Context(), tt.since); err != nil {
				t.Fatal(err)
			}
			calls.take()
			res := knative.Result{Routes: []*servingv1.Route{kroute("hello", addressed())}, Config: config.Default()}
			c.publish(s, &res)
			if got := queued(c); len(got) != 0 {
				t.Errorf("queued %q, want nothing", got)
			}
			if n := strings.Count(logs.String(), "taken by a Service it does not control"); n != tt.wantClash {
				t.Errorf("%d clash warnings, want %d:\n%s", n, tt.wantClash, logs)
			}
		})
	}
}
