package knative

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kgate/kgate/api/config"
)

// gcNow is the clock of the collection tables: every age counts back from it.
var gcNow = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// gcRevs makes n revisions of Configuration "cfg" in the given routing
// state, named <prefix>-01.., the first the oldest: revision i was created
// createdAgo+(n-i) minutes before gcNow and changed routing state
// activeAgo+(n-i) minutes before it.
func gcRevs(prefix string, n int, state string, createdAgo, activeAgo time.Duration) []*revisionState {
	out := make([]*revisionState, 0, n)
	for i := 1; i <= n; i++ {
		skew := time.Duration(n-i) * time.Minute
		out = append(out, &revisionState{
			namespace: "default", name: fmt.Sprintf("%s-%02d", prefix, i), config: "cfg",
			created: gcNow.Add(-createdAgo - skew), routing: state, routingModified: gcNow.Add(-activeAgo - skew),
			labels: map[string]string{LabelConfiguration: "cfg"},
		})
	}
	return out
}

// with returns revs with set applied to the revision named name.
func with(revs []*revisionState, name string, set func(*revisionState)) []*revisionState {
	for _, r := range revs {
		if r.name == name {
			set(r)
		}
	}
	return revs
}

func gcConfig(t *testing.T, data map[string]string) config.GC {
	t.Helper()
	g, err := config.ParseGC(data)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestCollectable(t *testing.T) {
	const day = 24 * time.Hour
	old := func(prefix string, n int) []*revisionState {
		return gcRevs(prefix, n, RoutingStateReserve, 30*day, 30*day)
	}
	// latest is the Configuration's latest created and ready revision,
	// routed: it is never a candidate.
	latest := func() []*revisionState { return gcRevs("latest", 1, RoutingStateActive, 0, 0) }
	small := map[string]string{"min-non-active-revisions": "1", "max-non-active-revisions": "3"}
	tests := []struct {
		name string
		gc   map[string]string
		revs []*revisionState
		noGC []string // marked no-gc on the live Revision (Input.NoGC)
		want []string // collected, oldest first
	}{
		{name: "defaults: of 25 stale non-active revisions the 20 newest stay (min-non-active-revisions)",
			revs: append(old("r", 25), latest()...), want: []string{"r-01", "r-02", "r-03", "r-04", "r-05"}},
		{name: "defaults: 20 non-active revisions are all kept", revs: append(old("r", 20), latest()...)},
		{name: "min 0 collects every stale non-active revision", gc: map[string]string{"min-non-active-revisions": "0"},
			revs: append(old("r", 3), latest()...), want: []string{"r-01", "r-02", "r-03"}},
		{name: "no more revisions than min in all: nothing, however old", gc: map[string]string{"min-non-active-revisions": "4"},
			revs: append(old("r", 3), latest()...)},
		{name: "retain-since-create-time: created 47h ago is kept though inactive for 30 days", gc: small,
			revs: append(gcRevs("young", 2, RoutingStateReserve, 47*time.Hour, 30*day), latest()...)},
		{name: "retain-since-create-time: created 49h ago and inactive 16h is collected", gc: small,
			revs: append(gcRevs("r", 2, RoutingStateReserve, 49*time.Hour, 16*time.Hour), latest()...), want: []string{"r-01"}},
		{name: "retain-since-last-active-time: routed until 14h ago is kept though created 30 days ago", gc: small,
			revs: append(gcRevs("r", 2, RoutingStateReserve, 30*day, 14*time.Hour), latest()...)},
		{name: "retain-since-create-time disabled: only the last-active time counts",
			gc:   map[string]string{"min-non-active-revisions": "0", "retain-since-create-time": "disabled"},
			revs: append(gcRevs("r", 2, RoutingStateReserve, time.Hour, 16*time.Hour), latest()...), want: []string{"r-01", "r-02"}},
		{name: "retain-since-last-active-time disabled: only the creation time counts",
			gc:   map[string]string{"min-non-active-revisions": "0", "retain-since-last-active-time": "disabled"},
			revs: append(gcRevs("r", 2, RoutingStateReserve, 49*time.Hour, time.Minute), latest()...), want: []string{"r-01", "r-02"}},
		{name: "both retain times disabled: nothing is stale, max still bounds",
			gc:   map[string]string{"min-non-active-revisions": "0", "max-non-active-revisions": "1", "retain-since-create-time": "disabled", "retain-since-last-active-time": "disabled"},
			revs: append(old("r", 3), latest()...), want: []string{"r-01", "r-02"}},
		{name: "max-non-active-revisions: young revisions beyond the max go, oldest first",
			gc:   map[string]string{"min-non-active-revisions": "0", "max-non-active-revisions": "2"},
			revs: append(gcRevs("r", 5, RoutingStateReserve, time.Hour, time.Hour), latest()...), want: []string{"r-01", "r-02", "r-03"}},
		{name: "max-non-active-revisions 0 keeps no non-active revision",
			gc:   map[string]string{"min-non-active-revisions": "0", "max-non-active-revisions": "0"},
			revs: append(gcRevs("r", 2, RoutingStateReserve, time.Hour, time.Hour), latest()...), want: []string{"r-01", "r-02"}},
		{name: "max-non-active-revisions disabled: young revisions stay however many",
			gc:   map[string]string{"min-non-active-revisions": "0", "max-non-active-revisions": "disabled"},
			revs: append(gcRevs("r", 30, RoutingStateReserve, time.Hour, time.Hour), latest()...)},
		{name: "everything disabled collects nothing",
			gc:   map[string]string{"min-non-active-revisions": "0", "max-non-active-revisions": "disabled", "retain-since-create-time": "disabled", "retain-since-last-active-time": "disabled"},
			revs: append(old("r", 3), latest()...)},
		{name: "stale ones count before the max: stale go first, then the oldest beyond max",
			gc:   map[string]string{"min-non-active-revisions": "0", "max-non-active-revisions": "1"},
			revs: append(append(old("stale", 2), gcRevs("young", 3, RoutingStateReserve, time.Hour, time.Hour)...), latest()...),
			want: []string{"stale-01", "stale-02", "young-01", "young-02"}},
		{name: "older last-active goes first, whatever the creation order",
			gc:   map[string]string{"min-non-active-revisions": "1"},
			revs: append(with(old("r", 2), "r-02", func(r *revisionState) { r.routingModified = gcNow.Add(-40 * day) }), latest()...),
			want: []string{"r-02"}},
		{name: "routed (active) revisions are never collected", gc: map[string]string{"min-non-active-revisions": "0", "max-non-active-revisions": "0"},
			revs: append(gcRevs("routed", 3, RoutingStateActive, 30*day, 30*day), latest()...)},
		{name: "never routed (pending) revisions are never collected, as in Knative", gc: map[string]string{"min-non-active-revisions": "0", "max-non-active-revisions": "0"},
			revs: append(gcRevs("pending", 3, RoutingStatePending, 30*day, 30*day), latest()...)},
		{name: "serving.knative.dev/no-gc annotation keeps a revision", gc: map[string]string{"min-non-active-revisions": "0"},
			revs: append(with(old("r", 2), "r-01", func(r *revisionState) { r.annotations = map[string]string{KeyNoGC: "true"} }), latest()...),
			want: []string{"r-02"}},
		{name: "serving.knative.dev/no-gc label keeps a revision (any case)", gc: map[string]string{"min-non-active-revisions": "0"},
			revs: append(with(old("r", 2), "r-02", func(r *revisionState) { r.labels[KeyNoGC] = "True" }), latest()...),
			want: []string{"r-01"}},
		{name: "serving.knative.dev/no-gc on the live Revision (Input.NoGC) keeps a revision the reconciler holds unmarked",
			gc:   map[string]string{"min-non-active-revisions": "0"},
			revs: append(old("r", 2), latest()...), noGC: []string{"default/r-01"},
			want: []string{"r-02"}},
		{name: "no-gc other than true does not", gc: map[string]string{"min-non-active-revisions": "0"},
			revs: append(with(old("r", 1), "r-01", func(r *revisionState) { r.labels[KeyNoGC] = "false" }), latest()...),
			want: []string{"r-01"}},
		{name: "the latest created and latest ready revisions are kept even in reserve",
			gc:   map[string]string{"min-non-active-revisions": "0", "max-non-active-revisions": "0"},
			revs: with(with(old("r", 3), "r-03", func(r *revisionState) { r.name = "latest-01" }), "r-02", func(r *revisionState) { r.name = "ready" }),
			want: []string{"r-01"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := &configState{latestCreated: "latest-01", latestReady: "latest-01"}
			if slices.ContainsFunc(tt.revs, func(r *revisionState) bool { return r.name == "ready" }) {
				cs.latestReady = "ready"
			}
			var noGC map[string]bool
			for _, key := range tt.noGC {
				if noGC == nil {
					noGC = map[string]bool{}
				}
				noGC[key] = true
			}
			var got []string
			for _, r := range collectable(gcConfig(t, tt.gc), gcNow, cs, tt.revs, noGC) {
				got = append(got, r.name)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("collected %v\nwant      %v", got, tt.want)
			}
		})
	}
}

// gcService is a Service whose traffic is the given YAML (traffic entries),
// with its template's image.
func gcService(image, traffic string) string {
	s := service("hello", image)
	if traffic != "" {
		s += "\n  traffic:\n" + traffic
	}
	return s
}

const gcMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: config-gc
data:
  min-non-active-revisions: "0"
  retain-since-create-time: "1h"
  retain-since-last-active-time: "30m"`

// The whole round: routing states follow the Routes, a revision pinned by
// a Route is never collected however old, one that leaves the traffic is
// collected once retain-since-last-active-time has passed since, and the
// Result names what was collected.
func TestReconcileCollectsRevisions(t *testing.T) {
	clock := &fakeClock{t: t0}
	r := NewReconciler(clock.now)
	step := func(d time.Duration, svc string) *Result {
		t.Helper()
		clock.t = clock.t.Add(d)
		return r.Reconcile(Input{Objects: decode(t, gcMap, svc)})
	}
	state := func(res *Result) string {
		var s []string
		for _, rev := range res.Revisions {
			s = append(s, rev.Name+"="+rev.Labels[LabelRoutingState])
		}
		return strings.Join(s, " ")
	}
	pinFirst := `    - revisionName: hello-00001
      percent: 0
    - latestRevision: true
      percent: 100`

	res := step(0, gcService("img:1", ""))
	if got := state(res); got != "hello-00001=active" {
		t.Fatalf("first revision: %s", got)
	}
	step(time.Minute, gcService("img:2", ""))
	res = step(time.Minute, gcService("img:3", pinFirst))
	if got := state(res); got != "hello-00001=active hello-00002=reserve hello-00003=active" {
		t.Fatalf("third revision, the first pinned: %s", got)
	}
	res = step(2*time.Hour, gcService("img:3", pinFirst))
	if got, want := strings.Join(res.Collected, " "), "default/hello-00002"; got != want {
		t.Fatalf("two hours on: collected %q, want %q", got, want)
	}
	if got := state(res); got != "hello-00001=active hello-00003=active" {
		t.Errorf("two hours on: %s; the pinned and the latest must stay", got)
	}
	for _, m := range res.Model.Revisions {
		if m.Name == "hello-00002" {
			t.Errorf("a collected revision is still in the model")
		}
	}

	// Unpinned, the first revision is reserve from now: it stays for
	// retain-since-last-active-time, however old it is.
	res = step(time.Minute, gcService("img:3", ""))
	first := res.Revisions[0]
	if first.Name != "hello-00001" || first.Labels[LabelRoutingState] != RoutingStateReserve ||
		first.Annotations[AnnotationRoutingStateModified] != clock.t.UTC().Format(time.RFC3339) {
		t.Fatalf("unpinned: %s %v %v, want reserve since now", first.Name, first.Labels, first.Annotations)
	}
	// No event marks the end of the retain time: the Result says when a
	// pass must run.
	if want := clock.t.Add(30 * time.Minute); !res.NextCollection.Equal(want) {
		t.Errorf("unpinned: next collection at %v, want %v", res.NextCollection, want)
	}
	if res = step(29*time.Minute, gcService("img:3", "")); len(res.Collected) != 0 {
		t.Fatalf("29 minutes after unpinning: collected %v, want none", res.Collected)
	}
	if res = step(time.Minute, gcService("img:3", "")); strings.Join(res.Collected, " ") != "default/hello-00001" {
		t.Fatalf("30 minutes after unpinning: collected %v, want hello-00001", res.Collected)
	}
	if !res.NextCollection.IsZero() {
		t.Errorf("nothing left to collect, yet a collection is due at %v", res.NextCollection)
	}
	if res = step(time.Hour, gcService("img:3", "")); len(res.Collected) != 0 || state(res) != "hello-00003=active" {
		t.Errorf("later: collected %v, revisions %s; want nothing more, the latest kept", res.Collected, state(res))
	}
	// The revision numbers go on after the collected ones.
	if res = step(time.Minute, gcService("img:4", "")); !strings.Contains(state(res), "hello-00004=") {
		t.Errorf("next revision after collection: %s, want hello-00004", state(res))
	}
}

// The routing state and the time it changed travel on the Revision's
// labels and annotations (the API server, kgate local's store): a restarted
// reconciler counts retain-since-last-active-time from the stored time, not
// from its start.
func TestRoutingStateSurvivesRestore(t *testing.T) {
	clock := &fakeClock{t: t0}
	r := NewReconciler(clock.now)
	r.Reconcile(Input{Objects: decode(t, gcMap, gcService("img:1", ""))})
	clock.t = clock.t.Add(2 * time.Hour)
	res := r.Reconcile(Input{Objects: decode(t, gcMap, gcService("img:2", ""))})
	if got := res.Revisions[0].Labels[LabelRoutingState]; got != RoutingStateReserve {
		t.Fatalf("replaced revision: routing state %q, want reserve", got)
	}

	clock.t = clock.t.Add(20 * time.Minute)
	after := NewReconciler(clock.now)
	after.Restore(Stored{Services: res.Services, Configurations: res.Configurations, Routes: res.Routes, Revisions: res.Revisions})
	again := after.Reconcile(Input{Objects: decode(t, gcMap, gcService("img:2", ""))})
	if len(again.Collected) != 0 {
		t.Fatalf("20 minutes after it left the traffic: collected %v, want none", again.Collected)
	}
	if got, want := again.Revisions[0].Annotations[AnnotationRoutingStateModified], res.Revisions[0].Annotations[AnnotationRoutingStateModified]; got != want {
		t.Errorf("restored routingStateModified %q, want the stored %q", got, want)
	}
	clock.t = clock.t.Add(10 * time.Minute)
	if again = after.Reconcile(Input{Objects: decode(t, gcMap, gcService("img:2", ""))}); strings.Join(again.Collected, " ") != "default/hello-00001" {
		t.Errorf("30 minutes after it left the traffic: collected %v, want hello-00001", again.Collected)
	}
}

// A revision stored before kgate kept routing states (an upgrade) has
// none. As in Knative, where a revision without the label is never
// collected, it is pending unless a Route routes it now: however old, an
// unrouted one stays; the routed one is active, and turns reserve only once
// traffic leaves it, retain-since-last-active-time counting from then.
func TestRestoredWithoutRoutingStateIsPendingUnlessRouted(t *testing.T) {
	clock := &fakeClock{t: t0}
	r := NewReconciler(clock.now)
	pinFirst := `    - revisionName: hello-00001
      percent: 0
    - latestRevision: true
      percent: 100`
	r.Reconcile(Input{Objects: decode(t, gcMap, gcService("img:1", ""))})
	r.Reconcile(Input{Objects: decode(t, gcMap, gcService("img:2", ""))})
	res := r.Reconcile(Input{Objects: decode(t, gcMap, gcService("img:3", ""))})
	for _, rev := range res.Revisions {
		delete(rev.Labels, LabelRoutingState)
		delete(rev.Annotations, AnnotationRoutingStateModified)
	}
	clock.t = clock.t.Add(48 * time.Hour)
	after := NewReconciler(clock.now)
	after.Restore(Stored{Services: res.Services, Configurations: res.Configurations, Routes: res.Routes, Revisions: res.Revisions})
	states := func(res *Result) string {
		var s []string
		for _, rev := range res.Revisions {
			s = append(s, rev.Name+"="+rev.Labels[LabelRoutingState])
		}
		return strings.Join(s, " ")
	}
	// hello-00001 is pinned (routed now), hello-00002 is not.
	again := after.Reconcile(Input{Objects: decode(t, gcMap, gcService("img:3", pinFirst))})
	if got, want := states(again), "hello-00001=active hello-00002=pending hello-00003=active"; got != want || len(again.Collected) != 0 {
		t.Fatalf("restored without a state: %s, collected %v; want %s, none collected", got, again.Collected, want)
	}
	if !again.NextCollection.IsZero() {
		t.Errorf("restored without a state: a collection is due at %v, want none (nothing reserve)", again.NextCollection)
	}
	// Days on, the never-routed one is still there.
	clock.t = clock.t.Add(30 * 24 * time.Hour)
	if again = after.Reconcile(Input{Objects: decode(t, gcMap, gcService("img:3", pinFirst))}); len(again.Collected) != 0 {
		t.Fatalf("30 days on: collected %v, want none", again.Collected)
	}
	// Unpinned, the routed one is reserve from now and goes after
	// retain-since-last-active-time (30m); the pending one stays.
	again = after.Reconcile(Input{Objects: decode(t, gcMap, gcService("img:3", ""))})
	if got, want := states(again), "hello-00001=reserve hello-00002=pending hello-00003=active"; got != want {
		t.Fatalf("unpinned: %s, want %s", got, want)
	}
	clock.t = clock.t.Add(30 * time.Minute)
	again = after.Reconcile(Input{Objects: decode(t, gcMap, gcService("img:3", ""))})
	if got := strings.Join(again.Collected, " "); got != "default/hello-00001" {
		t.Errorf("30 minutes after unpinning: collected %q, want default/hello-00001 only", got)
	}
}

// The old revisions of a Configuration no Route follows, restored without
// a routing state after an upgrade, are never collected: they were never
// routed, as Knative sees a revision without the label.
func TestRestoredStandaloneConfigurationKeepsItsRevisions(t *testing.T) {
	cfg := func(image string) string {
		return `apiVersion: serving.knative.dev/v1
kind: Configuration
metadata:
  name: standalone
spec:
  template:
    spec:
      containers:
        - image: ` + image
	}
	clock := &fakeClock{t: t0}
	r := NewReconciler(clock.now)
	r.Reconcile(Input{Objects: decode(t, gcMap, cfg("img:1"))})
	r.Reconcile(Input{Objects: decode(t, gcMap, cfg("img:2"))})
	res := r.Reconcile(Input{Objects: decode(t, gcMap, cfg("img:3"))})
	if len(res.Revisions) != 3 {
		t.Fatalf("%d revisions, want 3", len(res.Revisions))
	}
	for _, rev := range res.Revisions {
		delete(rev.Labels, LabelRoutingState)
		delete(rev.Annotations, AnnotationRoutingStateModified)
	}
	clock.t = clock.t.Add(48 * time.Hour)
	after := NewReconciler(clock.now)
	after.Restore(Stored{Configurations: res.Configurations, Revisions: res.Revisions})
	for _, d := range []time.Duration{0, 15 * time.Hour, 30 * 24 * time.Hour} {
		clock.t = clock.t.Add(d)
		again := after.Reconcile(Input{Objects: decode(t, gcMap, cfg("img:3"))})
		if len(again.Collected) != 0 || len(again.Revisions) != 3 {
			t.Fatalf("%v after the restart: collected %v, %d revisions left; want none collected", d, again.Collected, len(again.Revisions))
		}
		for _, rev := range again.Revisions {
			if got := rev.Labels[LabelRoutingState]; got != RoutingStatePending {
				t.Errorf("%v after the restart: %s is %q, want pending", d, rev.Name, got)
			}
		}
	}
}

// A no-gc mark put on the live Revision after the reconciler made (or
// restored) it reaches it through Input.NoGC: the revision is not
// collected while it is marked, nor does it make a collection due; once
// the mark is gone it is collected as any other.
func TestLiveNoGCKeepsARevision(t *testing.T) {
	clock := &fakeClock{t: t0}
	r := NewReconciler(clock.now)
	r.Reconcile(Input{Objects: decode(t, gcMap, gcService("img:1", ""))})
	clock.t = clock.t.Add(time.Minute)
	res := r.Reconcile(Input{Objects: decode(t, gcMap, gcService("img:2", ""))})
	if want := clock.t.Add(59 * time.Minute); !res.NextCollection.Equal(want) {
		t.Fatalf("unmarked: next collection at %v, want %v", res.NextCollection, want)
	}
	marked := map[string]bool{"default/hello-00001": true}
	clock.t = clock.t.Add(time.Minute)
	if res = r.Reconcile(Input{Objects: decode(t, gcMap, gcService("img:2", "")), NoGC: marked}); !res.NextCollection.IsZero() {
		t.Errorf("marked: next collection at %v, want none", res.NextCollection)
	}
	clock.t = clock.t.Add(2 * time.Hour)
	if res = r.Reconcile(Input{Objects: decode(t, gcMap, gcService("img:2", "")), NoGC: marked}); len(res.Collected) != 0 {
		t.Fatalf("marked no-gc on the live Revision: collected %v, want none", res.Collected)
	}
	if res = r.Reconcile(Input{Objects: decode(t, gcMap, gcService("img:2", ""))}); strings.Join(res.Collected, " ") != "default/hello-00001" {
		t.Errorf("mark removed: collected %v, want default/hello-00001", res.Collected)
	}
}

// A config-gc that does not parse is a problem naming the key, and the last
// valid one stays in effect, as for every ConfigMap.
func TestInvalidConfigGCKeepsTheLastValid(t *testing.T) {
	clock := &fakeClock{t: t0}
	r := NewReconciler(clock.now)
	bad := strings.Replace(gcMap, `min-non-active-revisions: "0"`, `min-non-active-revisions: "5000"`, 1)
	r.Reconcile(Input{Objects: decode(t, gcMap, gcService("img:1", ""))})
	clock.t = clock.t.Add(time.Minute)
	r.Reconcile(Input{Objects: decode(t, gcMap, gcService("img:2", ""))})
	clock.t = clock.t.Add(2 * time.Hour)
	res := r.Reconcile(Input{Objects: decode(t, bad, gcService("img:2", ""))})
	var msgs []string
	for _, p := range res.Problems {
		msgs = append(msgs, p.String())
	}
	if want := "config-gc: min-non-active-revisions: 5000 must be <= max-non-active-revisions (1000)"; !strings.Contains(strings.Join(msgs, "\n"), want) {
		t.Errorf("problems %q, want one saying %q", msgs, want)
	}
	if got := strings.Join(res.Collected, " "); got != "default/hello-00001" {
		t.Errorf("collected %q under the last valid config-gc (min 0), want default/hello-00001", got)
	}
}

// A Configuration not served this round (invalid, with no valid version to
// fall back on) has nothing collected: its revisions are forgotten with it,
// never named for deletion.
func TestUnservedConfigurationCollectsNothing(t *testing.T) {
	clock := &fakeClock{t: t0}
	r := NewReconciler(clock.now)
	r.Reconcile(Input{Objects: decode(t, gcMap, gcService("img:1", ""))})
	clock.t = clock.t.Add(time.Minute)
	r.Reconcile(Input{Objects: decode(t, gcMap, gcService("img:2", ""))})
	rd := &round{r: r, now: clock.t.Add(2 * time.Hour), res: &Result{}, configs: map[string]*cfgEntry{
		"default/hello": {served: false},
	}}
	rd.collect()
	if len(rd.res.Collected) != 0 {
		t.Errorf("collected %v of a Configuration not served, want none", rd.res.Collected)
	}
	rd.configs["default/hello"].served = true
	rd.collect()
	if got := strings.Join(rd.res.Collected, " "); got != "default/hello-00001" {
		t.Errorf("served again: collected %q, want default/hello-00001", got)
	}
}
