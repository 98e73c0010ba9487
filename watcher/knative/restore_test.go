package knative

import (
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
