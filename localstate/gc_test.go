package localstate

import (
	"strings"
	"testing"
	"time"

	"github.com/kgate/kgate/api/manifest"
	"github.com/kgate/kgate/watcher/knative"
)

// gcManifests is a Service at image img and a config-gc that collects a
// replaced revision an hour after it left the traffic.
func gcManifests(t *testing.T, img string) []manifest.Object {
	t.Helper()
	objs, errs := manifest.Decode("hello.yaml", []byte(`apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
spec:
  template:
    spec:
      containers:
        - image: `+img+`
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: config-gc
data:
  min-non-active-revisions: "0"
  retain-since-create-time: "1h"
  retain-since-last-active-time: "1h"
`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return objs
}

// A revision garbage-collected in kgate local leaves the state store: after
// a restart it is neither loaded nor restored, so kgate get no longer lists
// it, and the history goes on numbering after it.
func TestCollectedRevisionLeavesTheStore(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s := open(t, dir)
	rec := knative.NewReconciler(clock)
	pass := func(rec *knative.Reconciler, img string) *knative.Result {
		t.Helper()
		res := rec.Reconcile(knative.Input{Objects: gcManifests(t, img)})
		if err := s.SaveObjects(res, rec.Declared()); err != nil {
			t.Fatal(err)
		}
		return res
	}
	pass(rec, "img:1")
	now = now.Add(time.Minute)
	if res := pass(rec, "img:2"); len(res.Revisions) != 2 {
		t.Fatalf("after the change: %d revisions, want 2", len(res.Revisions))
	}
	s.Close()

	// Restarted before the retain times: both are still there.
	s = open(t, dir)
	sn, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(sn.Stored.Revisions), " "); got != "hello-00001 hello-00002" {
		t.Fatalf("stored before collection: %q", got)
	}
	now = now.Add(2 * time.Hour)
	rec = knative.NewReconciler(clock)
	rec.Restore(sn.Stored)
	res := pass(rec, "img:2")
	if got := strings.Join(res.Collected, " "); got != "default/hello-00001" {
		t.Fatalf("two hours on: collected %q, want default/hello-00001", got)
	}
	s.Close()

	// Restarted after the collection: the store no longer has it.
	s = open(t, dir)
	if sn, err = s.Load(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(sn.Stored.Revisions), " "); got != "hello-00002" {
		t.Fatalf("stored after collection: %q, want hello-00002 only", got)
	}
	rec = knative.NewReconciler(clock)
	rec.Restore(sn.Stored)
	res = pass(rec, "img:3")
	var got []string
	for _, r := range res.Revisions {
		got = append(got, r.Name)
	}
	if strings.Join(got, " ") != "hello-00002 hello-00003" {
		t.Errorf("after the restart and a change: revisions %v, want hello-00002 hello-00003", got)
	}
}
