package kube

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/watcher"
	"github.com/kgate/kgate/watcher/knative"
)

// podsReady plays the kubelet: the revision's Deployment has a ready pod.
func podsReady(t *testing.T, c *Controller, revision string) {
	t.Helper()
	d := get(t, c, &appsv1.Deployment{}, revision+"-deployment")
	d.Status.ReadyReplicas = 1
	if err := c.client.Status().Update(t.Context(), d); err != nil {
		t.Fatal(err)
	}
}

// In Kubernetes mode a revision config-gc collects is deleted from the API
// server, its Deployment and private Service after it; the routing state
// the collection reads is on every Revision, as Knative's labeler puts it.
func TestGarbageCollectedRevisionIsDeleted(t *testing.T) {
	c, calls, now := replacedRevision(t)

	old := get(t, c, &servingv1.Revision{}, "hello-00001")
	if got, want := old.Annotations[knative.AnnotationRoutingStateModified], now.UTC().Format(time.RFC3339); got != want {
		t.Errorf("the replaced revision's routingStateModified is %q, want %q (when it left the traffic)", got, want)
	}
	if got := get(t, c, &servingv1.Revision{}, "hello-00002").Labels[knative.LabelRoutingState]; got != knative.RoutingStateActive {
		t.Errorf("the routed revision's routing state is %q, want active", got)
	}

	// Within the retain times nothing goes; past them the replaced one does.
	*now = now.Add(59 * time.Minute)
	converge(t, c)
	if got := names(t, c, &servingv1.RevisionList{}); !slices.Equal(got, []string{"hello-00001", "hello-00002"}) {
		t.Fatalf("59 minutes on: revisions %v, want both", got)
	}
	*now = now.Add(2 * time.Minute)
	converge(t, c)
	if got := calls.take(); !slices.Contains(got, "delete Revision default/hello-00001") {
		t.Errorf("past the retain times the calls were %v, want the Revision deleted", got)
	}
	if got := names(t, c, &servingv1.RevisionList{}); !slices.Equal(got, []string{"hello-00002"}) {
		t.Errorf("revisions %v, want hello-00002 only", got)
	}
	if got := names(t, c, &appsv1.DeploymentList{}); !slices.Equal(got, []string{"hello-00002-deployment"}) {
		t.Errorf("deployments %v, want the collected revision's gone", got)
	}
	if got := names(t, c, &corev1.ServiceList{}); slices.Contains(got, "hello-00001-private") {
		t.Errorf("services %v, want the collected revision's private Service gone", got)
	}
	if n := converge(t, c); n != 1 || len(c.st.collected) != 0 {
		t.Errorf("after the deletion: %d rounds to converge, %v still to delete; want one round, none", n, c.st.collected)
	}
}

// replacedRevision runs a Service through two revisions under a config-gc
// that collects a replaced revision an hour after it left the traffic:
// hello-00001 is reserve, hello-00002 routed. It returns the controller and
// the clock of its pipeline.
func replacedRevision(t *testing.T) (*Controller, *apiCalls, *time.Time) {
	t.Helper()
	gc := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kgate-system", Name: "config-gc"},
		Data: map[string]string{"min-non-active-revisions": "0", "retain-since-create-time": "1h",
			"retain-since-last-active-time": "1h"},
	}
	c, calls := newTestController(t, ksvc("hello", image("example.org/hello:1"), generation(1)), gc)
	now := statusTime
	c.pipe = watcher.New(watcher.Options{Routing: nopRouting{}, Deployed: true, Logger: discard,
		Now: func() time.Time { return now }})
	converge(t, c)
	podsReady(t, c, "hello-00001")
	converge(t, c)
	svc := get(t, c, &servingv1.Service{}, "hello")
	svc.Spec.Template.Spec.Containers[0].Image = "example.org/hello:2"
	svc.Generation = 2
	if err := c.client.Update(t.Context(), svc); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	converge(t, c)
	podsReady(t, c, "hello-00002")
	converge(t, c)
	if got := get(t, c, &servingv1.Revision{}, "hello-00001").Labels[knative.LabelRoutingState]; got != knative.RoutingStateReserve {
		t.Fatalf("the replaced revision's routing state is %q, want reserve", got)
	}
	calls.take()
	return c, calls, &now
}

// markNoGC plays kubectl annotate (or label) revision NAME
// serving.knative.dev/no-gc=true on the live Revision.
func markNoGC(t *testing.T, c *Controller, name string, label bool) {
	t.Helper()
	rev := get(t, c, &servingv1.Revision{}, name)
	m := &rev.Annotations
	if label {
		m = &rev.Labels
	}
	if *m == nil {
		*m = map[string]string{}
	}
	(*m)[knative.KeyNoGC] = "true"
	if err := c.client.Update(t.Context(), rev); err != nil {
		t.Fatal(err)
	}
}

// A Revision marked no-gc after the controller started (kubectl annotate or
// label, not in what it restored) is never deleted, however long past the
// retain times, its Deployment and private Service with it; the controller
// says so once, naming it.
func TestRevisionMarkedNoGCAfterStartIsKept(t *testing.T) {
	for _, label := range []bool{false, true} {
		t.Run(map[bool]string{false: "annotation", true: "label"}[label], func(t *testing.T) {
			c, calls, now := replacedRevision(t)
			var logs bytes.Buffer
			c.log = slog.New(slog.NewTextHandler(&logs, nil))
			markNoGC(t, c, "hello-00001", label)
			converge(t, c)
			s, err := c.read(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got := noGCMarks(s); len(got) != 1 || !got["default/hello-00001"] {
				t.Errorf("live no-gc marks %v, want default/hello-00001", got)
			}

			for _, d := range []time.Duration{2 * time.Hour, 48 * time.Hour} {
				*now = now.Add(d)
				converge(t, c)
				if got := calls.take(); slices.Contains(got, "delete Revision default/hello-00001") {
					t.Fatalf("%v on: the calls were %v, want the no-gc Revision kept", d, got)
				}
				if got := names(t, c, &servingv1.RevisionList{}); !slices.Equal(got, []string{"hello-00001", "hello-00002"}) {
					t.Fatalf("%v on: revisions %v, want both", d, got)
				}
				if got := names(t, c, &appsv1.DeploymentList{}); !slices.Equal(got, []string{"hello-00001-deployment", "hello-00002-deployment"}) {
					t.Errorf("%v on: deployments %v, want both", d, got)
				}
				if got := names(t, c, &corev1.ServiceList{}); !slices.Contains(got, "hello-00001-private") {
					t.Errorf("%v on: services %v, want the kept revision's private Service", d, got)
				}
			}
			if res := c.pipe.Current(); !slices.ContainsFunc(res.Revisions, func(r *servingv1.Revision) bool { return r.Name == "hello-00001" }) {
				t.Errorf("the no-gc revision left the reconciler")
			}
			if n := converge(t, c); n != 1 || len(c.st.collected) != 0 {
				t.Errorf("%d rounds to converge, %v to delete; want one round, none", n, c.st.collected)
			}
			if got := strings.Count(logs.String(), knative.KeyNoGC); got > 1 {
				t.Errorf("logs %q: the kept revision named %d times, want at most once", logs.String(), got)
			}
		})
	}
}

// The safety net: a Revision collected, then marked no-gc before its
// deletion went out, is kept, and the controller says so once, naming it.
func TestCollectedRevisionMarkedNoGCBeforeDeletionIsKept(t *testing.T) {
	c, calls, _ := replacedRevision(t)
	rev := get(t, c, &servingv1.Revision{}, "hello-00001")
	// Collected by a round whose writes are still queued, say.
	c.noteCollected(&snapshot{revisions: map[string]*servingv1.Revision{"default/hello-00001": rev}},
		&knative.Result{Collected: []string{"default/hello-00001"}})
	var logs bytes.Buffer
	c.log = slog.New(slog.NewTextHandler(&logs, nil))
	markNoGC(t, c, "hello-00001", false)
	converge(t, c)
	converge(t, c)
	if got := calls.take(); slices.Contains(got, "delete Revision default/hello-00001") {
		t.Fatalf("the calls were %v, want the no-gc Revision kept", got)
	}
	if got := names(t, c, &servingv1.RevisionList{}); !slices.Equal(got, []string{"hello-00001", "hello-00002"}) {
		t.Errorf("revisions %v, want both", got)
	}
	if len(c.st.collected) != 0 {
		t.Errorf("still to delete: %v, want none", c.st.collected)
	}
	if got := strings.Count(logs.String(), "revision=default/hello-00001"); got != 1 || !strings.Contains(logs.String(), knative.KeyNoGC) {
		t.Errorf("logs %q: want one line naming default/hello-00001 and %s", logs.String(), knative.KeyNoGC)
	}
}
