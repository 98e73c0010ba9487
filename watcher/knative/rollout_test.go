package knative

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/translator/model"
)

// rolloutEvent is one pass of a rollout table: at a time, with the
// Service's image from then on, what the Route says and serves.
type rolloutEvent struct {
	at    time.Duration // since the table's start
	image string        // "" keeps the last one
	// traffic is the Route's status traffic, "revision=percent" in order;
	// weights the main hosts' split, when it differs from traffic.
	traffic, weights string
	next             time.Duration // when the next step is due; 0: none
	rolling          bool          // IngressReady Unknown, RolloutInProgress
}

// Gradual rollout, step by step, as Knative's: the new revision gets 1 %
// when it becomes the latest ready one; once the gateways serve that, the
// rest moves in equal steps of at least 1 %, spaced to fill the duration
// (less the time the first step took, at least a second).
func TestRolloutSteps(t *testing.T) {
	tests := []struct {
		name string
		// annotations on the Service; network is config-network's data.
		annotations string
		network     string
		traffic     string // the Service's spec.traffic, "" for 100 % latest
		// hold is when the gateways do not serve yet what the round builds.
		hold   [2]time.Duration
		events []rolloutEvent
	}{{
		name:        "4s: 1 %, then three steps of 33 % a second apart",
		annotations: "serving.knative.dev/rollout-duration: 4s",
		events: []rolloutEvent{
			{at: 0, image: "v1", traffic: "hello-00001=100"},
			{at: 10 * time.Second, image: "v2", traffic: "hello-00001=99 hello-00002=1", next: 11 * time.Second, rolling: true},
			{at: 10500 * time.Millisecond, traffic: "hello-00001=99 hello-00002=1", next: 11 * time.Second, rolling: true},
			{at: 11 * time.Second, traffic: "hello-00001=66 hello-00002=34", next: 12 * time.Second, rolling: true},
			{at: 12 * time.Second, traffic: "hello-00001=33 hello-00002=67", next: 13 * time.Second, rolling: true},
			{at: 13 * time.Second, traffic: "hello-00002=100"},
			{at: 20 * time.Second, traffic: "hello-00002=100"},
		},
	}, {
		name:    "config-network's rollout-duration: 100 s moves 1 % a second",
		network: "rollout-duration: \"100\"",
		events: []rolloutEvent{
			{at: 0, image: "v1", traffic: "hello-00001=100"},
			{at: 10 * time.Second, image: "v2", traffic: "hello-00001=99 hello-00002=1", next: 11 * time.Second, rolling: true},
			{at: 11 * time.Second, traffic: "hello-00001=98 hello-00002=2", next: 12 * time.Second, rolling: true},
			// A late pass takes one step, and the next is a step later.
			{at: 15 * time.Second, traffic: "hello-00001=97 hello-00002=3", next: 16 * time.Second, rolling: true},
		},
	}, {
		name:        "the annotation wins over config-network",
		annotations: "serving.knative.dev/rollout-duration: 4s",
		network:     "rollout-duration: \"100\"",
		events: []rolloutEvent{
			{at: 0, image: "v1", traffic: "hello-00001=100"},
			{at: 10 * time.Second, image: "v2", traffic: "hello-00001=99 hello-00002=1", next: 11 * time.Second, rolling: true},
			{at: 11 * time.Second, traffic: "hello-00001=66 hello-00002=34", next: 12 * time.Second, rolling: true},
		},
	}, {
		// As Knative's: 0 is "not set", so config-network's applies.
		name:        "an annotation of 0s leaves it to config-network",
		annotations: "serving.knative.dev/rollout-duration: 0s",
		network:     "rollout-duration: \"100\"",
		events: []rolloutEvent{
			{at: 0, image: "v1", traffic: "hello-00001=100"},
			{at: 10 * time.Second, image: "v2", traffic: "hello-00001=99 hello-00002=1", next: 11 * time.Second, rolling: true},
			{at: 11 * time.Second, traffic: "hello-00001=98 hello-00002=2", next: 12 * time.Second, rolling: true},
		},
	}, {
		name: "no rollout duration: at once",
		events: []rolloutEvent{
			{at: 0, image: "v1", traffic: "hello-00001=100"},
			{at: 10 * time.Second, image: "v2", traffic: "hello-00002=100"},
		},
	}, {
		name:        "gateways taking 3 s to serve the first step: 9 steps of 11 %, 3 s apart",
		annotations: "serving.knative.dev/rollout-duration: 30s",
		hold:        [2]time.Duration{10 * time.Second, 13 * time.Second},
		events: []rolloutEvent{
			{at: 0, image: "v1", traffic: "hello-00001=100"},
			{at: 10 * time.Second, image: "v2", traffic: "hello-00001=99 hello-00002=1", rolling: true},
			{at: 12 * time.Second, traffic: "hello-00001=99 hello-00002=1", rolling: true},
			{at: 13 * time.Second, traffic: "hello-00001=99 hello-00002=1", next: 16 * time.Second, rolling: true},
			{at: 16 * time.Second, traffic: "hello-00001=88 hello-00002=12", next: 19 * time.Second, rolling: true},
			{at: 19 * time.Second, traffic: "hello-00001=77 hello-00002=23", next: 22 * time.Second, rolling: true},
		},
	}, {
		name:        "a new revision mid-rollout rolls on from the split as it stands, the newest drained first",
		annotations: "serving.knative.dev/rollout-duration: 4s",
		events: []rolloutEvent{
			{at: 0, image: "v1", traffic: "hello-00001=100"},
			{at: 10 * time.Second, image: "v2", traffic: "hello-00001=99 hello-00002=1", next: 11 * time.Second, rolling: true},
			{at: 11 * time.Second, traffic: "hello-00001=66 hello-00002=34", next: 12 * time.Second, rolling: true},
			{at: 11500 * time.Millisecond, image: "v3", traffic: "hello-00001=66 hello-00002=33 hello-00003=1", next: 12500 * time.Millisecond, rolling: true},
			{at: 12500 * time.Millisecond, traffic: "hello-00001=66 hello-00003=34", next: 13500 * time.Millisecond, rolling: true},
			{at: 13500 * time.Millisecond, traffic: "hello-00001=33 hello-00003=67", next: 14500 * time.Millisecond, rolling: true},
			{at: 14500 * time.Millisecond, traffic: "hello-00003=100"},
		},
	}, {
		name:        "a 50 % latest target beside a pinned revision rolls its own share",
		annotations: "serving.knative.dev/rollout-duration: 4s",
		traffic:     "\n  traffic:\n  - latestRevision: true\n    percent: 50\n  - revisionName: hello-00001\n    percent: 50",
		events: []rolloutEvent{
			{at: 0, image: "v1", traffic: "hello-00001=50 hello-00001=50", weights: "hello-00001=100"},
			{at: 10 * time.Second, image: "v2", traffic: "hello-00001=49 hello-00002=1 hello-00001=50", weights: "hello-00001=99 hello-00002=1", next: 11 * time.Second, rolling: true},
			{at: 11 * time.Second, traffic: "hello-00001=33 hello-00002=17 hello-00001=50", weights: "hello-00001=83 hello-00002=17", next: 12 * time.Second, rolling: true},
			{at: 12 * time.Second, traffic: "hello-00001=17 hello-00002=33 hello-00001=50", weights: "hello-00001=67 hello-00002=33", next: 13 * time.Second, rolling: true},
			{at: 13 * time.Second, traffic: "hello-00001=1 hello-00002=49 hello-00001=50", weights: "hello-00001=51 hello-00002=49", next: 14 * time.Second, rolling: true},
			{at: 14 * time.Second, traffic: "hello-00002=50 hello-00001=50"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: t0}
			r := NewReconciler(clock.now)
			image := ""
			for _, ev := range tt.events {
				clock.t = t0.Add(ev.at)
				if ev.image != "" {
					image = ev.image
				}
				docs := []string{rolloutService(image, tt.annotations, tt.traffic)}
				if tt.network != "" {
					docs = append(docs, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-network\ndata:\n  "+tt.network)
				}
				in := Input{Objects: decode(t, docs...)}
				if tt.hold != [2]time.Duration{} {
					in.Waiting = func(model.Service) (string, bool) {
						return "Waiting for the gateways.", ev.at >= tt.hold[0] && ev.at < tt.hold[1]
					}
				}
				res := r.Reconcile(in)
				checkRollout(t, res, ev, tt.annotations != "" || tt.network != "")
			}
		})
	}
}

// checkRollout compares a pass's result with what the event says.
func checkRollout(t *testing.T, res *Result, ev rolloutEvent, enabled bool) {
	t.Helper()
	if len(res.Problems) > 0 {
		t.Fatalf("at %v: problems %v", ev.at, res.Problems)
	}
	svc, rt := findService(res, "hello"), findRoute(res, "hello")
	if got := trafficOf(svc); got != ev.traffic {
		t.Errorf("at %v: status traffic %q, want %q", ev.at, got, ev.traffic)
	}
	if got := routeTrafficOf(rt); got != ev.traffic {
		t.Errorf("at %v: the Route's status traffic %q, want %q", ev.at, got, ev.traffic)
	}
	want := ev.weights
	if want == "" {
		want = ev.traffic
	}
	if got := weightsOf(res); got != want {
		t.Errorf("at %v: the main hosts' split %q, want %q", ev.at, got, want)
	}
	var next time.Time
	if ev.next > 0 {
		next = t0.Add(ev.next)
	}
	if !res.NextStep.Equal(next) {
		t.Errorf("at %v: next step at %v, want %v", ev.at, res.NextStep.Sub(t0), ev.next)
	}
	c := condOf(t, rt.Status.Conditions, servingv1.ConditionIngressReady)
	if rolling := c.Reason == ReasonRolloutInProgress && c.Status == corev1.ConditionUnknown; rolling != ev.rolling {
		t.Errorf("at %v: IngressReady %s %s, want rolling out %v", ev.at, c.Status, c.Reason, ev.rolling)
	}
	// Ready says RolloutInProgress unless something False comes first.
	if assigned := condOf(t, rt.Status.Conditions, servingv1.ConditionAllTrafficAssigned); ev.rolling && assigned.Status == corev1.ConditionTrue {
		if c := condOf(t, svc.Status.Conditions, servingv1.ConditionReady); c.Status != corev1.ConditionUnknown || c.Reason != ReasonRolloutInProgress {
			t.Errorf("at %v: the Service's Ready %s %s, want Unknown RolloutInProgress", ev.at, c.Status, c.Reason)
		}
	}
	if _, annotated := rt.Annotations[AnnotationRollout]; annotated != enabled {
		t.Errorf("at %v: the Route's %s annotation present %v, want %v", ev.at, AnnotationRollout, annotated, enabled)
	}
}

// rolloutService is a Service named hello with the image, annotations and
// traffic given.
func rolloutService(image, annotations, traffic string) string {
	var meta string
	if annotations != "" {
		meta = "\n  annotations:\n    " + annotations
	}
	return service("hello", image, meta) + traffic
}

// routeTrafficOf renders a Route's status traffic as trafficOf does a
// Service's.
func routeTrafficOf(rt *servingv1.Route) string {
	return trafficOf(&servingv1.Service{Status: servingv1.ServiceStatus{RouteStatusFields: rt.Status.RouteStatusFields}})
}

// weightsOf renders the weighted split of the model's first host's
// catch-all route, "revision=percent" for each split with traffic.
func weightsOf(res *Result) string {
	if len(res.Model.Services) == 0 || len(res.Model.Services[0].VirtualHosts) == 0 {
		return ""
	}
	var parts []string
	for _, rt := range res.Model.Services[0].VirtualHosts[0].Routes {
		if len(rt.Headers) > 0 {
			continue
		}
		for _, s := range rt.Splits {
			if s.Percent > 0 {
				parts = append(parts, fmt.Sprintf("%s=%d", strings.TrimPrefix(s.Revision, "default/"), s.Percent))
			}
		}
	}
	return strings.Join(parts, " ")
}

// A restart mid-rollout resumes it: restored from the stored objects (the
// Route's serving.knative.dev/rollout annotation, through JSON as the API
// server or kgate local's state store keeps it), the split stays where it
// was and the steps go on at their times, instead of starting over at 1 %
// or jumping to 100 %.
func TestRolloutResumesAfterRestart(t *testing.T) {
	clock := &fakeClock{t: t0}
	const ann = "serving.knative.dev/rollout-duration: 4s"
	objs := func(image string) Input { return Input{Objects: decode(t, rolloutService(image, ann, ""))} }
	before := NewReconciler(clock.now)
	before.Reconcile(objs("v1"))
	clock.t = t0.Add(10 * time.Second)
	before.Reconcile(objs("v2"))
	clock.t = t0.Add(11 * time.Second)
	res := before.Reconcile(objs("v2"))
	checkRollout(t, res, rolloutEvent{at: 11 * time.Second, traffic: "hello-00001=66 hello-00002=34", next: 12 * time.Second, rolling: true}, true)

	stored := Stored{
		Services: roundTrip(t, res.Services), Configurations: roundTrip(t, res.Configurations),
		Routes: roundTrip(t, res.Routes), Revisions: roundTrip(t, res.Revisions), Declared: before.Declared(),
	}
	after := NewReconciler(clock.now)
	after.Restore(stored)
	for _, ev := range []rolloutEvent{
		{at: 11500 * time.Millisecond, traffic: "hello-00001=66 hello-00002=34", next: 12 * time.Second, rolling: true},
		{at: 12 * time.Second, traffic: "hello-00001=33 hello-00002=67", next: 13 * time.Second, rolling: true},
		{at: 13 * time.Second, traffic: "hello-00002=100"},
	} {
		clock.t = t0.Add(ev.at)
		checkRollout(t, after.Reconcile(objs("v2")), ev, true)
	}

	t.Run("an annotation that does not add up is dropped", func(t *testing.T) {
		bad := roundTrip(t, res.Routes)
		bad[0].Annotations[AnnotationRollout] = `{"configurations":[{"configurationName":"hello","percent":100,"revisions":[{"revisionName":"hello-00001","percent":70}]}]}`
		r := NewReconciler(clock.now)
		r.Restore(Stored{Services: stored.Services, Configurations: stored.Configurations, Routes: bad, Revisions: stored.Revisions})
		clock.t = t0.Add(12 * time.Second)
		// Without a previous state the latest revision gets it all, as in
		// Knative.
		checkRollout(t, r.Reconcile(objs("v2")), rolloutEvent{at: 12 * time.Second, traffic: "hello-00002=100"}, true)
	})
}

// A rollout that names a revision gone since (collected, or its
// Configuration deleted while stopped) does not route to it: the target
// gets its share at once.
func TestRolloutForgetsRevisionsGone(t *testing.T) {
	clock := &fakeClock{t: t0}
	objs := func(image string) Input {
		return Input{Objects: decode(t, rolloutService(image, "serving.knative.dev/rollout-duration: 4s", ""))}
	}
	before := NewReconciler(clock.now)
	before.Reconcile(objs("v1"))
	clock.t = t0.Add(10 * time.Second)
	res := before.Reconcile(objs("v2"))
	var revs []*servingv1.Revision
	for _, r := range res.Revisions {
		if r.Name != "hello-00001" {
			revs = append(revs, r)
		}
	}
	after := NewReconciler(clock.now)
	after.Restore(Stored{Services: res.Services, Configurations: res.Configurations, Routes: res.Routes, Revisions: revs})
	clock.t = t0.Add(10500 * time.Millisecond)
	checkRollout(t, after.Reconcile(objs("v2")), rolloutEvent{at: 10500 * time.Millisecond, traffic: "hello-00002=100"}, true)
}

// While a Route's traffic does not resolve (a target names a revision that
// does not exist), it keeps serving its split as it stands, as Knative
// leaves the Ingress alone: no step is taken or scheduled. Once it
// resolves again, the rollout goes on.
func TestRolloutStandsStillWhileTrafficDoesNotResolve(t *testing.T) {
	clock := &fakeClock{t: t0}
	r := NewReconciler(clock.now)
	const ann = "serving.knative.dev/rollout-duration: 4s"
	broken := "\n  traffic:\n  - latestRevision: true\n    percent: 100\n  - revisionName: hello-00009\n    percent: 0"
	for _, ev := range []struct {
		traffic string
		rolloutEvent
	}{
		{"", rolloutEvent{at: 0, image: "v1", traffic: "hello-00001=100"}},
		{"", rolloutEvent{at: 10 * time.Second, image: "v2", traffic: "hello-00001=99 hello-00002=1", next: 11 * time.Second, rolling: true}},
		{"", rolloutEvent{at: 11 * time.Second, traffic: "hello-00001=66 hello-00002=34", next: 12 * time.Second, rolling: true}},
		{broken, rolloutEvent{at: 11500 * time.Millisecond, traffic: "hello-00001=66 hello-00002=34", rolling: true}},
		{broken, rolloutEvent{at: 13 * time.Second, traffic: "hello-00001=66 hello-00002=34", rolling: true}},
		{"", rolloutEvent{at: 14 * time.Second, traffic: "hello-00001=33 hello-00002=67", next: 15 * time.Second, rolling: true}},
	} {
		clock.t = t0.Add(ev.at)
		image := "v2"
		if ev.image != "" {
			image = ev.image
		}
		res := r.Reconcile(Input{Objects: decode(t, rolloutService(image, ann, ev.traffic))})
		if ev.traffic == broken {
			res.Problems = nil // the missing revision, reported on spec.traffic
			if c := condOf(t, findRoute(res, "hello").Status.Conditions, servingv1.ConditionAllTrafficAssigned); c.Status != corev1.ConditionFalse {
				t.Fatalf("at %v: AllTrafficAssigned %s, want False", ev.at, c.Status)
			}
		}
		checkRollout(t, res, ev.rolloutEvent, true)
	}
}

// The annotation is Knative's JSON (traffic.Rollout): the configurations'
// revisions, oldest first, and the step parameters in Unix nanoseconds.
func TestRolloutAnnotationIsKnativesJSON(t *testing.T) {
	clock := &fakeClock{t: t0}
	r := NewReconciler(clock.now)
	objs := func(image string) Input {
		return Input{Objects: decode(t, rolloutService(image, "serving.knative.dev/rollout-duration: 4s", ""))}
	}
	if got, want := findRoute(r.Reconcile(objs("v1")), "hello").Annotations[AnnotationRollout],
		`{"configurations":[{"configurationName":"hello","percent":100,"revisions":[{"revisionName":"hello-00001","percent":100}],"stepParams":{}}]}`; got != want {
		t.Errorf("before a rollout:\n got %s\nwant %s", got, want)
	}
	clock.t = t0.Add(10 * time.Second)
	start := clock.t.UnixNano()
	want := fmt.Sprintf(`{"configurations":[{"configurationName":"hello","percent":100,`+
		`"revisions":[{"revisionName":"hello-00001","percent":99},{"revisionName":"hello-00002","percent":1}],`+
		`"stepParams":{"starttime":%d,"nextStepTime":%d,"stepDuration":1000000000,"stepSize":33}}]}`, start, start+int64(time.Second))
	if got := findRoute(r.Reconcile(objs("v2")), "hello").Annotations[AnnotationRollout]; got != want {
		t.Errorf("a rollout started:\n got %s\nwant %s", got, want)
	}
}

// roundTrip copies objects through JSON, as a store keeps them.
func roundTrip[T any](t *testing.T, objs []T) []T {
	t.Helper()
	b, err := json.Marshal(objs)
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// An invalid rollout-duration is reported on its field and the last valid
// version keeps serving.
func TestRolloutDurationInvalid(t *testing.T) {
	r := NewReconciler((&fakeClock{t: t0}).now)
	res := r.Reconcile(Input{Objects: decode(t, rolloutService("v1", "serving.knative.dev/rollout-duration: 1500ms", ""))})
	if len(res.Problems) != 1 {
		t.Fatalf("problems %v, want one", res.Problems)
	}
	p := res.Problems[0]
	if p.Field != "metadata.annotations[serving.knative.dev/rollout-duration]" || !strings.Contains(p.Message, "not at second precision") {
		t.Errorf("problem %q, want one on the annotation saying it is not whole seconds", p)
	}
}
