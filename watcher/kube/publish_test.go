package kube

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/kgate/kgate/api/config"
	networkingv1alpha1 "github.com/kgate/kgate/api/networking/v1alpha1"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/api/serving/v1beta1"
	"github.com/kgate/kgate/autoscale/loop"
	deploykube "github.com/kgate/kgate/deploy/kube"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/watcher"
	"github.com/kgate/kgate/watcher/knative"
)

// The publish tests run the controller's publishing against
// controller-runtime's fake client: the snapshot is what c.read lists from
// it (as from the informer caches), the queued writes are read off the
// writer, and running them records the API calls they make.

const ns = "default"

func testScheme(t testing.TB) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := servingv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1beta1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := networkingv1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// apiCalls records the writes that reach the (fake) API server, as
// "verb Kind namespace/name"; Kubernetes' own kinds carry their package
// (corev1.Service, appsv1.Deployment), Knative's do not.
type apiCalls struct {
	scheme *runtime.Scheme
	mu     sync.Mutex
	calls  []string
}

func (a *apiCalls) record(verb string, obj client.Object) {
	kind := "?"
	if gvk, err := apiutil.GVKForObject(obj, a.scheme); err == nil {
		switch gvk.Group {
		case "":
			kind = "corev1." + gvk.Kind
		case "apps":
			kind = "appsv1." + gvk.Kind
		default:
			kind = gvk.Kind
		}
	}
	a.mu.Lock()
	a.calls = append(a.calls, verb+" "+kind+" "+obj.GetNamespace()+"/"+obj.GetName())
	a.mu.Unlock()
}

// take returns the calls recorded since the last take, sorted.
func (a *apiCalls) take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.calls
	a.calls = nil
	slices.Sort(out)
	return out
}

func (a *apiCalls) funcs() interceptor.Funcs {
	return interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			a.record("create", obj)
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			a.record("update", obj)
			return c.Update(ctx, obj, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			a.record("delete", obj)
			return c.Delete(ctx, obj, opts...)
		},
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			if sub == "status" {
				a.record("update status", obj)
			}
			return c.SubResource(sub).Update(ctx, obj, opts...)
		},
	}
}

type nopRouting struct{}

func (nopRouting) UpdateRouting([]model.Service, []model.Revision) error { return nil }

type nopSecrets struct{}

func (nopSecrets) SetSecret(*tlsv3.Secret) error { return nil }
func (nopSecrets) DeleteSecret(string) error     { return nil }

func nopWatch(types.NamespacedName, secretEvents) func() { return func() {} }

type nopEndpoints struct{}

func (nopEndpoints) SetEndpoints(model.RevisionEndpoints) error { return nil }
func (nopEndpoints) DeleteEndpoints(string) error               { return nil }

type nopMetrics struct{}

func (nopMetrics) Collect(time.Time) map[string]model.Stat { return nil }

// statusTime is the pipeline's clock: whole seconds, as the API server
// stores them.
var statusTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// newTestController is a Controller as New wires it, on a fake client
// holding objs, with no manager, xDS server or running goroutines: its
// writes stay queued until the test runs them (flush).
func newTestController(t testing.TB, objs ...client.Object) (*Controller, *apiCalls) {
	t.Helper()
	scheme := testScheme(t)
	calls := &apiCalls{scheme: scheme}
	cl := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
		WithStatusSubresource(&servingv1.Service{}, &servingv1.Configuration{}, &servingv1.Route{}, &servingv1.Revision{},
			&v1beta1.DomainMapping{}, &appsv1.Deployment{}, &corev1.Service{}).
		WithInterceptorFuncs(calls.funcs()).Build()
	return newTestControllerOn(t, cl), calls
}

// newTestControllerOn is newTestController on a given client: another
// controller process on the same API server.
func newTestControllerOn(t testing.TB, cl client.Client) *Controller {
	t.Helper()
	opts := Options{Logger: discard}
	opts.defaults()
	c := &Controller{opts: opts, log: discard, client: cl, kick: make(chan struct{}, 1)}
	c.st.init()
	c.tls = newCertificates(discard, nopSecrets{}, types.NamespacedName{}, nopWatch)
	c.writes = newWriter(discard, 1, func() {})
	c.scaler = deploykube.NewScaler(cl)
	c.scales = newAsyncScaler(c.scaler, discard)
	var err error
	c.loop, err = loop.New(loop.Options{Deployer: scalerDeployer{c.scales, c.scaler}, Endpoints: nopEndpoints{}, Metrics: nopMetrics{}, OnDecision: c.decided})
	if err != nil {
		t.Fatal(err)
	}
	c.pipe = watcher.New(watcher.Options{Routing: nopRouting{}, Deployed: true, StartsAtZero: startsAtZero, Logger: discard,
		Now: func() time.Time { return statusTime }})
	return c
}

// queued is the keys of the writes waiting in the writer, sorted.
func queued(c *Controller) []string {
	c.writes.mu.Lock()
	defer c.writes.mu.Unlock()
	return slices.Sorted(maps.Keys(c.writes.pending))
}

// flush runs the queued writes, in the order of their keys.
func flush(t testing.TB, c *Controller) {
	t.Helper()
	for _, key := range queued(c) {
		write, _ := c.writes.take(key)
		if err := write(t.Context()); err != nil {
			t.Fatalf("write %s: %v", key, err)
		}
	}
}

func snap(t testing.TB, c *Controller) *snapshot {
	t.Helper()
	s, err := c.read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Builders of the objects in the cache and in a result.

func uid(kind, name string) types.UID { return types.UID(strings.ToLower(kind) + "-" + name) }

// owner is the controller reference kgate gives an object it derives.
func owner(kind, name string) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: servingv1.APIVersion, Kind: kind, Name: name, UID: uid(kind, name),
		Controller: new(true), BlockOwnerDeletion: new(true)}
}

type opt func(client.Object)

func ownedBy(kind, name string) opt {
	return func(o client.Object) { o.SetOwnerReferences([]metav1.OwnerReference{owner(kind, name)}) }
}

func generation(n int64) opt { return func(o client.Object) { o.SetGeneration(n) } }

func labels(kv ...string) opt {
	return func(o client.Object) {
		l := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			l[kv[i]] = kv[i+1]
		}
		o.SetLabels(l)
	}
}

// status sets a Knative object's Ready condition and observed generation.
func status(ready corev1.ConditionStatus, observed int64) opt {
	st := servingv1.Status{ObservedGeneration: observed, Conditions: []servingv1.Condition{{
		Type: servingv1.ConditionReady, Status: ready, LastTransitionTime: metav1.NewTime(statusTime)}}}
	return func(o client.Object) {
		switch o := o.(type) {
		case *servingv1.Service:
			o.Status.Status = st
		case *servingv1.Configuration:
			o.Status.Status = st
		case *servingv1.Route:
			o.Status.Status = st
		case *servingv1.Revision:
			o.Status.Status = st
		}
	}
}

// image sets the template (a Service's or Configuration's) or the spec (a
// Revision's) to run image.
func image(ref string) opt {
	spec := servingv1.RevisionSpec{PodSpec: corev1.PodSpec{Containers: []corev1.Container{{Image: ref}}}}
	return func(o client.Object) {
		switch o := o.(type) {
		case *servingv1.Service:
			o.Spec.Template.Spec = spec
		case *servingv1.Configuration:
			o.Spec.Template.Spec = spec
		case *servingv1.Revision:
			o.Spec = spec
		}
	}
}

// traffic sends a Route's traffic to the latest revision of a
// Configuration, or to a named revision.
func traffic(config, revision string) opt {
	t := servingv1.TrafficTarget{ConfigurationName: config, RevisionName: revision, Percent: new(int64(100))}
	if revision == "" {
		t.LatestRevision = new(true)
	}
	return func(o client.Object) {
		switch o := o.(type) {
		case *servingv1.Service:
			o.Spec.Traffic = []servingv1.TrafficTarget{t}
		case *servingv1.Route:
			o.Spec.Traffic = []servingv1.TrafficTarget{t}
		}
	}
}

// addressed gives a Route the cluster-local address of a served Route.
func addressed() opt {
	return func(o client.Object) {
		u, _ := servingv1.ParseURL("http://" + o.GetName() + "." + o.GetNamespace() + ".svc.cluster.local")
		o.(*servingv1.Route).Status.Address = &servingv1.Addressable{URL: u}
	}
}

func build[T client.Object](o T, kind, name string, opts []opt) T {
	o.SetNamespace(ns)
	o.SetName(name)
	o.SetUID(uid(kind, name))
	for _, f := range opts {
		f(o)
	}
	return o
}

func ksvc(name string, opts ...opt) *servingv1.Service {
	return build(&servingv1.Service{}, servingv1.KindService, name, opts)
}

func kcfg(name string, opts ...opt) *servingv1.Configuration {
	return build(&servingv1.Configuration{}, servingv1.KindConfiguration, name, opts)
}

func kroute(name string, opts ...opt) *servingv1.Route {
	return build(&servingv1.Route{}, servingv1.KindRoute, name, opts)
}

// krev is a revision of a Configuration, labelled as the reconciler
// labels it.
func krev(name, config string, opts ...opt) *servingv1.Revision {
	return build(&servingv1.Revision{}, servingv1.KindRevision, name,
		append([]opt{labels(knative.LabelConfiguration, config)}, opts...))
}

// withActual is a revision status as publish writes it: the result's,
// with the Deployment's ready replicas and the revision's generation.
func withActual(r *servingv1.Revision, actual int32) *servingv1.Revision {
	r.Status.ActualReplicas = new(actual)
	r.Status.ObservedGeneration = r.Generation
	return r
}

// revDeployment is the Deployment kgate makes for a revision, with ready
// pods.
func revDeployment(r *servingv1.Revision, ready int32) *appsv1.Deployment {
	d := deploykube.Deployment(r, deploykube.Options{})
	d.Status.ReadyReplicas = ready
	return d
}

// routeService is a Route's ExternalName Service, pointing at target.
func routeService(route, target string, opts ...opt) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: route, Labels: map[string]string{LabelRoute: route}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: target,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
	for _, f := range opts {
		f(s)
	}
	return s
}

const internalGateway = "kgate-gateway-internal.kgate-system.svc.cluster.local"

// get reads an object from the fake API server, failing the test when it
// is not there.
func get[T client.Object](t *testing.T, c *Controller, o T, name string) T {
	t.Helper()
	if err := c.client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, o); err != nil {
		t.Fatalf("get %T %s: %v", o, name, err)
	}
	return o
}

func TestPublish(t *testing.T) {
	// readyHello is a Result with Service hello, its Configuration and its
	// Route all Ready; each call makes new objects.
	readyHello := func() knative.Result {
		return knative.Result{
			Services:       []*servingv1.Service{ksvc("hello", image("hello:1"), status(corev1.ConditionTrue, 0))},
			Configurations: []*servingv1.Configuration{kcfg("hello", image("hello:1"), labels(knative.LabelService, "hello"), status(corev1.ConditionTrue, 0))},
			Routes:         []*servingv1.Route{kroute("hello", traffic("hello", ""), labels(knative.LabelService, "hello"), status(corev1.ConditionTrue, 0))},
		}
	}
	tests := []struct {
		name string
		// cache is what the informer caches hold; result is the pipeline's.
		cache  []client.Object
		result knative.Result
		// before runs ahead of publish (the autoscaler's state).
		before func(t *testing.T, c *Controller)
		// queued are the writes publish queues, by key; calls the API calls
		// they make.
		queued, calls []string
		// check looks at what the API server holds then.
		check func(t *testing.T, c *Controller)
	}{
		// A Service's Configuration and Route.
		{
			name:  "a new Service's Configuration and Route are created, owned by it, with their statuses; the Service's waits for them",
			cache: []client.Object{ksvc("hello", image("hello:1"), generation(2))},
			result: knative.Result{
				Services:       []*servingv1.Service{ksvc("hello", image("hello:1"), status(corev1.ConditionUnknown, 0))},
				Configurations: []*servingv1.Configuration{kcfg("hello", image("hello:1"), labels(knative.LabelService, "hello"))},
				Routes:         []*servingv1.Route{kroute("hello", traffic("hello", ""), labels(knative.LabelService, "hello"))},
			},
			queued: []string{"Configuration/default/hello", "Route/default/hello"},
			calls: []string{"create Configuration default/hello", "create Route default/hello",
				"update status Configuration default/hello", "update status Route default/hello"},
			check: func(t *testing.T, c *Controller) {
				cfg := get(t, c, &servingv1.Configuration{}, "hello")
				if want := []metav1.OwnerReference{owner(servingv1.KindService, "hello")}; !equalRefs(cfg.OwnerReferences, want) {
					t.Errorf("the Configuration's owners are %v, want the Service: %v", cfg.OwnerReferences, want)
				}
				if cfg.Labels[knative.LabelService] != "hello" || cfg.Spec.Template.Spec.Containers[0].Image != "hello:1" {
					t.Errorf("the Configuration is not the result's: %+v", cfg)
				}
				rt := get(t, c, &servingv1.Route{}, "hello")
				if !equalRefs(rt.OwnerReferences, []metav1.OwnerReference{owner(servingv1.KindService, "hello")}) {
					t.Errorf("the Route's owners are %v, want the Service", rt.OwnerReferences)
				}
				if svc := get(t, c, &servingv1.Service{}, "hello"); len(svc.Status.Conditions) != 0 {
					t.Errorf("the Service's status is %+v, written before its Route's and Configuration's", svc.Status)
				}
			},
		},
		{
			name: "a Service's status waits for its Route to have one, then follows",
			cache: []client.Object{
				ksvc("hello", image("hello:1"), generation(2), status(corev1.ConditionUnknown, 2)),
				kcfg("hello", ownedBy(servingv1.KindService, "hello"), image("hello:1"), labels(knative.LabelService, "hello"),
					generation(1), status(corev1.ConditionTrue, 1)),
				kroute("hello", ownedBy(servingv1.KindService, "hello"), traffic("hello", ""), labels(knative.LabelService, "hello"),
					generation(1)),
			},
			result: readyHello(),
			queued: []string{"Route/default/hello"},
			calls:  []string{"update status Route default/hello"},
			check: func(t *testing.T, c *Controller) {
				// The same Result again, now that the Route's status landed.
				res := readyHello()
				c.publish(snap(t, c), &res)
				if got := queued(c); !slices.Equal(got, []string{"Service/default/hello"}) {
					t.Errorf("once the Route's status landed, publish queued %v, want the Service's alone", got)
				}
			},
		},
		{
			name: "nothing is written when the cache holds what the result says",
			cache: []client.Object{
				ksvc("hello", image("hello:1"), generation(2), status(corev1.ConditionTrue, 2)),
				kcfg("hello", ownedBy(servingv1.KindService, "hello"), image("hello:1"), labels(knative.LabelService, "hello"),
					generation(1), status(corev1.ConditionTrue, 1)),
				kroute("hello", ownedBy(servingv1.KindService, "hello"), traffic("hello", ""), labels(knative.LabelService, "hello"),
					generation(1), status(corev1.ConditionTrue, 1)),
			},
			result: knative.Result{
				Services:       []*servingv1.Service{ksvc("hello", image("hello:1"), status(corev1.ConditionTrue, 0))},
				Configurations: []*servingv1.Configuration{kcfg("hello", image("hello:1"), labels(knative.LabelService, "hello"), status(corev1.ConditionTrue, 0))},
				Routes:         []*servingv1.Route{kroute("hello", traffic("hello", ""), labels(knative.LabelService, "hello"), status(corev1.ConditionTrue, 0))},
			},
		},
		{
			name: "a derived Configuration whose template changed is updated, then its status observes the update",
			cache: []client.Object{
				ksvc("hello"),
				kcfg("hello", ownedBy(servingv1.KindService, "hello"), image("hello:1"), generation(1), status(corev1.ConditionTrue, 1)),
			},
			result: knative.Result{Configurations: []*servingv1.Configuration{kcfg("hello", image("hello:2"), status(corev1.ConditionUnknown, 0))}},
			queued: []string{"Configuration/default/hello"},
			calls:  []string{"update Configuration default/hello", "update status Configuration default/hello"},
			check: func(t *testing.T, c *Controller) {
				cfg := get(t, c, &servingv1.Configuration{}, "hello")
				if cfg.Spec.Template.Spec.Containers[0].Image != "hello:2" || cfg.Status.Conditions[0].Status != corev1.ConditionUnknown {
					t.Errorf("the Configuration is not the result's: %+v", cfg)
				}
				if !equalRefs(cfg.OwnerReferences, []metav1.OwnerReference{owner(servingv1.KindService, "hello")}) {
					t.Errorf("the update lost the owner: %v", cfg.OwnerReferences)
				}
			},
		},
		{
			name: "a derived Configuration whose labels changed is updated, then its status",
			cache: []client.Object{
				ksvc("hello"),
				kcfg("hello", ownedBy(servingv1.KindService, "hello"), image("hello:1"), labels(knative.LabelService, "hello"), status(corev1.ConditionTrue, 0)),
			},
			result: knative.Result{Configurations: []*servingv1.Configuration{kcfg("hello", image("hello:1"),
				labels(knative.LabelService, "hello", "team", "a"), status(corev1.ConditionTrue, 0))}},
			queued: []string{"Configuration/default/hello"},
			calls:  []string{"update Configuration default/hello", "update status Configuration default/hello"},
			check: func(t *testing.T, c *Controller) {
				if cfg := get(t, c, &servingv1.Configuration{}, "hello"); cfg.Labels["team"] != "a" {
					t.Errorf("labels %v, want the result's", cfg.Labels)
				}
			},
		},
		{
			name: "a derived Configuration whose status alone changed gets only its status",
			cache: []client.Object{
				ksvc("hello"),
				kcfg("hello", ownedBy(servingv1.KindService, "hello"), image("hello:1"), generation(3), status(corev1.ConditionUnknown, 2)),
			},
			result: knative.Result{Configurations: []*servingv1.Configuration{kcfg("hello", image("hello:1"), status(corev1.ConditionTrue, 0))}},
			queued: []string{"Configuration/default/hello"},
			calls:  []string{"update status Configuration default/hello"},
			check: func(t *testing.T, c *Controller) {
				cfg := get(t, c, &servingv1.Configuration{}, "hello")
				if cfg.Status.ObservedGeneration != 3 || cfg.Status.Conditions[0].Status != corev1.ConditionTrue {
					t.Errorf("status %+v, want Ready observing generation 3", cfg.Status)
				}
			},
		},
		{
			name: "a Configuration the Service of its name does not own gets only its status, never its spec",
			cache: []client.Object{
				ksvc("hello"),
				kcfg("hello", image("hello:1"), status(corev1.ConditionUnknown, 0)),
			},
			result: knative.Result{Configurations: []*servingv1.Configuration{kcfg("hello", image("hello:2"), status(corev1.ConditionTrue, 0))}},
			queued: []string{"Configuration/default/hello"},
			calls:  []string{"update status Configuration default/hello"},
			check: func(t *testing.T, c *Controller) {
				if cfg := get(t, c, &servingv1.Configuration{}, "hello"); cfg.Spec.Template.Spec.Containers[0].Image != "hello:1" {
					t.Errorf("the declared Configuration's spec was written: %+v", cfg.Spec)
				}
			},
		},
		{
			name:   "a derived object whose Service is not in the cache is not created",
			result: knative.Result{Configurations: []*servingv1.Configuration{kcfg("hello", image("hello:1"))}, Routes: []*servingv1.Route{kroute("hello", traffic("hello", ""))}},
		},
		{
			name: "a derived Route whose traffic changed is updated, then its status",
			cache: []client.Object{
				ksvc("hello"),
				kroute("hello", ownedBy(servingv1.KindService, "hello"), traffic("hello", ""), status(corev1.ConditionTrue, 0)),
			},
			result: knative.Result{Routes: []*servingv1.Route{kroute("hello", traffic("", "hello-00001"), status(corev1.ConditionTrue, 0))}},
			queued: []string{"Route/default/hello"},
			calls:  []string{"update Route default/hello", "update status Route default/hello"},
		},
		{
			name:   "a declared Route gets only its status",
			cache:  []client.Object{kroute("blue", traffic("hello", ""), status(corev1.ConditionUnknown, 0))},
			result: knative.Result{Routes: []*servingv1.Route{kroute("blue", traffic("hello", ""), status(corev1.ConditionTrue, 0))}},
			queued: []string{"Route/default/blue"},
			calls:  []string{"update status Route default/blue"},
		},

		// Revisions.
		{
			name:  "a new revision is created with the result's labels and spec, owned by its Configuration",
			cache: []client.Object{kcfg("hello", image("hello:1"))},
			result: knative.Result{Revisions: []*servingv1.Revision{
				krev("hello-00001", "hello", image("hello:1"), labels(knative.LabelConfiguration, "hello", "team", "a")),
			}},
			queued: []string{"Revision/default/hello-00001"},
			calls:  []string{"create Revision default/hello-00001"},
			check: func(t *testing.T, c *Controller) {
				rev := get(t, c, &servingv1.Revision{}, "hello-00001")
				if !equalRefs(rev.OwnerReferences, []metav1.OwnerReference{owner(servingv1.KindConfiguration, "hello")}) {
					t.Errorf("the revision's owners are %v, want its Configuration", rev.OwnerReferences)
				}
				if rev.Labels["team"] != "a" || rev.Spec.Containers[0].Image != "hello:1" {
					t.Errorf("the revision is not the result's: %+v", rev)
				}
			},
		},
		{
			name:   "a new revision whose Configuration is not in the cache yet waits for a later round",
			result: knative.Result{Revisions: []*servingv1.Revision{krev("hello-00001", "hello", image("hello:1"))}},
		},
		{
			name:   "a revision gets its Deployment, its private Service, and its status with no ready replicas",
			cache:  []client.Object{kcfg("hello"), krev("hello-00001", "hello", image("hello:1"), generation(1))},
			result: knative.Result{Revisions: []*servingv1.Revision{krev("hello-00001", "hello", image("hello:1"), status(corev1.ConditionUnknown, 0))}},
			queued: []string{"Deployment/default/hello-00001", "PrivateService/default/hello-00001", "Revision/default/hello-00001"},
			calls: []string{"create appsv1.Deployment default/hello-00001-deployment", "create corev1.Service default/hello-00001-private",
				"update status Revision default/hello-00001"},
			check: func(t *testing.T, c *Controller) {
				rev := get(t, c, &servingv1.Revision{}, "hello-00001")
				if a := rev.Status.ActualReplicas; a == nil || *a != 0 || rev.Status.ObservedGeneration != 1 || rev.Status.DesiredReplicas != nil {
					t.Errorf("revision status %+v, want actualReplicas 0, no desired replicas, observing generation 1", rev.Status)
				}
				d := get(t, c, &appsv1.Deployment{}, "hello-00001-deployment")
				if *d.Spec.Replicas != deploykube.DefaultInitialReplicas || d.Labels[deploykube.LabelRevision] != "hello-00001" {
					t.Errorf("the Deployment is not the revision's, at its initial scale: %+v", d.ObjectMeta)
				}
				if p := get(t, c, &corev1.Service{}, "hello-00001-private"); p.Labels[deploykube.LabelServiceType] != deploykube.ServiceTypePrivate {
					t.Errorf("the private Service's labels are %v", p.Labels)
				}
			},
		},
		{
			name:  "a revision's Deployment is created with the autoscaler's latest replicas",
			cache: []client.Object{kcfg("hello"), withActual(krev("hello-00001", "hello", image("hello:1")), 0)},
			before: func(t *testing.T, c *Controller) {
				c.scales.set("default/hello-00001", 3)
			},
			result: knative.Result{Revisions: []*servingv1.Revision{krev("hello-00001", "hello", image("hello:1"))}},
			queued: []string{"Deployment/default/hello-00001", "PrivateService/default/hello-00001"},
			calls:  []string{"create appsv1.Deployment default/hello-00001-deployment", "create corev1.Service default/hello-00001-private"},
			check: func(t *testing.T, c *Controller) {
				if d := get(t, c, &appsv1.Deployment{}, "hello-00001-deployment"); *d.Spec.Replicas != 3 {
					t.Errorf("the Deployment has %d replicas, want the autoscaler's 3", *d.Spec.Replicas)
				}
			},
		},
		{
			name: "a revision's ready pods show in its status",
			cache: []client.Object{
				kcfg("hello"), withActual(krev("hello-00001", "hello", image("hello:1")), 0),
				revDeployment(krev("hello-00001", "hello", image("hello:1")), 2),
				deploykube.PrivateService(krev("hello-00001", "hello", image("hello:1"))),
			},
			result: knative.Result{Revisions: []*servingv1.Revision{krev("hello-00001", "hello", image("hello:1"))}},
			queued: []string{"Revision/default/hello-00001"},
			calls:  []string{"update status Revision default/hello-00001"},
			check: func(t *testing.T, c *Controller) {
				if a := get(t, c, &servingv1.Revision{}, "hello-00001").Status.ActualReplicas; a == nil || *a != 2 {
					t.Errorf("actualReplicas %v, want 2", a)
				}
			},
		},
		{
			name: "a revision's status shows the autoscaler's decision and routing mode",
			cache: []client.Object{
				kcfg("hello"), withActual(krev("hello-00001", "hello", image("hello:1")), 0),
				revDeployment(krev("hello-00001", "hello", image("hello:1")), 0),
				deploykube.PrivateService(krev("hello-00001", "hello", image("hello:1"))),
			},
			before: func(t *testing.T, c *Controller) {
				// A new revision starts at its initial scale, 1.
				if errs := c.loop.Configure(t.Context(), time.Now(), config.DefaultAutoscaler(), []loop.Revision{{Key: "default/hello-00001"}}); len(errs) > 0 {
					t.Fatal(errs)
				}
			},
			result: knative.Result{Revisions: []*servingv1.Revision{krev("hello-00001", "hello", image("hello:1"))}},
			queued: []string{"Revision/default/hello-00001"},
			calls:  []string{"update status Revision default/hello-00001"},
			check: func(t *testing.T, c *Controller) {
				st := get(t, c, &servingv1.Revision{}, "hello-00001").Status
				if d := st.DesiredReplicas; d == nil || *d != 1 || st.Annotations[knative.AnnotationRoutingMode] != string(model.Serve) {
					t.Errorf("status %+v, want desiredReplicas 1 and routing mode Serve", st)
				}
			},
		},
		{
			name: "nothing is written for a revision with its Deployment, private Service and status",
			cache: []client.Object{
				kcfg("hello"), withActual(krev("hello-00001", "hello", image("hello:1"), generation(1), status(corev1.ConditionTrue, 0)), 2),
				revDeployment(krev("hello-00001", "hello", image("hello:1")), 2),
				deploykube.PrivateService(krev("hello-00001", "hello", image("hello:1"))),
			},
			result: knative.Result{Revisions: []*servingv1.Revision{krev("hello-00001", "hello", image("hello:1"), status(corev1.ConditionTrue, 0))}},
		},

		// The Routes' ExternalName Services.
		{
			name:   "a served Route gets an ExternalName Service to the internal gateway, owned by the Route",
			cache:  []client.Object{kroute("hello", traffic("hello", ""), status(corev1.ConditionTrue, 0), addressed())},
			result: knative.Result{Routes: []*servingv1.Route{kroute("hello", traffic("hello", ""), status(corev1.ConditionTrue, 0), addressed())}},
			queued: []string{"RouteService/default/hello"},
			calls:  []string{"create corev1.Service default/hello"},
			check: func(t *testing.T, c *Controller) {
				s := get(t, c, &corev1.Service{}, "hello")
				if s.Spec.Type != corev1.ServiceTypeExternalName || s.Spec.ExternalName != internalGateway || s.Labels[LabelRoute] != "hello" {
					t.Errorf("the Route's Service is %+v, want an ExternalName to %s labelled with the Route", s, internalGateway)
				}
				if !equalRefs(s.OwnerReferences, []metav1.OwnerReference{owner(servingv1.KindRoute, "hello")}) {
					t.Errorf("the Route's Service's owners are %v, want the Route", s.OwnerReferences)
				}
			},
		},
		{
			name:   "a Route without an address (not served) gets no ExternalName Service",
			cache:  []client.Object{kroute("hello", traffic("hello", ""), status(corev1.ConditionFalse, 0))},
			result: knative.Result{Routes: []*servingv1.Route{kroute("hello", traffic("hello", ""), status(corev1.ConditionFalse, 0))}},
		},
		{
			name:   "a served Route not in the cache yet gets no ExternalName Service",
			result: knative.Result{Routes: []*servingv1.Route{kroute("hello", traffic("hello", ""), addressed())}},
		},
		{
			name: "the Route's ExternalName Service pointing elsewhere is pointed at the internal gateway",
			cache: []client.Object{
				kroute("hello", traffic("hello", ""), addressed()),
				routeService("hello", "old-gateway.kgate-system.svc.cluster.local", ownedBy(servingv1.KindRoute, "hello")),
			},
			result: knative.Result{Routes: []*servingv1.Route{kroute("hello", traffic("hello", ""), addressed())}},
			queued: []string{"RouteService/default/hello"},
			calls:  []string{"update corev1.Service default/hello"},
			check: func(t *testing.T, c *Controller) {
				if s := get(t, c, &corev1.Service{}, "hello"); s.Spec.ExternalName != internalGateway {
					t.Errorf("externalName %q, want %q", s.Spec.ExternalName, internalGateway)
				}
			},
		},
		{
			name: "an ExternalName Service pointing at the internal gateway is left alone",
			cache: []client.Object{
				kroute("hello", traffic("hello", ""), addressed()),
				routeService("hello", internalGateway),
			},
			result: knative.Result{Routes: []*servingv1.Route{kroute("hello", traffic("hello", ""), addressed())}},
		},

		// Pruning.
		{
			name: "what lost its owner is deleted",
			cache: []client.Object{
				kcfg("gone", ownedBy(servingv1.KindService, "gone")),
				kroute("gone", ownedBy(servingv1.KindService, "gone")),
				krev("orphan-00001", "orphan", ownedBy(servingv1.KindConfiguration, "orphan")),
				revDeployment(krev("lost-00001", "lost"), 1),
				deploykube.PrivateService(krev("lost-00001", "lost")),
				routeService("lost", internalGateway, ownedBy(servingv1.KindRoute, "lost")),
			},
			queued: []string{"Configuration/default/gone", "Deployment/default/lost-00001", "PrivateService/default/lost-00001",
				"Revision/default/orphan-00001", "Route/default/gone", "RouteService/default/lost"},
			calls: []string{"delete Configuration default/gone", "delete Revision default/orphan-00001", "delete Route default/gone",
				"delete appsv1.Deployment default/lost-00001-deployment", "delete corev1.Service default/lost",
				"delete corev1.Service default/lost-00001-private"},
		},
		{
			name: "what kgate does not control is never deleted",
			cache: []client.Object{
				kcfg("declared"),
				kroute("shared", func(o client.Object) {
					o.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: servingv1.APIVersion, Kind: servingv1.KindService, Name: "gone", UID: "x"}})
				}),
				krev("standalone-00001", "standalone"),
				routeService("unowned", "elsewhere.example.org"),
			},
		},
		{
			name: "what still has its owner stays",
			cache: []client.Object{
				ksvc("hello"),
				kcfg("hello", ownedBy(servingv1.KindService, "hello")),
				kroute("hello", ownedBy(servingv1.KindService, "hello")),
				krev("hello-00001", "hello", ownedBy(servingv1.KindConfiguration, "hello")),
				revDeployment(krev("hello-00001", "hello"), 1),
				deploykube.PrivateService(krev("hello-00001", "hello")),
				routeService("hello", internalGateway, ownedBy(servingv1.KindRoute, "hello")),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, calls := newTestController(t, tt.cache...)
			if tt.before != nil {
				tt.before(t, c)
			}
			res := tt.result
			c.publish(snap(t, c), &res)
			if got := queued(c); !slices.Equal(got, tt.queued) {
				t.Errorf("queued writes:\n got %q\nwant %q", got, tt.queued)
			}
			flush(t, c)
			if got := calls.take(); !slices.Equal(got, tt.calls) {
				t.Errorf("API calls:\n got %q\nwant %q", got, tt.calls)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func equalRefs(a, b []metav1.OwnerReference) bool {
	return slices.EqualFunc(a, b, func(x, y metav1.OwnerReference) bool {
		return x.APIVersion == y.APIVersion && x.Kind == y.Kind && x.Name == y.Name && x.UID == y.UID &&
			x.Controller != nil && y.Controller != nil && *x.Controller == *y.Controller &&
			(x.BlockOwnerDeletion != nil) == (y.BlockOwnerDeletion != nil) &&
			(x.BlockOwnerDeletion == nil || *x.BlockOwnerDeletion == *y.BlockOwnerDeletion)
	})
}

// TestMarksOutliveTheWritesOfTenThousandServices: while 10,000 Services'
// writes wait, each holds marks for its Service, Configuration, Route and
// revision, and for its Deployment and private Service created; none is
// dropped for being too many (the bound was 4 per revision, and every
// round at 10,000 compared and queued everything again). Past twice what
// the objects can hold, the marks start over.
func TestMarksOutliveTheWritesOfTenThousandServices(t *testing.T) {
	const n = 10000
	s := &snapshot{
		services: map[string]*servingv1.Service{}, configurations: map[string]*servingv1.Configuration{},
		routes: map[string]*servingv1.Route{}, revisions: map[string]*servingv1.Revision{},
	}
	for i := range n {
		key := fmt.Sprintf("default/s-%05d", i)
		s.services[key], s.configurations[key], s.routes[key] = &servingv1.Service{}, &servingv1.Configuration{}, &servingv1.Route{}
		s.revisions[key+"-00001"] = &servingv1.Revision{}
	}
	c, _ := newTestController(t)
	c.publish(s, &knative.Result{})
	want := &struct{}{}
	kinds := []string{"Service", "Configuration", "Route", "Revision", "Deployment", "PrivateService"}
	for i := range n {
		for _, kind := range kinds {
			c.settle(fmt.Sprintf("%s/default/s-%05d", kind, i), want, nil)
		}
	}
	if got := len(c.st.settled); got != n*len(kinds) {
		t.Fatalf("%d marks kept, want all %d", got, n*len(kinds))
	}
	for i := 0; len(c.st.settled) >= n*len(kinds); i++ {
		if i > 2*marksBound(s) {
			t.Fatal("the marks never start over")
		}
		c.settle(fmt.Sprintf("Gone/%d", i), want, nil)
	}
}

// TestACreateIsQueuedOnceWhileItsRevisionChanges: a revision's Deployment
// and private Service are queued once, and not again when the revision's
// status changes before they show in the cache (they would fail as
// duplicates once the first create landed).
func TestACreateIsQueuedOnceWhileItsRevisionChanges(t *testing.T) {
	rev := krev("hello-00001", "hello")
	rev.UID = "rev-uid"
	c, _ := newTestController(t, rev)
	res := &knative.Result{Revisions: []*servingv1.Revision{krev("hello-00001", "hello")}, Config: config.Default()}
	c.publishRevisions(snap(t, c), res)
	creates := []string{"Deployment/default/hello-00001", "PrivateService/default/hello-00001"}
	for _, key := range creates {
		if !slices.Contains(queued(c), key) {
			t.Fatalf("%s not queued: %v", key, queued(c))
		}
		c.writes.take(key) // under way: not in the cache yet
	}
	// The revision's status is written meanwhile: a new object.
	var now servingv1.Revision
	if err := c.client.Get(t.Context(), client.ObjectKey{Namespace: "default", Name: "hello-00001"}, &now); err != nil {
		t.Fatal(err)
	}
	now.Status.ObservedGeneration = 7
	if err := c.client.Status().Update(t.Context(), &now); err != nil {
		t.Fatal(err)
	}
	c.publishRevisions(snap(t, c), res)
	for _, key := range creates {
		if slices.Contains(queued(c), key) {
			t.Errorf("%s queued again after the revision's status changed", key)
		}
	}
}
