package kube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/api/manifest"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	deploykube "github.com/kgate/kgate/deploy/kube"
	"github.com/kgate/kgate/watcher"
	"github.com/kgate/kgate/watcher/knative"
)

// ref is an owner reference of a kind of serving.knative.dev/v1,
// controlling or not.
func ref(kind, name string, controller bool) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: servingv1.APIVersion, Kind: kind, Name: name, UID: types.UID("uid-" + name), Controller: &controller}
}

func TestControllerOf(t *testing.T) {
	tests := []struct {
		name    string
		refs    []metav1.OwnerReference
		kind    string
		want    string // the controller's name; "" when none
		derived bool   // isDerived: controlled by a Knative Service
	}{
		{name: "no owner", refs: nil, kind: servingv1.KindService},
		{name: "a controlling Service", refs: []metav1.OwnerReference{ref(servingv1.KindService, "hello", true)},
			kind: servingv1.KindService, want: "hello", derived: true},
		{name: "a Service that owns but does not control",
			refs: []metav1.OwnerReference{ref(servingv1.KindService, "hello", false)}, kind: servingv1.KindService},
		{name: "a controller reference with no controller flag",
			refs: []metav1.OwnerReference{{APIVersion: servingv1.APIVersion, Kind: servingv1.KindService, Name: "hello"}}, kind: servingv1.KindService},
		{name: "a controller of another kind", refs: []metav1.OwnerReference{ref(servingv1.KindConfiguration, "hello", true)},
			kind: servingv1.KindService},
		{name: "the controller asked for, after other owners",
			refs: []metav1.OwnerReference{ref(servingv1.KindService, "other", false), ref(servingv1.KindConfiguration, "hello", true)},
			kind: servingv1.KindConfiguration, want: "hello"},
		{name: "a controlling Service of another API group (a core Service)",
			refs: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: "hello", Controller: new(true)}},
			kind: servingv1.KindService},
		{name: "a controlling Service of another version",
			refs: []metav1.OwnerReference{{APIVersion: "serving.knative.dev/v1alpha1", Kind: "Service", Name: "hello", Controller: new(true)}},
			kind: servingv1.KindService},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := controllerOf(tt.refs, tt.kind)
			if ok != (tt.want != "") || r.Name != tt.want {
				t.Errorf("controllerOf(%s) = %q, %v; want %q", tt.kind, r.Name, ok, tt.want)
			}
			if got := isDerived(tt.refs); got != tt.derived {
				t.Errorf("isDerived = %v, want %v", got, tt.derived)
			}
		})
	}
}

func TestControllerRefIsFoundByControllerOf(t *testing.T) {
	svc := &servingv1.Service{ObjectMeta: metav1.ObjectMeta{Name: "hello", UID: "u1"}}
	r := controllerRef(svc, servingv1.KindService)
	want := metav1.OwnerReference{APIVersion: servingv1.APIVersion, Kind: servingv1.KindService, Name: "hello", UID: "u1",
		Controller: new(true), BlockOwnerDeletion: new(true)}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("controllerRef = %+v, want %+v", r, want)
	}
	if !isDerived([]metav1.OwnerReference{r}) {
		t.Error("an object with the Service's controllerRef is not derived")
	}
}

func TestHasDomains(t *testing.T) {
	tests := []struct {
		name string
		data map[string]string
		want bool
	}{
		{name: "no data", data: nil, want: false},
		{name: "Knative's _example only", data: map[string]string{"_example": "…"}, want: false},
		{name: "a domain", data: map[string]string{"example.org": ""}, want: true},
		{name: "a domain beside _example", data: map[string]string{"_example": "…", "svc.example.org": "selector:\n  app: x"}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hasDomains(tt.data); got != tt.want {
				t.Errorf("hasDomains(%v) = %v, want %v", tt.data, got, tt.want)
			}
		})
	}
}

func deployment(conds ...appsv1.DeploymentCondition) *appsv1.Deployment {
	return &appsv1.Deployment{Status: appsv1.DeploymentStatus{Conditions: conds}}
}

func TestDeploymentFailure(t *testing.T) {
	tests := []struct {
		name   string
		dep    *appsv1.Deployment
		want   knative.Failure
		failed bool
	}{
		{name: "no conditions: not failed", dep: deployment()},
		{name: "progressing: not failed", dep: deployment(appsv1.DeploymentCondition{
			Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"})},
		{name: "progress deadline exceeded: failed, in Knative's words",
			dep: deployment(appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
				Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "x" has timed out progressing.`}),
			want: knative.Failure{Reason: "ProgressDeadlineExceeded",
				Message: `Initial scale was never achieved: ReplicaSet "x" has timed out progressing.`}, failed: true},
		{name: "not progressing for another reason: not failed", dep: deployment(appsv1.DeploymentCondition{
			Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "Paused"})},
		{name: "pods cannot be created: failed with the Deployment's reason",
			dep: deployment(appsv1.DeploymentCondition{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue,
				Reason: "FailedCreate", Message: `pods "x" is forbidden: exceeded quota`}),
			want: knative.Failure{Reason: "FailedCreate", Message: `pods "x" is forbidden: exceeded quota`}, failed: true},
		{name: "replica failure resolved: not failed", dep: deployment(appsv1.DeploymentCondition{
			Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionFalse, Reason: "FailedCreate"})},
		{name: "available but unavailable pods: not failed", dep: deployment(appsv1.DeploymentCondition{
			Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, Reason: "MinimumReplicasUnavailable"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, failed := deploymentFailure(tt.dep)
			if got != tt.want || failed != tt.failed {
				t.Errorf("deploymentFailure = %+v, %v; want %+v, %v", got, failed, tt.want, tt.failed)
			}
		})
	}
}

func gateway(ingress ...corev1.LoadBalancerIngress) *corev1.Service {
	return &corev1.Service{Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: ingress}}}
}

func TestExternalIP(t *testing.T) {
	tests := []struct {
		name string
		gw   *corev1.Service
		want string
	}{
		{name: "no gateway Service", gw: nil, want: ""},
		{name: "no load balancer yet", gw: gateway(), want: ""},
		{name: "a hostname only", gw: gateway(corev1.LoadBalancerIngress{Hostname: "lb.example.org"}), want: ""},
		{name: "an IP", gw: gateway(corev1.LoadBalancerIngress{IP: "203.0.113.7"}), want: "203.0.113.7"},
		{name: "the first IP, after a hostname", gw: gateway(corev1.LoadBalancerIngress{Hostname: "lb.example.org"},
			corev1.LoadBalancerIngress{IP: "203.0.113.7"}, corev1.LoadBalancerIngress{IP: "203.0.113.8"}), want: "203.0.113.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := externalIP(tt.gw); got != tt.want {
				t.Errorf("externalIP = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBaseFollowsTheGateway(t *testing.T) {
	// Rounds in order: the gateway each sees, and the base domain each
	// hands the pipeline ("" when it hands none: nothing changed).
	steps := []struct {
		name string
		gw   *corev1.Service
		want string
	}{
		{name: "the first round, no gateway: Knative's default domain", gw: nil, want: config.DefaultDomainName},
		{name: "still no gateway: unchanged", gw: nil, want: ""},
		{name: "a gateway without an address: unchanged", gw: gateway(), want: ""},
		{name: "the gateway gets an IP: magic DNS", gw: gateway(corev1.LoadBalancerIngress{IP: "203.0.113.7"}), want: "203.0.113.7.sslip.io"},
		{name: "the same IP: unchanged", gw: gateway(corev1.LoadBalancerIngress{IP: "203.0.113.7"}), want: ""},
		{name: "a new IP", gw: gateway(corev1.LoadBalancerIngress{IP: "203.0.113.8"}), want: "203.0.113.8.sslip.io"},
		{name: "the IP is gone: back to the default", gw: gateway(), want: config.DefaultDomainName},
	}
	c := &Controller{log: discard}
	c.st.init()
	for i, step := range steps {
		base := c.base(&snapshot{gateway: step.gw})
		got := ""
		if base != nil {
			got = domainNames(base.Domain)
			want := config.Default()
			want.Domain = base.Domain
			if !reflect.DeepEqual(*base, want) {
				t.Errorf("round %d (%s): the base is not Knative's defaults but for the domain", i+1, step.name)
			}
		}
		if got != step.want {
			t.Errorf("round %d (%s): base domain %q, want %q", i+1, step.name, got, step.want)
		}
	}
}

// cacheDeployment is a revision's Deployment as the cache holds it.
func cacheDeployment(rev string, ready int32, conds ...appsv1.DeploymentCondition) *appsv1.Deployment {
	d := deployment(conds...)
	d.Namespace, d.Name = "default", rev+"-deployment"
	d.Labels = map[string]string{deploykube.LabelRevision: rev}
	d.Status.ReadyReplicas = ready
	return d
}

func TestChange(t *testing.T) {
	owned := []metav1.OwnerReference{ref(servingv1.KindService, "hello", true)}
	s := &snapshot{
		services: map[string]*servingv1.Service{
			"default/hello": {ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hello"}},
			"apps/a":        {ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "a"}},
		},
		configurations: map[string]*servingv1.Configuration{
			"default/hello":    {ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hello", OwnerReferences: owned}},
			"default/declared": {ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "declared"}},
		},
		routes: map[string]*servingv1.Route{
			"default/hello":    {ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hello", OwnerReferences: owned}},
			"default/declared": {ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "declared"}},
			// Owned, but not controlled, by a Service: declared.
			"default/shared": {ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "shared",
				OwnerReferences: []metav1.OwnerReference{ref(servingv1.KindService, "hello", false)}}},
		},
		revisions: map[string]*servingv1.Revision{
			"default/hello-00001": {ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hello-00001"}},
		},
		configMaps: []*corev1.ConfigMap{
			{ObjectMeta: metav1.ObjectMeta{Namespace: "kgate-system", Name: config.DomainConfigName}, Data: map[string]string{"_example": "…"}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "kgate-system", Name: "config-autoscaler"}, Data: map[string]string{"stable-window": "60s"}},
		},
		deployments: map[string]*appsv1.Deployment{
			"default/ready-00001":    cacheDeployment("ready-00001", 2),
			"default/starting-00001": cacheDeployment("starting-00001", 0),
			"default/stuck-00001": cacheDeployment("stuck-00001", 0, appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing,
				Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded", Message: "timed out"}),
			// Failed beats ready: a Deployment with ready pods that cannot
			// create more is failed.
			"default/quota-00001": cacheDeployment("quota-00001", 1, appsv1.DeploymentCondition{Type: appsv1.DeploymentReplicaFailure,
				Status: corev1.ConditionTrue, Reason: "FailedCreate", Message: "exceeded quota"}),
		},
	}
	c := &Controller{log: discard}
	c.st.init()
	ch := c.change(s)

	if !ch.Replace {
		t.Error("the change does not replace every declared object")
	}
	var objs []string // "Kind namespace/name"
	for _, o := range ch.Objects {
		objs = append(objs, o.Kind+" "+o.Namespace+"/"+o.Name)
		if o.File != "kubernetes" {
			t.Errorf("%s %s/%s: file %q, want kubernetes", o.Kind, o.Namespace, o.Name, o.File)
		}
		if want := servingv1.APIVersion; o.Kind == "ConfigMap" {
			if o.APIVersion != "v1" {
				t.Errorf("ConfigMap %s: apiVersion %q, want v1", o.Name, o.APIVersion)
			}
		} else if o.APIVersion != want {
			t.Errorf("%s %s/%s: apiVersion %q, want %q", o.Kind, o.Namespace, o.Name, o.APIVersion, want)
		}
	}
	// Services first, then the declared Configurations and Routes, each
	// sorted; the derived ones are the reconciler's output, not its input;
	// revisions are never input; config-domain without a domain is left
	// out so that the base (magic DNS) applies.
	wantObjs := []string{
		"Service apps/a", "Service default/hello",
		"Configuration default/declared",
		"Route default/declared", "Route default/shared",
		"ConfigMap kgate-system/config-autoscaler",
	}
	if !slices.Equal(objs, wantObjs) {
		t.Errorf("objects:\n got %q\nwant %q", objs, wantObjs)
	}
	wantFailed := map[string]knative.Failure{
		"default/stuck-00001": {Reason: "ProgressDeadlineExceeded", Message: "Initial scale was never achieved: timed out"},
		"default/quota-00001": {Reason: "FailedCreate", Message: "exceeded quota"},
	}
	if !maps.Equal(ch.Failed, wantFailed) {
		t.Errorf("failed = %v, want %v", ch.Failed, wantFailed)
	}
	if got := slices.Sorted(slices.Values(ch.Ready)); !slices.Equal(got, []string{"default/ready-00001"}) {
		t.Errorf("ready = %v, want [default/ready-00001]", got)
	}
	if ch.Base == nil || domainNames(ch.Base.Domain) != config.DefaultDomainName {
		t.Errorf("the first change's base = %v, want Knative's default domain", ch.Base)
	}
	if again := c.change(s); again.Base != nil {
		t.Errorf("a change with the same gateway sets the base again: %v", again.Base)
	}
}

func TestChangeConfigDomain(t *testing.T) {
	tests := []struct {
		name string
		data map[string]string
		in   bool // config-domain is in the change
	}{
		{name: "no data: magic DNS applies", data: nil, in: false},
		{name: "only Knative's example: magic DNS applies", data: map[string]string{"_example": "…"}, in: false},
		{name: "a domain: config-domain applies", data: map[string]string{"example.org": ""}, in: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Controller{log: discard}
			c.st.init()
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kgate-system", Name: config.DomainConfigName}, Data: tt.data}
			ch := c.change(&snapshot{configMaps: []*corev1.ConfigMap{cm}})
			in := slices.ContainsFunc(ch.Objects, func(o manifest.Object) bool { return o.Name == config.DomainConfigName })
			if in != tt.in {
				t.Errorf("config-domain in the change: %v, want %v", in, tt.in)
			}
			if len(ch.Failed) != 0 || len(ch.Ready) != 0 || ch.Failed == nil {
				t.Errorf("with no Deployments: failed %v (want empty, not nil: it replaces), ready %v", ch.Failed, ch.Ready)
			}
		})
	}
}

// converge runs rounds, each followed by its writes, until a round has
// nothing to write, and returns how many ran.
func converge(t *testing.T, c *Controller) int {
	t.Helper()
	for i := range 10 {
		if err := c.round(t.Context()); err != nil {
			t.Fatalf("round %d: %v", i+1, err)
		}
		if len(queued(c)) == 0 {
			return i + 1
		}
		flush(t, c)
	}
	t.Fatalf("still writing after 10 rounds: %v", queued(c))
	return 0
}

// names lists the names of the objects of a kind in the default namespace.
func names(t *testing.T, c *Controller, list client.ObjectList) []string {
	t.Helper()
	if err := c.client.List(t.Context(), list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range items {
		out = append(out, o.(client.Object).GetName())
	}
	slices.Sort(out)
	return out
}

func readyStatus(conds []servingv1.Condition) corev1.ConditionStatus {
	for _, c := range conds {
		if c.Type == servingv1.ConditionReady {
			return c.Status
		}
	}
	return ""
}

// TestRoundsConverge runs whole rounds (read, reconcile, publish) against
// the fake API server, the test playing the kubelet: a Service becomes its
// objects, becomes Ready when its pods are, and a round after that writes
// nothing; deleting the Service removes everything derived from it.
func TestRoundsConverge(t *testing.T) {
	c, _ := newTestController(t, ksvc("hello", image("example.org/hello:1"), generation(1)))

	converge(t, c)
	for _, k := range []struct {
		list client.ObjectList
		want []string
	}{
		{&servingv1.ConfigurationList{}, []string{"hello"}},
		{&servingv1.RouteList{}, []string{"hello"}},
		{&servingv1.RevisionList{}, []string{"hello-00001"}},
		{&appsv1.DeploymentList{}, []string{"hello-00001-deployment"}},
		{&corev1.ServiceList{}, []string{"hello", "hello-00001-private"}},
	} {
		if got := names(t, c, k.list); !slices.Equal(got, k.want) {
			t.Errorf("%T: %v, want %v", k.list, got, k.want)
		}
	}
	svc := get(t, c, &servingv1.Service{}, "hello")
	if got := readyStatus(svc.Status.Conditions); got == corev1.ConditionTrue {
		t.Errorf("the Service is Ready before its revision has a pod")
	}
	if svc.Status.ObservedGeneration != 1 || svc.Status.LatestCreatedRevisionName != "hello-00001" {
		t.Errorf("Service status %+v, want generation 1 observed and hello-00001 created", svc.Status)
	}

	// The kubelet: the revision's pod is ready.
	d := get(t, c, &appsv1.Deployment{}, "hello-00001-deployment")
	d.Status.ReadyReplicas = 1
	if err := c.client.Status().Update(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	converge(t, c)
	if got := readyStatus(get(t, c, &servingv1.Revision{}, "hello-00001").Status.Conditions); got != corev1.ConditionTrue {
		t.Errorf("the revision with a ready pod is Ready %q, want True", got)
	}
	if got := readyStatus(get(t, c, &servingv1.Service{}, "hello").Status.Conditions); got != corev1.ConditionTrue {
		t.Errorf("the Service is Ready %q, want True", got)
	}
	if n := converge(t, c); n != 1 {
		t.Errorf("a round with nothing changed was followed by %d more", n-1)
	}

	// A new template makes a second revision, which takes the traffic once
	// its pod is ready.
	svc = get(t, c, &servingv1.Service{}, "hello")
	svc.Spec.Template.Spec.Containers[0].Image = "example.org/hello:2"
	svc.Generation = 2 // the fake API server does not count generations
	if err := c.client.Update(t.Context(), svc); err != nil {
		t.Fatal(err)
	}
	converge(t, c)
	d = get(t, c, &appsv1.Deployment{}, "hello-00002-deployment")
	d.Status.ReadyReplicas = 1
	if err := c.client.Status().Update(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	converge(t, c)
	if st := get(t, c, &servingv1.Service{}, "hello").Status; st.LatestReadyRevisionName != "hello-00002" || st.ObservedGeneration != 2 {
		t.Errorf("Service status %+v, want hello-00002 ready and generation 2 observed", st)
	}

	// Another controller (a restart, a new leader), an hour later, restores
	// the reconciler's memory from what the API server stores: its first
	// round derives what this one did (revision names, condition times),
	// and writes nothing.
	next := newTestControllerOn(t, c.client)
	later := statusTime.Add(time.Hour)
	next.pipe = watcher.New(watcher.Options{Routing: nopRouting{}, Deployed: true, Logger: discard,
		Now: func() time.Time { return later }})
	if err := next.restore(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := next.round(t.Context()); err != nil {
		t.Fatalf("the restored controller's first round: %v", err)
	}
	if q := queued(next); len(q) != 0 {
		t.Errorf("the restored controller's first round writes %v, want nothing", q)
	}
	c = next

	if err := c.client.Delete(t.Context(), ksvc("hello")); err != nil {
		t.Fatal(err)
	}
	converge(t, c)
	for _, list := range []client.ObjectList{&servingv1.ConfigurationList{}, &servingv1.RouteList{}, &servingv1.RevisionList{},
		&appsv1.DeploymentList{}, &corev1.ServiceList{}} {
		if got := names(t, c, list); len(got) != 0 {
			t.Errorf("%T left after the Service was deleted: %v", list, got)
		}
	}
}

// A revision that starts at zero is Ready as soon as the autoscaler decides
// so, inside the round that made it: a second pass of that round routes it,
// and its statuses are written Ready the first time (none not Ready
// first), by one round.
func TestRoundRoutesARevisionAtZeroInTheRoundThatMadeIt(t *testing.T) {
	atZero := func(o client.Object) {
		o.(*servingv1.Service).Spec.Template.Annotations = map[string]string{"autoscaling.knative.dev/initial-scale": "0"}
	}
	allowZero := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kgate-system", Name: "config-autoscaler"},
		Data:       map[string]string{"allow-zero-initial-scale": "true"},
	}
	c, _ := newTestController(t, ksvc("hello", image("example.org/hello:1"), generation(1), atZero), allowZero)
	for _, name := range []string{"hello", "second"} {
		if name == "second" {
			// A Service created later, at zero from the start too.
			if err := c.client.Create(t.Context(), ksvc("second", image("example.org/hello:1"), generation(1), atZero)); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.round(t.Context()); err != nil {
			t.Fatal(err)
		}
		if c.pipe.Pending() {
			t.Errorf("%s: the round left the autoscaler's decision queued for the next", name)
		}
		// In one pass: the last is the one that made the revision.
		if got := c.pipe.Current().ReadyAtZero; !slices.Contains(got, "default/"+name+"-00001") {
			t.Errorf("%s: the round's last pass made %v at zero, want its revision: a second pass ran", name, got)
		}
		if got := modelHosts(c); !slices.Contains(got, name+".default.example.com") {
			t.Errorf("%s: after one round the gateways are pushed %v, want its host", name, got)
		}
		// The Service's status follows its Route's, its Configuration's
		// and its revision's, which this round and the next ones create
		// and write: Ready from the first.
		flush(t, c)
		for i := 0; readyStatus(get(t, c, &servingv1.Service{}, name).Status.Conditions) == ""; i++ {
			if i == 4 {
				t.Fatalf("%s: no status written for the Service in 4 rounds", name)
			}
			if err := c.round(t.Context()); err != nil {
				t.Fatal(err)
			}
			flush(t, c)
		}
		if got := readyStatus(get(t, c, &servingv1.Service{}, name).Status.Conditions); got != corev1.ConditionTrue {
			t.Errorf("%s: the Service's first status is Ready %q, want True", name, got)
		}
		if rt := get(t, c, &servingv1.Route{}, name); rt.Status.URL == nil || readyStatus(rt.Status.Conditions) != corev1.ConditionTrue {
			t.Errorf("%s: the Service is Ready, its Route's status %+v is not", name, rt.Status)
		}
		var rev servingv1.Revision
		if err := c.client.Get(t.Context(), client.ObjectKey{Namespace: "default", Name: name + "-00001"}, &rev); err != nil || readyStatus(rev.Status.Conditions) != corev1.ConditionTrue {
			t.Errorf("%s: the Service is Ready, its revision is not (%v, %+v)", name, err, rev.Status.Conditions)
		}
	}
}

// Once the API server holds what a round derives, a round with nothing
// changed is incremental and compares nothing again: every object it would
// write is marked settled for the very Result and cache objects it has, so
// 10,000 unchanged Services cost no comparisons (publish.go).
func TestSteadyRoundComparesNothing(t *testing.T) {
	c, calls := newTestController(t, ksvc("hello", image("example.org/hello:1"), generation(1)), ksvc("bye", image("example.org/bye:1"), generation(1)))
	converge(t, c)
	calls.take()
	if err := c.round(t.Context()); err != nil {
		t.Fatal(err)
	}
	res := c.pipe.Current()
	if res.Changed == nil {
		t.Fatalf("a round with nothing changed was a full one")
	}
	if res.Recomputed != 0 {
		t.Errorf("a round with nothing changed recomputed %d units", res.Recomputed)
	}
	if q := queued(c); len(q) != 0 {
		t.Errorf("a round with nothing changed queued writes %v", q)
	}
	for _, key := range []string{"Service/default/hello", "Configuration/default/hello", "Route/default/hello", "Revision/default/hello-00001",
		"Service/default/bye", "Configuration/default/bye", "Route/default/bye", "Revision/default/bye-00001"} {
		if _, ok := c.st.settled[key]; !ok {
			t.Errorf("%s is not settled: every round compares it again", key)
		}
	}
}

// A write waiting in the writer stands for its objects: rounds meanwhile
// neither compare them again nor queue the write twice; one that fails is
// compared and queued again by the next round.
func TestQueuedWriteStandsUntilItFails(t *testing.T) {
	// A new image: the next round writes the Configuration's status, and more.
	c := newImageAfterConverging(t)
	if err := c.round(t.Context()); err != nil {
		t.Fatal(err)
	}
	const key = "Configuration/default/hello"
	if _, ok := c.writes.take(key); !ok { // under way while the next round runs
		t.Fatalf("queued %v, want the Configuration's status among them", queued(c))
	}
	if err := c.round(t.Context()); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(queued(c), key) {
		t.Errorf("a round while the Configuration's write is under way queued it again")
	}
	// It fails: the next round writes again.
	c.writes.put(key, c.unsettleOnError(key, func(context.Context) error { return errors.New("the API server is away") }))
	failing, _ := c.writes.take(key)
	if failing(t.Context()) == nil {
		t.Fatal("the failing write succeeded")
	}
	if err := c.round(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(queued(c), key) {
		t.Errorf("after the Configuration's write failed, the next round queued %v, want it again", queued(c))
	}
}

// keep hands out the last round's object while it has not changed, and
// otherwise one of its own, never a pointer into the List's array (which
// would keep every round's array alive).
func TestKeepHoldsOneObjectPerKey(t *testing.T) {
	list := []servingv1.Service{*ksvc("a"), *ksvc("b")}
	list[0].ResourceVersion, list[1].ResourceVersion = "1", "1"
	index := func(items []servingv1.Service) map[string]*servingv1.Service {
		m := map[string]*servingv1.Service{}
		for i := range items {
			m[items[i].Name] = &items[i]
		}
		return m
	}
	first := keep(nil, index(list))
	for i := range list {
		if first[list[i].Name] == &list[i] {
			t.Errorf("%s is kept as a pointer into its List's array", list[i].Name)
		}
	}
	again := slices.Clone(list)
	again[1].ResourceVersion = "2"
	second := keep(first, index(again))
	if second["a"] != first["a"] {
		t.Errorf("unchanged a: a new object, want the last round's")
	}
	if second["b"] == first["b"] || second["b"].ResourceVersion != "2" {
		t.Errorf("changed b: %p (version %s), want a new object at version 2", second["b"], second["b"].ResourceVersion)
	}
}

// A create stands for its object only until the object shows in the
// cache: a revision's Deployment or private Service deleted later, or a
// Service's derived Route, is created again by the next round.
func TestDeletedDerivedObjectsAreCreatedAgain(t *testing.T) {
	c, _ := newTestController(t, ksvc("hello", image("example.org/hello:1"), generation(1)))
	converge(t, c)
	for _, o := range []client.Object{
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hello-00001-deployment"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hello-00001-private"}},
		&servingv1.Route{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hello"}},
	} {
		if err := c.client.Delete(t.Context(), o); err != nil {
			t.Fatalf("deleting %s: %v", o.GetName(), err)
		}
	}
	if err := c.round(t.Context()); err != nil {
		t.Fatal(err)
	}
	q := queued(c)
	for _, want := range []string{"Deployment/default/hello-00001", "PrivateService/default/hello-00001", "Route/default/hello"} {
		if !slices.Contains(q, want) {
			t.Errorf("after the deletes the round queued %v, want %s among them", q, want)
		}
	}
}

// A stream of changes does not hold rounds off: the first change arms the
// debounce, the ones that follow join that round (before, each pushed it
// back, and events every few ms while thousands of writes landed kept
// every round waiting).
func TestChangesDoNotHoldRoundsOff(t *testing.T) {
	c := &Controller{opts: Options{Debounce: 20 * time.Millisecond}, log: discard, kick: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	start := time.Now()
	ran := make(chan time.Duration, 100)
	done := make(chan error, 1)
	go func() {
		done <- c.rounds(ctx, nil, nil, noRound, "test", func(context.Context) (time.Duration, error) {
			ran <- time.Since(start)
			return noRound, nil
		})
	}()
	// A change every 5 ms for 400 ms.
	for range 80 {
		c.trigger()
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	close(ran)
	var first time.Duration = -1
	n := 0
	for d := range ran {
		if first < 0 {
			first = d
		}
		n++
	}
	if first < 0 || first > 200*time.Millisecond {
		t.Fatalf("first round after %v under a stream of changes, want within a few debounces of the first", first)
	}
	if n < 4 {
		t.Errorf("%d rounds in 400 ms of changes every 5 ms, want one per debounce or so", n)
	}
}

// A Service whose status alone changed (the statuses kgate writes itself)
// is no news to the reconciler; one whose spec or labels changed is.
func TestStatusChangesRecomputeNothing(t *testing.T) {
	c, _ := newTestController(t, ksvc("hello", image("example.org/hello:1"), generation(1)))
	converge(t, c)
	svc := get(t, c, &servingv1.Service{}, "hello")
	svc.Status.Conditions = append(svc.Status.Conditions, servingv1.Condition{Type: "Probe", Status: corev1.ConditionTrue})
	if err := c.client.Status().Update(t.Context(), svc); err != nil {
		t.Fatal(err)
	}
	if err := c.round(t.Context()); err != nil {
		t.Fatal(err)
	}
	if res := c.pipe.Current(); res.Changed == nil || res.Recomputed != 0 {
		t.Errorf("after a status change: full %v, %d units recomputed; want an incremental round recomputing none", res.Changed == nil, res.Recomputed)
	}
	svc = get(t, c, &servingv1.Service{}, "hello")
	svc.Labels = map[string]string{"team": "a"}
	if err := c.client.Update(t.Context(), svc); err != nil {
		t.Fatal(err)
	}
	if err := c.round(t.Context()); err != nil {
		t.Fatal(err)
	}
	if res := c.pipe.Current(); res.Recomputed != 1 {
		t.Errorf("after a label change: %d units recomputed, want 1", res.Recomputed)
	}
}

// modelHosts are the hosts of the model the last pass pushed.
func modelHosts(c *Controller) []string {
	var out []string
	for _, svc := range c.pipe.Current().Model.Services {
		for _, vh := range svc.VirtualHosts {
			out = append(out, vh.Host)
		}
	}
	return out
}

// A change brings forward a round the last one asked for later (the
// KIngress mode's recheck of a held Ingress, seconds ahead): it runs after
// the debounce, not at the recheck.
func TestChangeBringsALaterRoundForward(t *testing.T) {
	c := &Controller{opts: Options{Debounce: 20 * time.Millisecond}, log: discard, kick: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ran := make(chan time.Time, 10)
	go func() {
		_ = c.rounds(ctx, nil, nil, 0, "test", func(context.Context) (time.Duration, error) {
			ran <- time.Now()
			return time.Minute, nil // a recheck far ahead
		})
	}()
	<-ran // the first round, at once
	kicked := time.Now()
	c.trigger()
	select {
	case at := <-ran:
		if d := at.Sub(kicked); d > 2*time.Second {
			t.Errorf("the round after a change ran %v after it", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a change waited for the round asked for a minute ahead")
	}
}

// While changes keep coming, a round followed at once by another leaves
// its writes to it, for at most Options.WriteEvery; alone, or once that
// has passed, a round writes. Rounds run outside the serving loop (these
// tests, the first round of a leader) always write.
func TestWritesWaitForTheNextRoundWhileChangesKeepComing(t *testing.T) {
	c := newImageAfterConverging(t)
	const key = "Configuration/default/hello"
	backlog := c.opts.WriteBacklog
	for _, step := range []struct {
		name             string
		serving, waiting bool
		sincePublished   time.Duration
		backlog          int // writes of other objects waiting
		wantQueued       bool
	}{
		{"outside the serving loop", false, true, 0, 0, true},
		{"a change waiting, written just now", true, true, 0, 0, false},
		{"no change waiting", true, false, 0, 0, true},
		{"a change waiting, written WriteEvery ago", true, true, time.Second, 0, true},
		{"WriteBacklog writes waiting", true, false, time.Second, backlog, false},
		{"fewer than WriteBacklog waiting", true, false, time.Second, backlog - 1, true},
		{"WriteBacklog waiting, outside the serving loop", false, false, time.Second, backlog, true},
	} {
		t.Run(step.name, func(t *testing.T) {
			for _, k := range queued(c) {
				c.writes.take(k) // what earlier steps left
			}
			delete(c.st.settled, key)
			for i := range step.backlog {
				c.writes.put(fmt.Sprintf("Other/%d", i), func(context.Context) error { return nil })
			}
			c.deferWrites = step.serving
			c.st.published = time.Now().Add(-step.sincePublished)
			if step.waiting {
				c.trigger()
			}
			if err := c.round(t.Context()); err != nil {
				t.Fatal(err)
			}
			select {
			case <-c.kick:
			default:
			}
			if got := slices.Contains(queued(c), key); got != step.wantQueued {
				t.Errorf("the Configuration's status queued: %v, want %v (queued %v)", got, step.wantQueued, len(queued(c)))
			}
			// The round that writes what this one left comes once the
			// backlog drains below WriteBacklog, not before.
			deferred := step.serving && step.backlog >= backlog
			for i := range step.backlog {
				if deferred && len(c.kick) > 0 {
					t.Fatalf("a round asked for with all %d writes still waiting", step.backlog)
				}
				c.writes.take(fmt.Sprintf("Other/%d", i))
				if deferred && len(c.kick) == 0 {
					t.Errorf("no round asked for once the backlog fell below WriteBacklog")
				}
				deferred = false
				select {
				case <-c.kick:
				default:
				}
			}
			if rt := c.pipe.Current(); len(rt.Services) != 1 || rt.Services[0].Status.LatestCreatedRevisionName != "hello-00002" {
				t.Errorf("the round did not reconcile the change")
			}
		})
	}
}

// newImageAfterConverging is a controller whose Service hello has
// converged at example.org/hello:1 and then been given
// example.org/hello:2, which no round has seen yet.
func newImageAfterConverging(t *testing.T) *Controller {
	t.Helper()
	c, _ := newTestController(t, ksvc("hello", image("example.org/hello:1"), generation(1)))
	converge(t, c)
	var svc servingv1.Service
	if err := c.client.Get(t.Context(), client.ObjectKey{Namespace: "default", Name: "hello"}, &svc); err != nil {
		t.Fatal(err)
	}
	svc.Spec.Template.Spec.Containers[0].Image = "example.org/hello:2"
	svc.Generation++
	if err := c.client.Update(t.Context(), &svc); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAutoscalerTakesWhatChanged: the autoscaler loop is handed the
// revisions a Result made again, those whose traffic came or went, and
// those gone; a revision whose object the Result kept is not handed over
// again, and one gone is no longer scaled. Revision a's settings are
// invalid: each hand-over of it logs the error once, and only those do.
func TestAutoscalerTakesWhatChanged(t *testing.T) {
	c, _ := newTestController(t)
	var logged bytes.Buffer
	c.log = slog.New(slog.NewTextHandler(&logged, nil))
	a := krev("a-00001", "a", annotated("autoscaling.knative.dev/min-scale", "lots"))
	b := krev("b-00001", "b")
	result := func(routed map[string]bool, revs ...*servingv1.Revision) *knative.Result {
		return &knative.Result{Revisions: revs, Routed: routed, Config: config.Default()}
	}
	both := map[string]bool{"default/a-00001": true, "default/b-00001": true}
	steps := []struct {
		name       string
		res        *knative.Result
		wantErrors int      // a handed over
		wantRevs   []string // revisions the loop decides for afterwards
	}{
		{"first", result(both, a, b), 1, []string{"default/b-00001"}},
		{"nothing changed", result(both, a, b), 0, []string{"default/b-00001"}},
		{"a loses its traffic", result(map[string]bool{"default/b-00001": true}, a, b), 1, []string{"default/b-00001"}},
		{"b made again", result(map[string]bool{"default/b-00001": true}, a, krev("b-00001", "b")), 0, []string{"default/b-00001"}},
		{"a made again", result(map[string]bool{"default/b-00001": true}, krev("a-00001", "a"), b), 0, []string{"default/a-00001", "default/b-00001"}},
		{"a gone", result(both, b), 0, []string{"default/b-00001"}},
	}
	for _, step := range steps {
		logged.Reset()
		c.configureAutoscaler(t.Context(), step.res)
		if got := strings.Count(logged.String(), "not autoscaling a revision"); got != step.wantErrors {
			t.Errorf("%s: %d errors logged, want %d:\n%s", step.name, got, step.wantErrors, logged.String())
		}
		if got := slices.Sorted(maps.Keys(c.loop.Decisions())); !slices.Equal(got, step.wantRevs) {
			t.Errorf("%s: the loop decides for %v, want %v", step.name, got, step.wantRevs)
		}
	}
}

// TestDeclarations: the reconciler is handed, for each object, the one it
// was handed last while only status changed since; a new spec, a new
// object and a gone one show at once.
func TestDeclarations(t *testing.T) {
	spec := func(o *servingv1.Service) any { return &o.Spec }
	v1 := ksvc("a", image("example.org/a:1"), generation(1))
	v1status := v1.DeepCopy()
	v1status.Status.ObservedGeneration = 1
	v1status.ResourceVersion = "2"
	v2 := ksvc("a", image("example.org/a:2"), generation(2))
	b := ksvc("b", image("example.org/b:1"), generation(1))
	c, d, e := ksvc("c", image("example.org/c:1")), ksvc("d", image("example.org/d:1")), ksvc("e", image("example.org/e:1"))
	var last *declaredSet[*servingv1.Service]
	steps := []struct {
		name string
		now  map[string]*servingv1.Service
		want map[string]*servingv1.Service // handed to the reconciler
	}{
		{"first", map[string]*servingv1.Service{"default/a": v1}, map[string]*servingv1.Service{"default/a": v1}},
		{"only its status changed", map[string]*servingv1.Service{"default/a": v1status}, map[string]*servingv1.Service{"default/a": v1}},
		{"a new one", map[string]*servingv1.Service{"default/a": v1status, "default/b": b}, map[string]*servingv1.Service{"default/a": v1, "default/b": b}},
		{"a new spec", map[string]*servingv1.Service{"default/a": v2, "default/b": b}, map[string]*servingv1.Service{"default/a": v2, "default/b": b}},
		{"one gone", map[string]*servingv1.Service{"default/b": b}, map[string]*servingv1.Service{"default/b": b}},
		{"new ones on both sides", map[string]*servingv1.Service{"default/a": v2, "default/b": b, "default/d": d}, map[string]*servingv1.Service{"default/a": v2, "default/b": b, "default/d": d}},
		{"new ones between, one gone", map[string]*servingv1.Service{"default/a": v2, "default/c": c, "default/d": d, "default/e": e}, map[string]*servingv1.Service{"default/a": v2, "default/c": c, "default/d": d, "default/e": e}},
	}
	for _, step := range steps {
		last = declarations(last, step.now, spec)
		got := map[string]*servingv1.Service{}
		for key, d := range last.byKey {
			got[key] = d.decl
		}
		if !maps.Equal(got, step.want) {
			t.Errorf("%s: handed %v, want %v", step.name, got, step.want)
		}
		var order []*servingv1.Service
		for o := range last.sorted {
			order = append(order, o)
		}
		if want := sortedValues(step.want); !slices.Equal(order, want) {
			t.Errorf("%s: handed in the order %v, want %v", step.name, order, want)
		}
	}
}

// TestEchoRoundsWaitForTheBacklog: while a backlog of writes waits, a
// round asked for only by kgate's own writes coming back is not run (it
// would recompute nothing and leave its writes to a later round); one
// asked for by anything else is, and so is the one the backlog's
// draining asks for.
func TestEchoRoundsWaitForTheBacklog(t *testing.T) {
	c := newImageAfterConverging(t)
	c.deferWrites = true
	c.st.published = time.Time{}
	for i := range c.opts.WriteBacklog {
		c.writes.put(fmt.Sprintf("Other/%d", i), func(context.Context) error { return nil })
	}
	reconciled := func() bool {
		return c.pipe.Current().Services[0].Status.LatestCreatedRevisionName == "hello-00002"
	}
	c.relevant.Store(false)
	c.changed(false) // a status kgate wrote, back
	if err := c.round(t.Context()); err != nil {
		t.Fatal(err)
	}
	if reconciled() {
		t.Fatal("a round asked for by an echo ran while the backlog waited")
	}
	c.writes.take("Other/0") // the backlog falls below the mark: a round
	if !c.relevant.Load() {
		t.Fatal("the backlog's draining asked for no full round")
	}
	if err := c.round(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !reconciled() {
		t.Error("the round the draining asked for did not reconcile the new image")
	}
}

// TestEchoes: which informer updates are kgate's own writes coming back,
// for publish alone, and which the reconciler reads.
func TestEchoes(t *testing.T) {
	svcEcho := statusOnly(func(o *servingv1.Service) any { return &o.Spec })
	v1 := ksvc("a", image("example.org/a:1"), generation(1))
	withStatus := v1.DeepCopy()
	withStatus.Status.ObservedGeneration, withStatus.ResourceVersion = 1, "9"
	v2 := ksvc("a", image("example.org/a:2"), generation(2))
	relabelled := v1.DeepCopy()
	relabelled.Labels = map[string]string{"team": "x"}
	private := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "a-00001-private", Labels: map[string]string{
		deploykube.LabelRevision: "a-00001", deploykube.LabelServiceType: deploykube.ServiceTypePrivate}}}
	gateway := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "kgate-gateway"}}
	for _, tt := range []struct {
		name     string
		echo     func(any, any) bool
		old, new any
		want     bool
	}{
		{"a Service's status", svcEcho, v1, withStatus, true},
		{"a Service's spec", svcEcho, v1, v2, false},
		{"a Service's labels", svcEcho, v1, relabelled, false},
		{"a private Service", derivedServiceOnly, private, private.DeepCopy(), true},
		{"the gateway's Service", derivedServiceOnly, gateway, gateway.DeepCopy(), false},
		{"a Service made private", derivedServiceOnly, gateway, private, false},
	} {
		if got := tt.echo(tt.old, tt.new); got != tt.want {
			t.Errorf("%s: echo %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestAPublishQueuesAShareAndAsksForTheRest: in the serving loop a round
// queues a tenth of WriteBacklog of new writes at most, asks for the next
// round, and the rounds that follow queue the rest.
func TestAPublishQueuesAShareAndAsksForTheRest(t *testing.T) {
	c, _ := newTestController(t, ksvc("a", image("example.org/a:1"), generation(1)),
		ksvc("b", image("example.org/b:1"), generation(1)), ksvc("c", image("example.org/c:1"), generation(1)))
	c.opts.WriteBacklog, c.deferWrites = 20, true // a share of 2
	c.st.published = time.Time{}
	if err := c.round(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := len(queued(c)); got != 2 {
		t.Errorf("the first round queued %d writes, want its share of 2: %v", got, queued(c))
	}
	if len(c.kick) == 0 {
		t.Fatal("a publish that stopped short asked for no next round")
	}
	seen := map[string]bool{}
	for i := 0; len(c.kick) > 0; i++ {
		if i > 20 {
			t.Fatal("the rounds never queued everything")
		}
		<-c.kick
		for _, key := range queued(c) {
			seen[key] = true
		}
		flush(t, c)
		if err := c.round(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"a", "b", "c"} {
		for _, kind := range []string{"Configuration", "Route"} {
			if key := kind + "/default/" + name; !seen[key] {
				t.Errorf("%s never queued: %v", key, slices.Sorted(maps.Keys(seen)))
			}
		}
	}
}
