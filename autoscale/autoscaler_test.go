package autoscale

import (
	"slices"
	"testing"
	"time"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/translator/model"
)

func keys(ds []Decision) []string {
	var ks []string
	for _, d := range ds {
		ks = append(ks, d.Revision)
	}
	return ks
}

// TestInvalidRevisionDoesNotStopOthers: a revision with a bad annotation
// gets an error (for its status) and is not scaled; the others are.
func TestInvalidRevisionDoesNotStopOthers(t *testing.T) {
	cfg := config.DefaultAutoscaler()
	revisions := map[string]map[string]string{
		"default/good-00001": {targetKey: "10"},
		"default/bad-00001":  {targetKey: "ten"},
		"other/good-00002":   nil,
	}
	a := New()
	var failed []string
	for key, ann := range revisions {
		s, err := NewSettings(cfg, RevisionSpec{Annotations: ann})
		if err != nil {
			failed = append(failed, key)
			continue
		}
		a.Set(epoch, key, s, 1)
	}
	if !slices.Equal(failed, []string{"default/bad-00001"}) {
		t.Errorf("failed revisions %v, want the bad one", failed)
	}
	got := keys(a.Tick(epoch.Add(TickInterval)))
	if want := []string{"default/good-00001", "other/good-00002"}; !slices.Equal(got, want) {
		t.Errorf("Tick decided %v, want %v in key order", got, want)
	}
}

func TestSetAndDelete(t *testing.T) {
	s := settingsFor(t, nil, RevisionSpec{})
	a := New()
	for _, k := range []string{"ns/c", "ns/a", "ns/b"} {
		a.Set(epoch, k, s, 0)
	}
	a.Delete("ns/b")
	a.Delete("ns/unknown")
	if got := keys(a.Tick(epoch)); !slices.Equal(got, []string{"ns/a", "ns/c"}) || a.Len() != 2 {
		t.Errorf("after deleting ns/b: %v (len %d), want [ns/a ns/c]", got, a.Len())
	}

	// Setting a known revision updates it in place.
	s.Reachable = false
	a.Set(epoch, "ns/a", s, 3)
	if r := a.Revision("ns/a"); r.Settings().Reachable || r.ready != 3 {
		t.Errorf("ns/a after Set: reachable %v, ready %d, want false, 3", r.Settings().Reachable, r.ready)
	}
}

// TestPoke: a report of demand for a revision at zero asks for an
// immediate decision, which starts a pod without waiting for the tick.
func TestPoke(t *testing.T) {
	s := settingsFor(t, map[string]string{"allow-zero-initial-scale": "true"}, RevisionSpec{Annotations: map[string]string{"autoscaling.knative.dev/initial-scale": "0"}})
	a := New()
	a.Set(epoch, "ns/cold", s, 0)
	a.Set(epoch, "ns/busy", settingsFor(t, nil, RevisionSpec{}), 1)
	a.Record(epoch.Add(time.Second), "ns/busy", model.Stat{Concurrency: 3})
	now := epoch.Add(TickInterval)
	a.Tick(now)

	now = now.Add(500 * time.Millisecond)
	if a.Record(now, "ns/busy", model.Stat{Concurrency: 3}) {
		t.Error("a report for a revision with pods asked for a poke")
	}
	if a.Record(now, "ns/cold", model.Stat{}) {
		t.Error("a report with nothing in flight asked for a poke")
	}
	if a.Record(now, "ns/unknown", model.Stat{Concurrency: 1}) {
		t.Error("a report for an unknown revision asked for a poke")
	}
	if !a.Record(now, "ns/cold", model.Stat{Concurrency: 1, Requests: 1}) {
		t.Fatal("a request for a revision at zero did not ask for a poke")
	}
	d, ok := a.Poke(now, "ns/cold")
	if !ok || d.Revision != "ns/cold" || d.Replicas != 1 || d.DesiredScale != 1 || d.Mode != model.Proxy || !d.Changed {
		t.Errorf("Poke = %+v, %v; want 1 replica for ns/cold, still behind the activator", d, ok)
	}
	if _, ok := a.Poke(now, "ns/unknown"); ok {
		t.Error("Poke of an unknown revision succeeded")
	}
}

// TestChanged: a decision says whether anything a caller applies changed
// since the previous one.
func TestChanged(t *testing.T) {
	r := NewRevision(epoch, settingsFor(t, nil, RevisionSpec{}), 0)
	now := epoch
	steps := []struct {
		name    string
		before  func()
		changed bool
	}{
		{name: "no pods, no metrics", changed: false},
		{name: "the pod is ready: Active", before: func() { r.SetReady(1) }, changed: true},
		{name: "the first metrics: the pod is wanted for a stable window", changed: true},
		{name: "nothing new", changed: false},
		{name: "a burst: more pods", before: func() { r.Record(now.Add(time.Second), model.Stat{Concurrency: 1000}) }, changed: true},
	}
	for _, st := range steps {
		if st.before != nil {
			st.before()
		}
		now = now.Add(TickInterval)
		if d := r.Tick(now); d.Changed != st.changed {
			t.Errorf("%s: %+v, want Changed %v", st.name, d, st.changed)
		}
	}
}

// TestResume: after a restart, revisions keep the scale their pods run at
// rather than start over at the initial scale; the decider has no history,
// so running pods are held for a stable window, and a revision at zero
// stays there until there is demand.
func TestResume(t *testing.T) {
	s := settingsFor(t, nil, RevisionSpec{})
	a := New()
	a.Resume(epoch, "ns/idle", s, 0, 0)
	a.Resume(epoch, "ns/busy", s, 3, 3)
	for now := epoch.Add(TickInterval); now.Before(epoch.Add(50 * time.Second)); now = now.Add(TickInterval) {
		for _, d := range a.Tick(now) {
			want := map[string]int32{"ns/idle": 0, "ns/busy": 3}[d.Revision]
			if d.Replicas != want || (want == 0 && (d.State != Inactive || d.Mode != model.Proxy)) {
				t.Fatalf("at %v: %+v, want %d replicas (Inactive, Proxy at zero)", now.Sub(epoch), d, want)
			}
		}
	}
	if !a.Record(epoch.Add(51*time.Second), "ns/idle", model.Stat{Concurrency: 1}) {
		t.Fatal("demand for the idle revision did not ask for a poke")
	}
	if d, _ := a.Poke(epoch.Add(51*time.Second), "ns/idle"); d.Replicas != 1 {
		t.Errorf("idle revision on demand: %+v, want 1 replica", d)
	}
}
