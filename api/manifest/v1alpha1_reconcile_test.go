package manifest_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kgate/kgate/api/manifest"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/watcher/knative"
)

// TestV1alpha1Reconcile runs seed 003's converted v1alpha1 Services through
// reconciliation: the tutorial's runLatest, then its release.
func TestV1alpha1Reconcile(t *testing.T) {
	seed := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join("testdata", "seeds", name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	decode := func(data ...[]byte) []manifest.Object {
		t.Helper()
		var all []manifest.Object
		for _, d := range data {
			objs, errs := manifest.Decode("seed.yaml", d)
			if len(errs) != 0 {
				t.Fatalf("Decode: %v", errs)
			}
			all = append(all, objs...)
		}
		return all
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := knative.NewReconciler(func() time.Time { return now })
	reconcile := func(objs []manifest.Object) *knative.Result {
		t.Helper()
		now = now.Add(time.Minute)
		res := r.Reconcile(knative.Input{Objects: objs})
		for _, p := range res.Problems {
			t.Logf("problem: %s", p)
		}
		return res
	}
	route := func(res *knative.Result, name string) *servingv1.Route {
		t.Helper()
		for _, rt := range res.Routes {
			if rt.Namespace == "default" && rt.Name == name {
				return rt
			}
		}
		t.Fatalf("no Route default/%s", name)
		return nil
	}
	ready := func(rt *servingv1.Route) servingv1.Condition {
		for _, c := range rt.Status.Conditions {
			if c.Type == servingv1.ConditionReady {
				return c
			}
		}
		t.Fatalf("Route %s has no Ready condition", rt.Name)
		return servingv1.Condition{}
	}
	type split struct {
		tag, revision string
		percent       int64
		latest        bool
	}
	traffic := func(rt *servingv1.Route) []split {
		var out []split
		for _, tt := range rt.Status.Traffic {
			s := split{tag: tt.Tag, revision: tt.RevisionName}
			if tt.Percent != nil {
				s.percent = *tt.Percent
			}
			if tt.LatestRevision != nil {
				s.latest = *tt.LatestRevision
			}
			out = append(out, s)
		}
		return out
	}

	runLatest := seed("003-helloworld-csharp-v1alpha1.yaml")
	twilio := seed("003-twilio-csharp-v1alpha1.yaml")
	release := seed("003-helloworld-csharp-release-v1alpha1.yaml")

	// runLatest: 100% to the latest revision.
	res := reconcile(decode(runLatest, twilio))
	if len(res.Problems) != 0 {
		t.Fatalf("runLatest: problems %v", res.Problems)
	}
	for _, name := range []string{"helloworld-csharp", "twilio-csharp"} {
		rt := route(res, name)
		if c := ready(rt); c.Status != corev1.ConditionTrue {
			t.Errorf("runLatest: Route %s Ready = %+v", name, c)
		}
		want := []split{{revision: name + "-00001", percent: 100, latest: true}}
		if got := traffic(rt); !reflect.DeepEqual(got, want) {
			t.Errorf("runLatest: Route %s traffic = %+v, want %+v", name, got, want)
		}
	}

	// The tutorial's release: its template (TARGET v4) makes revision 00002,
	// but the candidate it names, 00004, does not exist. As in Knative, the
	// Route is not Ready (RevisionMissing) and keeps its last traffic.
	res = reconcile(decode(release, twilio))
	rt := route(res, "helloworld-csharp")
	if c := ready(rt); c.Status != corev1.ConditionFalse || c.Reason != knative.ReasonRevisionMissing ||
		!strings.Contains(c.Message, `"helloworld-csharp-00004"`) {
		t.Errorf("release: Route Ready = %+v, want False RevisionMissing naming helloworld-csharp-00004", c)
	}
	if want := []split{{revision: "helloworld-csharp-00001", percent: 100, latest: true}}; !reflect.DeepEqual(traffic(rt), want) {
		t.Errorf("release: Route traffic = %+v, want the last resolved %+v", traffic(rt), want)
	}
	var created string
	for _, c := range res.Configurations {
		if c.Name == "helloworld-csharp" {
			created = c.Status.LatestCreatedRevisionName
		}
	}
	if created != "helloworld-csharp-00002" {
		t.Errorf("release: latest created revision = %q, want helloworld-csharp-00002", created)
	}

	// The release with "@latest" as its candidate resolves: 80/20 between
	// 00001 and 00002, and the tags current, candidate and latest.
	withLatest := strings.Replace(string(release), `"helloworld-csharp-00004"`, `"@latest"`, 1)
	res = reconcile(decode([]byte(withLatest), twilio))
	rt = route(res, "helloworld-csharp")
	if c := ready(rt); c.Status != corev1.ConditionTrue {
		t.Errorf("release @latest: Route Ready = %+v", c)
	}
	want := []split{
		{tag: "current", revision: "helloworld-csharp-00001", percent: 80},
		{tag: "candidate", revision: "helloworld-csharp-00002", percent: 20, latest: true},
		{tag: "latest", revision: "helloworld-csharp-00002", latest: true},
	}
	if got := traffic(rt); !reflect.DeepEqual(got, want) {
		t.Errorf("release @latest: Route traffic = %+v, want %+v", got, want)
	}
	if len(res.Problems) != 0 {
		t.Errorf("release @latest: problems %v", res.Problems)
	}
}
