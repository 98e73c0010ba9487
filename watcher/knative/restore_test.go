package knative

import (
	"fmt"
	"strings"
	"testing"
	"time"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
)

// A restarted controller, restored from what the API server stores, derives
// the same revisions and statuses, and numbers the next revision on.
func TestRestoreContinuesTheHistory(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	clock := func() time.Time { return now }
	before := NewReconciler(clock)
	ready := map[string]bool{"default/hello-00001": true, "default/hello-00002": true}
	before.Reconcile(Input{Objects: decode(t, service("hello", "img:1")), Ready: ready})
	now = now.Add(time.Minute)
	res := before.Reconcile(Input{Objects: decode(t, service("hello", "img:2")), Ready: ready})
	if got := revisionNames(res); got != "hello-00001 hello-00002" {
		t.Fatalf("before the restart: revisions %q", got)
	}

	now = now.Add(time.Hour)
	after := NewReconciler(clock)
	after.Restore(Stored{Services: res.Services, Configurations: res.Configurations, Routes: res.Routes, Revisions: res.Revisions})
	again := after.Reconcile(Input{Objects: decode(t, service("hello", "img:2")), Ready: ready})
	if got := revisionNames(again); got != "hello-00001 hello-00002" {
		t.Errorf("after the restart: revisions %q, want the same two", got)
	}
	if got := again.Configurations[0].Status.LatestReadyRevisionName; got != "hello-00002" {
		t.Errorf("after the restart: latestReady %q, want hello-00002", got)
	}
	was := condOf(t, res.Services[0].Status.Conditions, servingv1.ConditionReady)
	is := condOf(t, again.Services[0].Status.Conditions, servingv1.ConditionReady)
	if is.Status != "True" || !is.LastTransitionTime.Equal(&was.LastTransitionTime) {
		t.Errorf("after the restart: Ready %s since %v, want True since %v", is.Status, is.LastTransitionTime, was.LastTransitionTime)
	}

	next := after.Reconcile(Input{Objects: decode(t, service("hello", "img:3")), Ready: ready})
	if got := revisionNames(next); got != "hello-00001 hello-00002 hello-00003" {
		t.Errorf("a change after the restart: revisions %q, want hello-00003 added", got)
	}
	back := after.Reconcile(Input{Objects: decode(t, service("hello", "img:1")), Ready: ready})
	if got := back.Configurations[0].Status.LatestCreatedRevisionName; got != "hello-00004" {
		t.Errorf("back to the first template after the restart: latestCreated %q, want hello-00004", got)
	}
}

func revisionNames(res *Result) string {
	var s string
	for i, r := range res.Revisions {
		if i > 0 {
			s += " "
		}
		s += r.Name
	}
	return s
}

// kgate local has no API server: what the Reconciler remembers of the
// declared objects (Declared) goes into the state store. Restored with it, a
// restarted Reconciler keeps pinned traffic on its revisions, the last valid
// version of an object whose file turned invalid while it was stopped, the
// generations and the creation times.
func TestRestoreDeclaredKeepsWhatTheUserDeclared(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	clock := func() time.Time { return now }
	pinned := func(image string) string {
		return service("split", image) + `
  traffic:
  - latestRevision: true
    percent: 50
  - revisionName: split-00001
    percent: 50`
	}
	ready := map[string]bool{"default/split-00001": true, "default/split-00002": true}
	before := NewReconciler(clock)
	before.Reconcile(Input{Objects: decode(t, service("split", "img:v1")), Ready: ready})
	now = now.Add(time.Minute)
	res := before.Reconcile(Input{Objects: decode(t, pinned("img:v2")), Ready: ready})
	wantTraffic := "split-00002=50 split-00001=50"
	if got := trafficOf(res.Services[0]); got != wantTraffic {
		t.Fatalf("before the restart: traffic %q, want %q", got, wantTraffic)
	}
	stored := Stored{Services: res.Services, Configurations: res.Configurations, Routes: res.Routes,
		Revisions: res.Revisions, Declared: before.Declared()}

	restart := func() *Reconciler {
		now = now.Add(time.Hour)
		r := NewReconciler(clock)
		r.Restore(stored)
		return r
	}
	t.Run("same file", func(t *testing.T) {
		again := restart().Reconcile(Input{Objects: decode(t, pinned("img:v2")), Ready: ready})
		svc := again.Services[0]
		if got := trafficOf(svc); got != wantTraffic {
			t.Errorf("traffic %q, want %q", got, wantTraffic)
		}
		if got := revisionNames(again); got != "split-00001 split-00002" {
			t.Errorf("revisions %q, want the same two", got)
		}
		if svc.Generation != res.Services[0].Generation || !svc.CreationTimestamp.Equal(&res.Services[0].CreationTimestamp) {
			t.Errorf("generation %d created %v, want %d created %v", svc.Generation, svc.CreationTimestamp,
				res.Services[0].Generation, res.Services[0].CreationTimestamp)
		}
	})
	t.Run("file turned invalid while stopped", func(t *testing.T) {
		again := restart().Reconcile(Input{Objects: decode(t, service("split", "img:v3")+"\n  traffic:\n  - percent: 40\n    latestRevision: true"), Ready: ready})
		svc := again.Services[0]
		if got := trafficOf(svc); got != wantTraffic {
			t.Errorf("traffic %q, want the last valid version's %q", got, wantTraffic)
		}
		if c := condOf(t, svc.Status.Conditions, servingv1.ConditionReady); c.Reason != ReasonInvalidSpec {
			t.Errorf("Ready %s/%s, want InvalidSpec", c.Status, c.Reason)
		}
		if got := revisionNames(again); got != "split-00001 split-00002" {
			t.Errorf("revisions %q, want the same two kept", got)
		}
	})
	t.Run("template changed while stopped", func(t *testing.T) {
		again := restart().Reconcile(Input{Objects: decode(t, pinned("img:v3")), Ready: ready})
		if got := revisionNames(again); got != "split-00001 split-00002 split-00003" {
			t.Errorf("revisions %q, want split-00003 made for the new template", got)
		}
		if got := again.Services[0].Generation; got != res.Services[0].Generation+1 {
			t.Errorf("generation %d, want %d", got, res.Services[0].Generation+1)
		}
	})
}

// trafficOf renders a Service's status traffic as "revision=percent ...".
func trafficOf(svc *servingv1.Service) string {
	var parts []string
	for _, t := range svc.Status.Traffic {
		p := int64(0)
		if t.Percent != nil {
			p = *t.Percent
		}
		parts = append(parts, fmt.Sprintf("%s=%d", t.RevisionName, p))
	}
	return strings.Join(parts, " ")
}
