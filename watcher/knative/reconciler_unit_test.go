package knative

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/api/manifest"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
)

// decode parses inline manifests for a test.
func decode(t testing.TB, docs ...string) []manifest.Object {
	t.Helper()
	objs, errs := manifest.Decode("test.yaml", []byte(strings.Join(docs, "\n---\n")))
	if len(errs) > 0 {
		t.Fatalf("decoding test manifests: %v", errs)
	}
	return objs
}

func service(name, image string, extra ...string) string {
	return `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: ` + name + strings.Join(extra, "") + `
spec:
  template:
    spec:
      containers:
        - image: ` + image
}

func findService(res *Result, name string) *servingv1.Service {
	for _, s := range res.Services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func findRoute(res *Result, name string) *servingv1.Route {
	for _, r := range res.Routes {
		if r.Name == name {
			return r
		}
	}
	return nil
}

func condOf(t *testing.T, cs []servingv1.Condition, typ servingv1.ConditionType) servingv1.Condition {
	t.Helper()
	c := find(cs, typ)
	if c == nil {
		t.Fatalf("no %s condition in %+v", typ, cs)
	}
	return *c
}

// tagged is a Service whose latest revision also answers under a tag.
func tagged(name, tag string) string {
	return service(name, "img") + `
  traffic:
    - latestRevision: true
      percent: 100
      tag: ` + tag
}

func TestHostConflictsAreDecidedInTheRound(t *testing.T) {
	clock := &fakeClock{t: t0}
	r := NewReconciler(clock.now)
	// Service a's tag x claims x-a.default(.example.com, ...), Service x-a's own
	// host: a (the earlier key at the same creation time) keeps it.
	both := Input{Objects: decode(t, tagged("a", "x"), service("x-a", "img"))}
	conflict := translator.Conflict{Service: "default/x-a", Host: "x-a.default", Owner: "default/a"}

	res := r.Reconcile(both)
	if !reflect.DeepEqual(res.Conflicts, []translator.Conflict{conflict}) {
		t.Fatalf("Conflicts = %+v, want %+v", res.Conflicts, conflict)
	}
	if got := modelKeys(res); !reflect.DeepEqual(got, []string{"default/a"}) {
		t.Errorf("model Services = %v, want only the owner", got)
	}
	if !res.Routed["default/x-a-00001"] {
		t.Errorf("the losing Route's revision is not routed: %v", res.Routed)
	}
	for _, check := range []struct {
		conds []servingv1.Condition
		typ   servingv1.ConditionType
	}{
		{findRoute(res, "x-a").Status.Conditions, servingv1.ConditionIngressReady},
		{findRoute(res, "x-a").Status.Conditions, servingv1.ConditionReady},
		{findService(res, "x-a").Status.Conditions, servingv1.ConditionRoutesReady},
		{findService(res, "x-a").Status.Conditions, servingv1.ConditionReady},
	} {
		c := condOf(t, check.conds, check.typ)
		if c.Status != corev1.ConditionFalse || c.Reason != ReasonDomainConflict ||
			!strings.Contains(c.Message, `"x-a.default"`) || !strings.Contains(c.Message, `"default/a"`) {
			t.Errorf("%s = %+v, want False DomainConflict naming the host and the owner", check.typ, c)
		}
	}
	if c := condOf(t, findService(res, "a").Status.Conditions, servingv1.ConditionReady); c.Status != corev1.ConditionTrue {
		t.Errorf("the owner's Ready = %+v, want True", c)
	}

	// A conflict that persists keeps its transition time.
	clock.t = t0.Add(time.Minute)
	res = r.Reconcile(both)
	if c := condOf(t, findService(res, "x-a").Status.Conditions, servingv1.ConditionReady); !c.LastTransitionTime.Time.Equal(t0) || c.Reason != ReasonDomainConflict {
		t.Errorf("persisting conflict: Ready = %+v, want DomainConflict since %v", c, t0)
	}

	// Once the owner goes, the other serves, Ready at the new time.
	clock.t = t0.Add(2 * time.Minute)
	res = r.Reconcile(Input{Objects: decode(t, service("x-a", "img"))})
	if len(res.Conflicts) != 0 {
		t.Errorf("Conflicts = %+v, want none", res.Conflicts)
	}
	if got := modelKeys(res); !reflect.DeepEqual(got, []string{"default/x-a"}) {
		t.Errorf("model Services = %v, want x-a", got)
	}
	if c := condOf(t, findService(res, "x-a").Status.Conditions, servingv1.ConditionReady); c.Status != corev1.ConditionTrue || !c.LastTransitionTime.Time.Equal(clock.t) {
		t.Errorf("resolved conflict: Ready = %+v, want True since %v", c, clock.t)
	}
}

func TestWaitingGatewaysHoldIngressReady(t *testing.T) {
	r := NewReconciler((&fakeClock{t: t0}).now)
	var asked []string
	in := Input{
		Objects: decode(t, service("a", "img"), service("b", "img"), tagged("c", "x"), service("x-c", "img")),
		Waiting: func(svc model.Service) (string, bool) {
			asked = append(asked, svc.Key())
			switch svc.Name {
			case "a":
				return "Waiting for the gateways to apply the route.", true
			case "b":
				return "Gateway gw-stuck has not answered the control plane for over 30s; not waiting for it.", false
			}
			return "", false
		},
	}
	res := r.Reconcile(in)
	slices.Sort(asked)
	if want := []string{"default/a", "default/b", "default/c"}; !reflect.DeepEqual(asked, want) {
		t.Errorf("Waiting asked for %v, want %v (never for a Route that lost a host)", asked, want)
	}
	for _, check := range []struct {
		conds []servingv1.Condition
		typ   servingv1.ConditionType
	}{
		{findRoute(res, "a").Status.Conditions, servingv1.ConditionIngressReady},
		{findRoute(res, "a").Status.Conditions, servingv1.ConditionReady},
		{findService(res, "a").Status.Conditions, servingv1.ConditionRoutesReady},
		{findService(res, "a").Status.Conditions, servingv1.ConditionReady},
	} {
		c := condOf(t, check.conds, check.typ)
		if c.Status != corev1.ConditionUnknown || c.Reason != ReasonIngressNotConfigured || !strings.Contains(c.Message, "Waiting for the gateways") {
			t.Errorf("%s = %+v, want Unknown IngressNotConfigured with the gateways' message", check.typ, c)
		}
	}
	if c := condOf(t, findService(res, "b").Status.Conditions, servingv1.ConditionReady); c.Status != corev1.ConditionTrue {
		t.Errorf("b's Ready = %+v, want True: the gateways that are not stuck serve it", c)
	}
	if c := condOf(t, findRoute(res, "b").Status.Conditions, servingv1.ConditionIngressReady); c.Status != corev1.ConditionTrue || !strings.Contains(c.Message, "gw-stuck") {
		t.Errorf("b's IngressReady = %+v, want True naming the stuck gateway", c)
	}
	if c := condOf(t, findRoute(res, "x-c").Status.Conditions, servingv1.ConditionIngressReady); c.Reason != ReasonDomainConflict {
		t.Errorf("x-c's IngressReady = %+v, want its DomainConflict kept", c)
	}
	if got := modelKeys(res); !reflect.DeepEqual(got, []string{"default/a", "default/b", "default/c"}) {
		t.Errorf("model Services = %v: a Route the gateways have not applied yet is still in the model", got)
	}
}

// modelKeys are the keys of a result's model Services.
func modelKeys(res *Result) []string {
	var keys []string
	for _, s := range res.Model.Services {
		keys = append(keys, s.Key())
	}
	return keys
}

func TestCreated(t *testing.T) {
	clock := &fakeClock{t: t0}
	r := NewReconciler(clock.now)
	stamped := service("stamped", "img", "\n  creationTimestamp: \"2020-05-06T07:08:09Z\"")
	in := Input{Objects: decode(t, service("seen", "img"), stamped)}
	r.Reconcile(in)
	clock.t = t0.Add(time.Hour)
	res := r.Reconcile(in)
	want := map[string]time.Time{
		"default/seen":    t0, // first seen, stable across reloads
		"default/stamped": time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC),
	}
	for _, s := range res.Model.Services {
		if !s.Created.Equal(want[s.Key()]) {
			t.Errorf("%s: Created = %v, want %v", s.Key(), s.Created, want[s.Key()])
		}
	}
	if len(res.Model.Services) != 2 {
		t.Fatalf("got %d model services, want 2", len(res.Model.Services))
	}
}

func TestDeletedServiceForgetsItsRevisions(t *testing.T) {
	clock := &fakeClock{t: t0}
	r := NewReconciler(clock.now)
	r.Reconcile(Input{Objects: decode(t, service("hello", "img:1"))})
	r.Reconcile(Input{Objects: decode(t, service("hello", "img:2"))})
	res := r.Reconcile(Input{})
	if len(res.Revisions)+len(res.Services)+len(res.Model.Services) != 0 {
		t.Fatalf("after deletion: %d revisions, %d services, %d model services; want none",
			len(res.Revisions), len(res.Services), len(res.Model.Services))
	}
	// Created again, it starts over, as a new Knative Service would.
	res = r.Reconcile(Input{Objects: decode(t, service("hello", "img:3"))})
	if len(res.Revisions) != 1 || res.Revisions[0].Name != "hello-00001" {
		t.Fatalf("recreated: revisions %v, want [hello-00001]", names(res.Revisions))
	}
}

func names(revs []*servingv1.Revision) []string {
	var out []string
	for _, r := range revs {
		out = append(out, r.Name)
	}
	return out
}

func TestDuplicateObjectFirstWins(t *testing.T) {
	r := NewReconciler((&fakeClock{t: t0}).now)
	res := r.Reconcile(Input{Objects: decode(t, service("hello", "img:first"), service("hello", "img:second"))})
	if len(res.Revisions) != 1 || res.Revisions[0].Spec.Containers[0].Image != "img:first" {
		t.Fatalf("revisions %v, want one of img:first", names(res.Revisions))
	}
	if len(res.Problems) != 1 || !strings.Contains(res.Problems[0].Message, "declared again") {
		t.Fatalf("problems %v, want one about the duplicate", res.Problems)
	}
}

func TestInvalidConfigMapKeepsLastGood(t *testing.T) {
	r := NewReconciler((&fakeClock{t: t0}).now)
	domain := func(d string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-domain\ndata:\n  " + d + ": \"\""
	}
	r.Reconcile(Input{Objects: decode(t, domain("good.example"), service("hello", "img"))})
	res := r.Reconcile(Input{Objects: decode(t, domain("Not_A_Domain"), service("hello", "img"))})
	if got := findRoute(res, "hello").Status.URL.String(); got != "http://hello.default.good.example" {
		t.Errorf("URL = %s, want the last good domain's", got)
	}
	if len(res.Problems) != 1 || res.Problems[0].Kind != "ConfigMap" || !strings.Contains(res.Problems[0].Message, "config-domain") {
		t.Errorf("problems %v, want one naming config-domain", res.Problems)
	}
	// Removing the ConfigMap means Knative's default domain again.
	res = r.Reconcile(Input{Objects: decode(t, service("hello", "img"))})
	if got := findRoute(res, "hello").Status.URL.String(); got != "http://hello.default.example.com" {
		t.Errorf("URL = %s, want example.com once config-domain is gone", got)
	}
}

func TestReconcileLeavesInputUnchanged(t *testing.T) {
	objs := decode(t, service("hello", "img"), `apiVersion: serving.knative.dev/v1
kind: Route
metadata:
  name: r
spec:
  traffic:
    - revisionName: hello-00001
      percent: 100`)
	before, _ := json.Marshal(objs)
	NewReconciler((&fakeClock{t: t0}).now).Reconcile(Input{Objects: objs})
	after, _ := json.Marshal(objs)
	if string(before) != string(after) {
		t.Fatalf("Reconcile changed its input:\nbefore %s\nafter  %s", before, after)
	}
}

func TestChildName(t *testing.T) {
	long := strings.Repeat("a", 60)
	for _, tc := range []struct{ parent, suffix, want string }{
		{"hello", "-00001", "hello-00001"},
		{strings.Repeat("a", 57), "-00001", strings.Repeat("a", 57) + "-00001"},
	} {
		if got := childName(tc.parent, tc.suffix); got != tc.want {
			t.Errorf("childName(%q, %q) = %q, want %q", tc.parent, tc.suffix, got, tc.want)
		}
	}
	got := childName(long, "-00001")
	if len(got) != 63 || !strings.HasSuffix(got, "-00001") || !strings.HasPrefix(got, "aaaa") {
		t.Errorf("childName(60 a's, -00001) = %q, want 63 characters keeping a prefix and the suffix", got)
	}
	if childName(long, "-00001") == childName(long+"b", "-00001") {
		t.Errorf("different long parents must get different names")
	}
}

// A revision the deployer cannot run is not Ready, with the deployer's
// reason, and so neither is its Configuration nor its Service.
func TestFailedRevision(t *testing.T) {
	r := NewReconciler((&fakeClock{t: t0}).now)
	res := r.Reconcile(Input{
		Objects: decode(t, service("hello", "example.com/unknown")),
		Ready:   map[string]bool{},
		Failed: map[string]Failure{"default/hello-00001": {
			Reason: "ImageNotMapped", Message: `no command for image "example.com/unknown"; map it with --image`,
		}},
	})
	if len(res.Revisions) != 1 {
		t.Fatalf("%d revisions, want 1", len(res.Revisions))
	}
	c := condOf(t, res.Revisions[0].Status.Conditions, servingv1.ConditionReady)
	if c.Status != corev1.ConditionFalse || c.Reason != "ImageNotMapped" || !strings.Contains(c.Message, "--image") {
		t.Errorf("revision Ready = %+v, want False, ImageNotMapped, naming --image", c)
	}
	if c := condOf(t, findService(res, "hello").Status.Conditions, servingv1.ConditionReady); c.Status == corev1.ConditionTrue {
		t.Errorf("service Ready = %+v, want not True", c)
	}
}

// The base configuration stands for absent ConfigMaps only.
func TestBaseConfiguration(t *testing.T) {
	r := NewReconciler((&fakeClock{t: t0}).now)
	base := config.Default()
	base.Domain = config.Domain{Domains: map[string]map[string]string{"127.0.0.1.nip.io": {}}}
	r.SetBase(base)
	res := r.Reconcile(Input{Objects: decode(t, service("hello", "img"))})
	if got := findService(res, "hello").Status.URL.String(); got != "http://hello.default.127.0.0.1.nip.io" {
		t.Errorf("URL %s, want the base domain's", got)
	}
	res = r.Reconcile(Input{Objects: decode(t, service("hello", "img"), `apiVersion: v1
kind: ConfigMap
metadata:
  name: config-domain
data:
  example.org: ""`)})
	if got := findService(res, "hello").Status.URL.String(); got != "http://hello.default.example.org" {
		t.Errorf("URL %s, want config-domain's", got)
	}
}

// As in Knative, latestReadyRevisionName never moves back: a revision that
// stops being ready keeps its traffic, reported not Ready.
func TestRevisionNoLongerReadyKeepsItsTraffic(t *testing.T) {
	r := NewReconciler((&fakeClock{t: t0}).now)
	objs := decode(t, service("a", "img"))
	res := r.Reconcile(Input{Objects: objs, Ready: map[string]bool{"default/a-00001": true}})
	if got := modelKeys(res); !reflect.DeepEqual(got, []string{"default/a"}) {
		t.Fatalf("ready: model Services = %v, want a", got)
	}
	res = r.Reconcile(Input{Objects: objs, Ready: map[string]bool{}})
	if got := modelKeys(res); !reflect.DeepEqual(got, []string{"default/a"}) {
		t.Errorf("no longer ready: model Services = %v, want a kept", got)
	}
	if c := condOf(t, findService(res, "a").Status.Conditions, servingv1.ConditionReady); c.Status == corev1.ConditionTrue {
		t.Errorf("no longer ready: Service Ready = %+v, want not True", c)
	}
}

// One object declared in two files: the first declaration is served, and
// the object is not Ready, with a condition naming both files.
func TestDuplicateDeclarationIsReported(t *testing.T) {
	good, _ := manifest.Decode("good.yaml", []byte(service("good", "img:1")))
	newcomer, _ := manifest.Decode("a-new.yaml", []byte(service("good", "img:2")))
	r := NewReconciler(time.Now)
	ready := map[string]bool{"default/good-00001": true, "default/good-00002": true}
	res := r.Reconcile(Input{Objects: append(good, newcomer...), Ready: ready})
	svc := findService(res, "good")
	if img := svc.Spec.Template.Spec.Containers[0].Image; img != "img:1" {
		t.Errorf("serving image %q, want good.yaml's img:1", img)
	}
	c := condOf(t, svc.Status.Conditions, servingv1.ConditionReady)
	if c.Status != "False" || c.Reason != ReasonDuplicateDeclaration ||
		!strings.Contains(c.Message, "good.yaml:1 is served") || !strings.Contains(c.Message, "a-new.yaml:1 ignored") {
		t.Errorf("Ready %s %s %q, want False DuplicateDeclaration naming both files", c.Status, c.Reason, c.Message)
	}
	if got := revisionNames(res); got != "good-00001" {
		t.Errorf("revisions %q, want only good-00001", got)
	}
	// Once the newcomer goes, Ready again.
	res = r.Reconcile(Input{Objects: good, Ready: ready})
	if c := condOf(t, findService(res, "good").Status.Conditions, servingv1.ConditionReady); c.Status != "True" {
		t.Errorf("after the duplicate is removed: Ready %s %s %q, want True", c.Status, c.Reason, c.Message)
	}
}

// kgate local's replica ceiling applies where config-autoscaler sets no
// max-scale-limit; a ConfigMap's own limit replaces it.
func TestReplicaCeiling(t *testing.T) {
	huge := strings.Replace(service("huge", "img"), "  template:\n", "  template:\n    metadata:\n      annotations:\n        autoscaling.knative.dev/min-scale: \"50\"\n", 1)
	cm := `apiVersion: v1
kind: ConfigMap
metadata:
  name: config-autoscaler
data:
  max-scale-limit: "100"
  max-scale: "100"`
	for _, tt := range []struct {
		name      string
		docs      []string
		wantReady bool
	}{
		{name: "min-scale above the ceiling", docs: []string{huge}},
		{name: "the ConfigMap's own limit", docs: []string{huge, cm}, wantReady: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReconciler(time.Now)
			r.SetReplicaCeiling(8)
			res := r.Reconcile(Input{Objects: decode(t, tt.docs...), Ready: map[string]bool{"default/huge-00001": true}})
			c := condOf(t, findService(res, "huge").Status.Conditions, servingv1.ConditionReady)
			if got := c.Status == "True"; got != tt.wantReady {
				t.Errorf("Ready %s %s %q, want ready %v", c.Status, c.Reason, c.Message, tt.wantReady)
			}
			if !tt.wantReady && (c.Reason != ReasonInvalidSpec || !strings.Contains(c.Message, "expected 0 <= 50 <= 8")) {
				t.Errorf("Ready %s %s %q, want InvalidSpec naming the bound", c.Status, c.Reason, c.Message)
			}
		})
	}
}

// A DomainMapping's conditions keep their transition times while they do
// not change, round after round, as every object's do.
func TestDomainMappingConditionsAreStable(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := NewReconciler(func() time.Time { return now })
	r.SetAutocreateDomainClaims(true)
	objs := decode(t, service("hello", "img"), `apiVersion: serving.knative.dev/v1beta1
kind: DomainMapping
metadata:
  name: hello.localtest.me
spec:
  ref:
    name: hello
    kind: Service
    apiVersion: serving.knative.dev/v1`)
	ready := map[string]bool{"default/hello-00001": true}
	first := r.Reconcile(Input{Objects: objs, Ready: ready})
	now = now.Add(time.Hour)
	second := r.Reconcile(Input{Objects: objs, Ready: ready})
	was := condOf(t, first.DomainMappings[0].Status.Conditions, servingv1.ConditionReady)
	is := condOf(t, second.DomainMappings[0].Status.Conditions, servingv1.ConditionReady)
	if is.Status != "True" || !is.LastTransitionTime.Equal(&was.LastTransitionTime) {
		t.Errorf("Ready %s since %v, want True since %v", is.Status, is.LastTransitionTime, was.LastTransitionTime)
	}
}

// A config-network key kgate reads but does not act on yet is reported,
// not silently ignored.
func TestWildcardSelectorIsReported(t *testing.T) {
	r := NewReconciler(time.Now)
	res := r.Reconcile(Input{Objects: decode(t, `apiVersion: v1
kind: ConfigMap
metadata:
  name: config-network
data:
  namespace-wildcard-cert-selector: '{"matchLabels": {"tls": "wildcard"}}'`)})
	if len(res.Problems) != 1 || !strings.Contains(res.Problems[0].String(), "namespace-wildcard-cert-selector") || !strings.Contains(res.Problems[0].String(), "no effect") {
		t.Errorf("problems %v, want one saying namespace-wildcard-cert-selector has no effect", res.Problems)
	}
}

// CertificateProvisioned follows the issuer as Knative's route and
// domain-mapping reconcilers set it, and Ready with it.
func TestCertificateProvisioned(t *testing.T) {
	network := func(protocol string) string {
		return `apiVersion: v1
kind: ConfigMap
metadata:
  name: config-network
data:
  external-domain-tls: Enabled
  http-protocol: ` + protocol
	}
	mapping := `apiVersion: serving.knative.dev/v1beta1
kind: DomainMapping
metadata:
  name: hello.localtest.me
spec:
  ref:
    name: hello
    kind: Service
    apiVersion: serving.knative.dev/v1`
	tests := []struct {
		name      string
		protocol  string
		state     *CertificateState // nil: no issuer (Input.Certificate nil)
		status    corev1.ConditionStatus
		reason    string
		ready     corev1.ConditionStatus
		urlScheme string
	}{
		{name: "no issuer", protocol: "Enabled", status: "True", ready: "True", urlScheme: "https"},
		{name: "unmanaged", protocol: "Enabled", state: &CertificateState{}, status: "True", ready: "True", urlScheme: "https"},
		{name: "ready", protocol: "Redirected", state: &CertificateState{Phase: CertificateReady, Name: "route-hello"}, status: "True", ready: "True", urlScheme: "https"},
		{name: "issuing, redirected", protocol: "Redirected", state: &CertificateState{Phase: CertificateIssuing, Name: "route-hello"},
			status: "Unknown", reason: "CertificateNotReady", ready: "Unknown", urlScheme: "https"},
		{name: "issuing, http enabled downgrades", protocol: "Enabled", state: &CertificateState{Phase: CertificateIssuing, Name: "route-hello"},
			status: "True", reason: "HTTPDowngrade", ready: "True", urlScheme: "http"},
		{name: "failed", protocol: "Enabled", state: &CertificateState{Phase: CertificateFailed, Name: "route-hello", Message: "the issuer refused"},
			status: "False", reason: "CertificateProvisionFailed", ready: "False", urlScheme: "https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReconciler(time.Now)
			r.SetAutocreateDomainClaims(true)
			in := Input{Objects: decode(t, service("hello", "img"), mapping, network(tt.protocol)), Ready: map[string]bool{"default/hello-00001": true}}
			var asked []string
			if tt.state != nil {
				in.Certificate = func(kind, ns, name string, local bool) CertificateState {
					asked = append(asked, kind+" "+ns+"/"+name)
					return *tt.state
				}
			}
			res := r.Reconcile(in)
			rt, svc, dm := findRoute(res, "hello"), findService(res, "hello"), res.DomainMappings[0]
			for _, obj := range []struct {
				what  string
				conds []servingv1.Condition
				url   *servingv1.URL
			}{{"Route", rt.Status.Conditions, rt.Status.URL}, {"DomainMapping", dm.Status.Conditions, dm.Status.URL}} {
				c := condOf(t, obj.conds, ConditionCertificateProvisioned)
				if c.Status != tt.status || c.Reason != tt.reason {
					t.Errorf("%s CertificateProvisioned %s %s (%s), want %s %s", obj.what, c.Status, c.Reason, c.Message, tt.status, tt.reason)
				}
				if tt.state != nil && tt.state.Phase != CertificateUnmanaged && !strings.Contains(c.Message+tt.reason, "route-hello") && tt.reason != "" {
					t.Errorf("%s message %q does not name the certificate", obj.what, c.Message)
				}
				if got := condOf(t, obj.conds, servingv1.ConditionReady).Status; got != tt.ready {
					t.Errorf("%s Ready %s, want %s", obj.what, got, tt.ready)
				}
				if obj.url == nil || obj.url.Scheme != tt.urlScheme {
					t.Errorf("%s URL %v, want scheme %s", obj.what, obj.url, tt.urlScheme)
				}
			}
			if got := condOf(t, svc.Status.Conditions, servingv1.ConditionReady).Status; got != tt.ready {
				t.Errorf("Service Ready %s, want %s (the Route's)", got, tt.ready)
			}
			if svc.Status.URL.Scheme != tt.urlScheme {
				t.Errorf("Service URL %v, want scheme %s", svc.Status.URL, tt.urlScheme)
			}
			if tt.state != nil && (!slices.Contains(asked, "Route default/hello") || !slices.Contains(asked, "DomainMapping default/hello.localtest.me")) {
				t.Errorf("asked the issuer of %v, want the Route and the DomainMapping", asked)
			}
		})
	}
}

// Without TLS a Route's certificate is not needed, as Knative says.
func TestCertificateNotNeededWithoutTLS(t *testing.T) {
	res := NewReconciler(time.Now).Reconcile(Input{Objects: decode(t, service("hello", "img"))})
	c := condOf(t, findRoute(res, "hello").Status.Conditions, ConditionCertificateProvisioned)
	if c.Status != "True" || c.Reason != "TLSNotEnabled" {
		t.Errorf("CertificateProvisioned %s %s, want True TLSNotEnabled", c.Status, c.Reason)
	}
}

// A DomainMapping holds its domain as Knative decides it: through a
// ClusterDomainClaim delegating it to the mapping's namespace, or, with
// autocreate-cluster-domain-claims, by claiming it (earliest created
// first).
func TestDomainClaims(t *testing.T) {
	mapping := func(ns string) string {
		return `apiVersion: serving.knative.dev/v1beta1
kind: DomainMapping
metadata:
  name: hello.example.org
  namespace: ` + ns + `
spec:
  ref:
    name: hello
    kind: Service
    apiVersion: serving.knative.dev/v1`
	}
	hello := func(ns string) string { return service("hello", "img", "\n  namespace: "+ns) }
	claim := func(ns string) string {
		return `apiVersion: networking.internal.knative.dev/v1alpha1
kind: ClusterDomainClaim
metadata:
  name: hello.example.org
spec:
  namespace: ` + ns
	}
	autocreate := func(v string) string {
		return `apiVersion: v1
kind: ConfigMap
metadata:
  name: config-network
data:
  autocreate-cluster-domain-claims: "` + v + `"`
	}
	tests := []struct {
		name       string
		def        bool // the mode's default
		docs       []string
		claimed    map[string]string // namespace -> DomainClaimed reason ("" when True)
		wantClaims []DomainClaim
	}{
		{name: "Knative's default: no claim, not claimed", docs: []string{hello("a"), mapping("a")},
			claimed: map[string]string{"a": "DomainClaimFailed"}},
		{name: "a claim for the namespace", docs: []string{hello("a"), mapping("a"), claim("a")},
			claimed: map[string]string{"a": ""}},
		{name: "a claim for another namespace", docs: []string{hello("a"), mapping("a"), claim("b")}, def: true,
			claimed: map[string]string{"a": "DomainAlreadyClaimed"}},
		{name: "autocreate by default claims", docs: []string{hello("a"), mapping("a")}, def: true,
			claimed: map[string]string{"a": ""}, wantClaims: []DomainClaim{{Domain: "hello.example.org", Namespace: "a"}}},
		{name: "config-network turns autocreate on", docs: []string{hello("a"), mapping("a"), autocreate("true")},
			claimed: map[string]string{"a": ""}, wantClaims: []DomainClaim{{Domain: "hello.example.org", Namespace: "a"}}},
		{name: "config-network turns autocreate off", docs: []string{hello("a"), mapping("a"), autocreate("false")}, def: true,
			claimed: map[string]string{"a": "DomainClaimFailed"}},
		{name: "two namespaces, one domain: the first created claims it", docs: []string{hello("a"), hello("b"), mapping("b"), mapping("a")}, def: true,
			claimed: map[string]string{"a": "", "b": "DomainAlreadyClaimed"}, wantClaims: []DomainClaim{{Domain: "hello.example.org", Namespace: "a"}}},
		{name: "two namespaces, a claim for the second", docs: []string{hello("a"), hello("b"), mapping("a"), mapping("b"), claim("b")}, def: true,
			claimed: map[string]string{"a": "DomainAlreadyClaimed", "b": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReconciler(time.Now)
			r.SetAutocreateDomainClaims(tt.def)
			res := r.Reconcile(Input{Objects: decode(t, tt.docs...), Ready: map[string]bool{"a/hello-00001": true, "b/hello-00001": true}})
			if len(res.DomainMappings) != len(tt.claimed) {
				t.Fatalf("%d mappings, want %d", len(res.DomainMappings), len(tt.claimed))
			}
			for _, dm := range res.DomainMappings {
				c := condOf(t, dm.Status.Conditions, "DomainClaimed")
				ready := condOf(t, dm.Status.Conditions, servingv1.ConditionReady)
				switch want := tt.claimed[dm.Namespace]; {
				case want == "" && (c.Status != "True" || ready.Status != "True"):
					t.Errorf("%s: DomainClaimed %s %s (%s), Ready %s; want both True", dm.Namespace, c.Status, c.Reason, c.Message, ready.Status)
				case want != "" && (c.Status != "False" || c.Reason != want || ready.Status != "False"):
					t.Errorf("%s: DomainClaimed %s %s, Ready %s; want False %s and not Ready", dm.Namespace, c.Status, c.Reason, ready.Status, want)
				case want == "DomainClaimFailed" && !strings.Contains(c.Message, "autocreate-cluster-domain-claims"):
					t.Errorf("%s: message %q does not say how to claim the domain", dm.Namespace, c.Message)
				}
				served := slices.Contains(modelKeys(res), dm.Namespace+"/"+dm.Name)
				if served != (tt.claimed[dm.Namespace] == "") {
					t.Errorf("%s: served %v, want %v", dm.Namespace, served, !served)
				}
			}
			if !slices.Equal(res.DomainClaims, tt.wantClaims) {
				t.Errorf("claims to create %v, want %v", res.DomainClaims, tt.wantClaims)
			}
		})
	}
}

// TestResultInKeyOrder: a Result's objects are sorted by key whatever order
// they were declared in, in a full round and in the incremental rounds
// after one, with and without Configurations and Routes of their own.
func TestResultInKeyOrder(t *testing.T) {
	standalone := `apiVersion: serving.knative.dev/v1
kind: Configuration
metadata:
  name: b-config
spec:
  template:
    spec:
      containers:
        - image: img
---
apiVersion: serving.knative.dev/v1
kind: Route
metadata:
  name: a-route
spec:
  traffic:
    - configurationName: b-config
      percent: 100`
	inNS := func(name, ns string) string { return service(name, "img", "\n  namespace: "+ns) }
	for _, c := range []struct {
		name  string
		first []string // declared first, in this order
		then  []string // then, in this order
	}{
		{"sorted", []string{service("a", "img"), service("c", "img")}, []string{service("a", "img"), service("b", "img"), service("c", "img")}},
		{"unsorted", []string{service("c", "img"), service("a", "img")}, []string{service("c", "img"), service("b", "img"), service("a", "img")}},
		{"namespaces", []string{inNS("a", "z"), inNS("z", "a")}, []string{inNS("a", "z"), inNS("m", "a"), inNS("z", "a")}},
		{"with standalone objects", []string{service("a", "img"), service("c", "img"), standalone}, []string{service("a", "img"), service("b", "img"), service("c", "img"), standalone}},
		{"one gone", []string{service("a", "img"), service("b", "img"), service("c", "img")}, []string{service("a", "img"), service("c", "img")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := NewReconciler(func() time.Time { return t0 })
			for i, docs := range [][]string{c.first, c.then, c.then} {
				res := r.Reconcile(Input{Objects: decode(t, docs...)})
				byKey := func(ns, name string) string { return ns + "/" + name }
				check := func(kind string, keys []string) {
					if !slices.IsSorted(keys) {
						t.Errorf("round %d: %s out of order: %v", i, kind, keys)
					}
				}
				var svcs, cfgs, routes, revs, mrevs []string
				for _, o := range res.Services {
					svcs = append(svcs, byKey(o.Namespace, o.Name))
				}
				for _, o := range res.Configurations {
					cfgs = append(cfgs, byKey(o.Namespace, o.Name))
				}
				for _, o := range res.Routes {
					routes = append(routes, byKey(o.Namespace, o.Name))
				}
				for _, o := range res.Revisions {
					revs = append(revs, byKey(o.Namespace, o.Name))
				}
				for _, o := range res.Model.Revisions {
					mrevs = append(mrevs, byKey(o.Namespace, o.Name))
				}
				check("Services", svcs)
				check("Configurations", cfgs)
				check("Routes", routes)
				check("Revisions", revs)
				check("the model's revisions", mrevs)
				if len(svcs) == 0 || len(revs) < len(svcs) {
					t.Fatalf("round %d: %d Services and %d revisions", i, len(svcs), len(revs))
				}
			}
		})
	}
}
