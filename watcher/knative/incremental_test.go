package knative

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/api/manifest"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/api/serving/v1beta1"
	"github.com/kgate/kgate/translator/model"
)

// The variants each declared object of the incremental test takes; ""
// is "not declared".
var incrementalUniverse = map[string][]string{
	// A Service: a new image (a new revision), a split with its first
	// revision pinned, a tag, cluster-local, invalid (the last valid
	// version keeps serving).
	"svc/default/a": {"", service("a", "img:1"), service("a", "img:2"), splitService("a", "img:3", "a-00001"),
		taggedService("a", "img:1", "canary"), service("a", "img:1", "\n  labels:\n    networking.knative.dev/visibility: cluster-local"),
		invalidService("a")},
	"svc/default/b": {"", service("b", "img:1"), service("b", "img:2"), splitService("b", "img:2", "b-00001")},
	// A gradual rollout.
	"svc/default/roll": {"", rolledService("img:1"), rolledService("img:2"), rolledService("img:3")},
	// Routes over TLS, their certificates issued by an issuer
	// (Input.Certificate), served over HTTP meanwhile or not.
	"cm/knative-serving/config-network": {"", `apiVersion: v1
kind: ConfigMap
metadata:
  name: config-network
  namespace: knative-serving
data:
  external-domain-tls: Enabled`, `apiVersion: v1
kind: ConfigMap
metadata:
  name: config-network
  namespace: knative-serving
data:
  external-domain-tls: Enabled
  http-protocol: Enabled`},
	// Garbage collection, quick.
	"cm/knative-serving/config-gc": {"", `apiVersion: v1
kind: ConfigMap
metadata:
  name: config-gc
  namespace: knative-serving
data:
  retain-since-create-time: "2m"
  retain-since-last-active-time: "2m"
  min-non-active-revisions: "0"
  max-non-active-revisions: "1"`},
	"svc/other/a": {"", service("a", "img:1", "\n  namespace: other"), service("a", "img:2", "\n  namespace: other")},
	// A Service named as a standalone Configuration (NotOwned).
	"svc/default/c": {"", service("c", "img:1")},
	// Standalone Configuration and Routes reading them and a Service's.
	"cfg/default/c": {"", configuration("c", "img:1"), configuration("c", "img:2")},
	"route/default/r": {"", route("r", "configurationName: c"), route("r", "configurationName: b"),
		route("r", "revisionName: a-00001"), route("r", "revisionName: b-00002"), route("r", "configurationName: gone")},
	// A Route named as a Service (NotOwned), and one whose host another
	// takes.
	"route/default/b": {"", route("b", "configurationName: c")},
	// DomainMappings: one maps a domain a Route serves (a conflict that
	// the earlier of the two wins), one another Route's.
	"dm/default/a.default.example.com": {"", domainMapping("a.default.example.com", "r")},
	"dm/default/map.example.com":       {"", domainMapping("map.example.com", "a"), domainMapping("map.example.com", "b")},
}

func splitService(name, image, pinned string) string {
	return service(name, image) + `
  traffic:
    - latestRevision: true
      percent: 50
    - revisionName: ` + pinned + `
      percent: 50`
}

func rolledService(image string) string {
	return service("roll", image, `
  annotations:
    serving.knative.dev/rollout-duration: "300s"`)
}

func taggedService(name, image, tag string) string {
	return service(name, image) + `
  traffic:
    - latestRevision: true
      percent: 100
    - latestRevision: true
      percent: 0
      tag: ` + tag
}

func invalidService(name string) string {
	return service(name, "img:9") + `
      containerConcurrency: -1`
}

func configuration(name, image string) string {
	return `apiVersion: serving.knative.dev/v1
kind: Configuration
metadata:
  name: ` + name + `
spec:
  template:
    spec:
      containers:
        - image: ` + image
}

func route(name, target string) string {
	return `apiVersion: serving.knative.dev/v1
kind: Route
metadata:
  name: ` + name + `
spec:
  traffic:
    - ` + target + `
      percent: 100`
}

func domainMapping(domain, routeName string) string {
	return `apiVersion: serving.knative.dev/v1beta1
kind: DomainMapping
metadata:
  name: ` + domain + `
spec:
  ref:
    apiVersion: serving.knative.dev/v1
    kind: Route
    name: ` + routeName
}

// TestIncrementalRoundsMatchFullRounds drives two reconcilers through the
// same random history of declarations, revision readiness and failures,
// gateways and time: one recomputes everything every round (Input.Full),
// the other only what changed. Every round's results must be equal, and
// what the incremental one says it left unchanged (Result.Changed) must be.
func TestIncrementalRoundsMatchFullRounds(t *testing.T) {
	keys := make([]string, 0, len(incrementalUniverse))
	for k := range incrementalUniverse {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for seed := range uint64(40) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 17))
			clock := &fakeClock{t: t0}
			inc, full := NewReconciler(clock.now), NewReconciler(clock.now)
			inc.SetAutocreateDomainClaims(true)
			full.SetAutocreateDomainClaims(true)
			// Each object's current declaration, decoded once per change so
			// that an unchanged one keeps its pointer, as a source keeps it.
			decls := map[string]manifest.Object{}
			ready := map[string]bool{}
			failed := map[string]Failure{}
			// What the gateways have applied, by model Service key: as the
			// xDS engine, they hold back a Service until they apply it as
			// given.
			applied := map[string]model.Service{}
			waiting := func(svc model.Service) (string, bool) {
				if a, ok := applied[svc.Key()]; ok && reflect.DeepEqual(a, svc) {
					return "", false
				}
				return "Waiting for the gateways to apply the route.", true
			}
			// The issuer's certificates, by Route key; a Route without one
			// is issuing.
			certs := map[string]CertificatePhase{}
			certificate := func(kind, ns, name string, local bool) CertificateState {
				if p, ok := certs[ns+"/"+name]; ok {
					return CertificateState{Phase: p, Name: name}
				}
				return CertificateState{Phase: CertificateIssuing, Name: name}
			}
			var last *Result
			for step := range 150 {
				var what string
				fullNext := false // as Kubernetes mode: a certificate no longer Ready
				switch op := rng.IntN(11); {
				case op == 10 && last != nil && len(last.Routes) > 0:
					rt := last.Routes[rng.IntN(len(last.Routes))]
					key := rt.Namespace + "/" + rt.Name
					phase := []CertificatePhase{CertificateReady, CertificateIssuing, CertificateFailed}[rng.IntN(3)]
					if old, ok := certs[key]; ok && old == CertificateReady && phase != CertificateReady {
						fullNext = true
					}
					certs[key] = phase
					what = fmt.Sprintf("certificate of %s: phase %d", key, phase)
				case op < 4:
					k := keys[rng.IntN(len(keys))]
					vs := incrementalUniverse[k]
					v := vs[rng.IntN(len(vs))]
					what = fmt.Sprintf("declare %s variant %d", k, slices.Index(vs, v))
					if v == "" {
						delete(decls, k)
						break
					}
					objs := decode(t, v)
					decls[k] = objs[0]
				case op < 7 && last != nil && len(last.Revisions) > 0:
					rev := last.Revisions[rng.IntN(len(last.Revisions))]
					key := rev.Namespace + "/" + rev.Name
					switch rng.IntN(3) {
					case 0:
						ready[key] = !ready[key]
						what = fmt.Sprintf("revision %s ready=%v", key, ready[key])
					case 1:
						failed[key] = Failure{Reason: "ImagePullBackOff", Message: "cannot pull"}
						what = "revision " + key + " failed"
					default:
						delete(failed, key)
						what = "revision " + key + " runs again"
					}
				case op < 8 && last != nil && len(last.Model.Services) > 0:
					svc := last.Model.Services[rng.IntN(len(last.Model.Services))]
					applied[svc.Key()] = svc
					what = "the gateways apply " + svc.Key()
				case op < 9:
					clock.t = clock.t.Add(time.Duration(rng.IntN(120)) * time.Second)
					what = "time passes"
				default:
					what = "nothing changes"
				}
				objs := make([]manifest.Object, 0, len(decls))
				for _, k := range keys {
					if o, ok := decls[k]; ok {
						objs = append(objs, o)
					}
				}
				in := Input{Objects: objs, Ready: ready, Failed: failed, Waiting: waiting, Certificate: certificate, Full: fullNext,
					StartsAtZero: startsAtZeroSometimes}
				got := inc.Reconcile(in)
				in.Full = true
				want := full.Reconcile(in)
				if diff := resultDiff(want, got); diff != "" {
					t.Fatalf("step %d (%s): the incremental round differs from the full one:\n%s", step, what, diff)
				}
				if want.Changed != nil {
					t.Fatalf("step %d: a full round reports Changed", step)
				}
				if inc.prior.prior != nil {
					t.Fatalf("step %d: the last round holds the one before it: every round ever run stays in memory", step)
				}
				if last != nil && got.Changed != nil {
					checkUnchanged(t, step, what, last, got)
				}
				last = got
			}
		})
	}
}

// resultDiff names the fields in which two results differ, Changed and
// Recomputed aside.
func resultDiff(want, got *Result) string {
	w, g := *want, *got
	w.Changed, g.Changed = nil, nil
	w.Recomputed, g.Recomputed = 0, 0
	if reflect.DeepEqual(w, g) {
		return ""
	}
	var out []string
	wv, gv := reflect.ValueOf(w), reflect.ValueOf(g)
	for i := range wv.NumField() {
		if !reflect.DeepEqual(wv.Field(i).Interface(), gv.Field(i).Interface()) {
			out = append(out, fmt.Sprintf("%s:\n  full:        %s\n  incremental: %s", wv.Type().Field(i).Name,
				mustJSON(wv.Field(i).Interface()), mustJSON(gv.Field(i).Interface())))
		}
	}
	return strings.Join(out, "\n")
}

// checkUnchanged checks that every model Service and Revision an
// incremental round does not name in Changed is as in the round before.
func checkUnchanged(t *testing.T, step int, what string, prev, res *Result) {
	t.Helper()
	before := map[string]any{}
	for _, s := range prev.Model.Services {
		before["svc "+s.Key()] = s
	}
	for _, r := range prev.Model.Revisions {
		before["rev "+r.Key()] = r
	}
	now := map[string]any{}
	for _, s := range res.Model.Services {
		now["svc "+s.Key()] = s
	}
	for _, r := range res.Model.Revisions {
		now["rev "+r.Key()] = r
	}
	for k := range mergeKeys(before, now) {
		kind, key, _ := strings.Cut(k, " ")
		if (kind == "svc" && res.Changed.Services[key]) || (kind == "rev" && res.Changed.Revisions[key]) {
			continue
		}
		if !reflect.DeepEqual(before[k], now[k]) {
			t.Fatalf("step %d (%s): %s changed but is not in Result.Changed", step, what, k)
		}
	}
}

func mergeKeys(a, b map[string]any) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// TestIncrementalRoundRecomputesAHostLoser: a DomainMapping declared for
// a domain an unchanged Service's Route serves, and created earlier, takes
// the host; the Route, carried over otherwise, must say so in the same
// round, and get it back when the mapping goes.
func TestIncrementalRoundRecomputesAHostLoser(t *testing.T) {
	clock := &fakeClock{t: t0}
	inc, full := NewReconciler(clock.now), NewReconciler(clock.now)
	for _, r := range []*Reconciler{inc, full} {
		r.SetAutocreateDomainClaims(true)
	}
	a, b := decode(t, service("a", "img")), decode(t, service("b", "img"))
	dm := decode(t, domainMapping("a.default.example.com", "b"))
	dm[0].Obj.(*v1beta1.DomainMapping).CreationTimestamp = metav1.NewTime(t0.Add(-time.Hour)) // the earlier claim
	steps := [][]manifest.Object{
		slices.Concat(a, b),
		slices.Concat(a, b, dm),
		slices.Concat(a, b),
	}
	for i, objs := range steps {
		clock.t = clock.t.Add(time.Minute)
		got := inc.Reconcile(Input{Objects: objs})
		want := full.Reconcile(Input{Objects: objs, Full: true})
		if diff := resultDiff(want, got); diff != "" {
			t.Fatalf("step %d: the incremental round differs from the full one:\n%s", i, diff)
		}
		c := condOf(t, findRoute(got, "a").Status.Conditions, servingv1.ConditionIngressReady)
		if lost := c.Reason == ReasonDomainConflict; lost != (i == 1) {
			t.Errorf("step %d: Route a's IngressReady = %+v", i, c)
		}
	}
}

func TestCompareKeys(t *testing.T) {
	parts := []string{"a", "ab", "a-b", "a.b", "b", "aa", "a0", "z"}
	for _, ans := range parts {
		for _, an := range parts {
			for _, bns := range parts {
				for _, bn := range parts {
					want := strings.Compare(ans+"/"+an, bns+"/"+bn)
					if got := CompareKeys(ans, an, bns, bn); got != want {
						t.Errorf("CompareKeys(%q, %q, %q, %q) = %d, want %d", ans, an, bns, bn, got, want)
					}
				}
			}
		}
	}
}

// startsAtZeroSometimes starts the revisions made in every other minute
// at zero: Ready from the round that makes them (Input.StartsAtZero).
func startsAtZeroSometimes(now time.Time, _ config.Autoscaler, _ map[string]string, _ int64) bool {
	return now.Unix()/60%2 == 0
}

// TestHasKey searches a Result's objects in their order, "namespace/name"
// as one string: namespace a-b sorts before a ('-' before '/').
func TestHasKey(t *testing.T) {
	var routes []*servingv1.Route
	for _, key := range []string{"a-b/x", "a/x", "a/y", "b/a"} {
		ns, name, _ := strings.Cut(key, "/")
		routes = append(routes, &servingv1.Route{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
	}
	for key, want := range map[string]bool{"a-b/x": true, "a/x": true, "a/y": true, "b/a": true, "a/z": false, "a-b/y": false, "c/a": false} {
		if got := HasKey(routes, key); got != want {
			t.Errorf("HasKey(%s) = %v, want %v", key, got, want)
		}
	}
}
