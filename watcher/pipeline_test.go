package watcher

import (
	"bytes"
	"context"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/api/manifest"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/watcher/knative"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// routing records what each pass pushes.
type routing struct {
	mu     sync.Mutex
	pushes [][]string // the Service keys of each push
}

func (r *routing) UpdateRouting(services []model.Service, _ []model.Revision) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var keys []string
	for _, s := range services {
		keys = append(keys, s.Key())
	}
	r.pushes = append(r.pushes, keys)
	return nil
}

func (r *routing) last() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pushes) == 0 {
		return nil
	}
	return r.pushes[len(r.pushes)-1]
}

// gateways serves what it was told, once pushed: Waiting is "" for the
// Services in served.
type gateways struct {
	mu     sync.Mutex
	served map[string]bool
}

func (g *gateways) Waiting(svc model.Service) (string, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.served[svc.Key()] {
		return "", false
	}
	return "Waiting for the gateways to apply the route.", true
}

func (g *gateways) serve(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.served[key] = true
}

func decode(t *testing.T, docs ...string) []manifest.Object {
	t.Helper()
	objs, errs := manifest.Decode("test.yaml", []byte(strings.Join(docs, "\n---\n")))
	if len(errs) > 0 {
		t.Fatalf("decoding: %v", errs)
	}
	return objs
}

func service(name, image string) string {
	return `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: ` + name + `
spec:
  template:
    spec:
      containers:
        - image: ` + image
}

func ready(res *knative.Result, name string) corev1.ConditionStatus {
	for _, s := range res.Services {
		if s.Name != name {
			continue
		}
		for _, c := range s.Status.Conditions {
			if c.Type == servingv1.ConditionReady {
				return c.Status
			}
		}
	}
	return "absent"
}

func newPipeline(t *testing.T, opts Options) (*Pipeline, *routing, *bytes.Buffer) {
	t.Helper()
	r := &routing{}
	logs := &bytes.Buffer{}
	opts.Routing = r
	opts.Now = func() time.Time { return t0 }
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	return New(opts), r, logs
}

func TestPipelineChanges(t *testing.T) {
	p, r, _ := newPipeline(t, Options{})
	a, b := decode(t, service("a", "img")), decode(t, service("b", "img"))
	type step struct {
		name   string
		change Change
		pushed []string
	}
	for _, s := range []step{
		{"a source reads everything", Change{Objects: append(a, b...), Replace: true}, []string{"default/a", "default/b"}},
		{"an object added", Change{Objects: decode(t, service("c", "img"))}, []string{"default/a", "default/b", "default/c"}},
		{"an object updated keeps its rank", Change{Objects: decode(t, service("a", "img:2"))}, []string{"default/a", "default/b", "default/c"}},
		{"an object deleted", Change{Deleted: []ObjectKey{{Kind: "Service", Namespace: "default", Name: "b"}}}, []string{"default/a", "default/c"}},
		{"an empty change runs a pass over the same objects", Change{}, []string{"default/a", "default/c"}},
		{"a new full read replaces everything", Change{Objects: b, Replace: true}, []string{"default/b"}},
	} {
		res := p.Apply(s.change)
		if got := r.last(); !reflect.DeepEqual(got, s.pushed) {
			t.Errorf("%s: pushed %v, want %v", s.name, got, s.pushed)
		}
		if res != p.Current() {
			t.Errorf("%s: Current is not the pass's result", s.name)
		}
	}
	if got := p.Current().Revisions; len(got) != 1 || got[0].Name != "b-00001" {
		t.Errorf("revisions after the last full read: %v, want only b-00001", got)
	}
}

func TestPipelineReadinessIsAnInput(t *testing.T) {
	p, r, _ := newPipeline(t, Options{Deployed: true})
	res := p.Apply(Change{Objects: decode(t, service("a", "img")), Replace: true})
	if ready(res, "a") != corev1.ConditionUnknown || len(r.last()) != 0 {
		t.Fatalf("before its revision is ready: Ready %s, pushed %v; want Unknown, nothing routed", ready(res, "a"), r.last())
	}

	// Ready arrives later, from the deployer or the autoscaler: queued,
	// applied by the next pass.
	p.Submit(Change{Ready: []string{"default/a-00001"}})
	select {
	case <-p.Queued():
	default:
		t.Fatal("Submit did not signal Queued")
	}
	if !p.Pending() {
		t.Error("a change is queued, Pending is false")
	}
	res = p.Apply(Change{})
	if p.Pending() {
		t.Error("the pass took the queued change, Pending is still true")
	}
	if ready(res, "a") != corev1.ConditionTrue || !reflect.DeepEqual(r.last(), []string{"default/a"}) {
		t.Errorf("once ready: Ready %s, pushed %v; want True, a routed", ready(res, "a"), r.last())
	}

	// Repeating what is known queues nothing.
	p.Submit(Change{Ready: []string{"default/a-00001"}})
	p.Submit(Change{Failed: map[string]knative.Failure{}})
	select {
	case <-p.Queued():
		t.Error("a change repeating what is known was queued")
	default:
	}

	// A revision that cannot run is not Ready, with the failure's reason.
	p.Submit(Change{Failed: map[string]knative.Failure{"default/a-00001": {Reason: "ContainerNotRunnable", Message: "no command"}}})
	res = p.Apply(Change{})
	rev := res.Revisions[0]
	var got servingv1.Condition
	for _, c := range rev.Status.Conditions {
		if c.Type == servingv1.ConditionReady {
			got = c
		}
	}
	if got.Status != corev1.ConditionFalse || got.Reason != "ContainerNotRunnable" {
		t.Errorf("failed revision: Ready = %+v, want False ContainerNotRunnable", got)
	}
}

// TestPipelineForgetsTheReadinessOfRevisionsGone: a revision's readiness
// goes with it, in the incremental passes too, and readiness reported for
// a revision that does not exist is not kept for one made later: a Service
// deleted and made again under its name, or made after its revision's
// pods were reported, is not Ready before its pods say so.
func TestPipelineForgetsTheReadinessOfRevisionsGone(t *testing.T) {
	p, _, _ := newPipeline(t, Options{Deployed: true})
	a, b := decode(t, service("a", "img")), decode(t, service("b", "img"))
	p.Apply(Change{Objects: append(slices.Clone(a), b...), Replace: true})
	res := p.Apply(Change{Objects: append(slices.Clone(a), b...), Replace: true, Ready: []string{"default/a-00001", "default/b-00001"}})
	if res.Changed == nil || ready(res, "a") != corev1.ConditionTrue || ready(res, "b") != corev1.ConditionTrue {
		t.Fatalf("incremental %v; Ready a %s, b %s; want both True", res.Changed != nil, ready(res, "a"), ready(res, "b"))
	}
	for _, s := range []struct {
		name  string
		ch    Change
		wantB corev1.ConditionStatus
	}{
		{"b deleted", Change{Objects: a, Replace: true}, "absent"},
		{"b made again", Change{Objects: append(slices.Clone(a), b...), Replace: true}, corev1.ConditionUnknown},
		{"b deleted again", Change{Objects: a, Replace: true}, "absent"},
		{"its pods reported before it is made", Change{Objects: a, Replace: true, Ready: []string{"default/b-00001"}}, "absent"},
		{"b made after", Change{Objects: append(slices.Clone(a), b...), Replace: true}, corev1.ConditionUnknown},
		{"its pods ready", Change{Objects: append(slices.Clone(a), b...), Replace: true, Ready: []string{"default/b-00001"}}, corev1.ConditionTrue},
	} {
		res := p.Apply(s.ch)
		if res.Changed == nil {
			t.Errorf("%s: a full pass; this test is of the incremental ones", s.name)
		}
		if got := ready(res, "b"); got != s.wantB || ready(res, "a") != corev1.ConditionTrue {
			t.Errorf("%s: Ready b %s, a %s; want b %s, a True", s.name, got, ready(res, "a"), s.wantB)
		}
	}
}

func TestPipelineWithoutDeployEveryRevisionIsReady(t *testing.T) {
	p, r, _ := newPipeline(t, Options{})
	res := p.Apply(Change{Objects: decode(t, service("a", "img")), Replace: true})
	if ready(res, "a") != corev1.ConditionTrue || !reflect.DeepEqual(r.last(), []string{"default/a"}) {
		t.Errorf("no deploy: Ready %s, pushed %v; want True, a routed", ready(res, "a"), r.last())
	}
}

func TestPipelineGateways(t *testing.T) {
	gw := &gateways{served: map[string]bool{}}
	p, r, _ := newPipeline(t, Options{Gateways: gw})
	res := p.Apply(Change{Objects: decode(t, service("a", "img")), Replace: true})
	if ready(res, "a") != corev1.ConditionUnknown || !reflect.DeepEqual(r.last(), []string{"default/a"}) {
		t.Fatalf("before the gateways serve it: Ready %s, pushed %v; want Unknown, and pushed", ready(res, "a"), r.last())
	}
	// The gateways ACK: an empty change re-reads them. It is queued, but
	// not Pending: it changes nothing the pass routes.
	gw.serve("default/a")
	p.Refresh()
	if p.Pending() {
		t.Error("a Refresh is Pending")
	}
	res = p.Apply(Change{})
	if ready(res, "a") != corev1.ConditionTrue {
		t.Errorf("once served: Ready %s, want True", ready(res, "a"))
	}
}

// TestPipelineRechecksAHeldRoute: a pass that leaves a Route held queues
// a pass of its own after Recheck, since a gateway that stays behind stops
// holding it after a time and nothing else would say so.
func TestPipelineRechecksAHeldRoute(t *testing.T) {
	gw := &gateways{served: map[string]bool{}}
	p, _, _ := newPipeline(t, Options{Gateways: gw, Recheck: 20 * time.Millisecond})
	p.Apply(Change{Objects: decode(t, service("a", "img")), Replace: true})
	select {
	case <-p.Queued():
		t.Fatal("a pass was queued at once")
	default:
	}
	gw.serve("default/a") // the stuck gateway has gone stale
	select {
	case <-p.Queued():
	case <-time.After(5 * time.Second):
		t.Fatal("no pass queued after Recheck")
	}
	if res := p.Apply(Change{}); ready(res, "a") != corev1.ConditionTrue {
		t.Errorf("after the recheck: Ready %s, want True", ready(res, "a"))
	}
}

// servedOnPush serves every Service as soon as it is pushed, as the engine
// does for a model change that changes no bytes: no ACK follows.
type servedOnPush struct {
	gateways
	routing
}

func (s *servedOnPush) UpdateRouting(services []model.Service, revs []model.Revision) error {
	for _, svc := range services {
		s.serve(svc.Key())
	}
	return s.routing.UpdateRouting(services, revs)
}

func TestPipelinePassesAgainWhenThePushServedARoute(t *testing.T) {
	s := &servedOnPush{gateways: gateways{served: map[string]bool{}}}
	p := New(Options{Routing: s, Gateways: s, Now: func() time.Time { return t0 }, Logger: slog.New(slog.DiscardHandler)})
	res := p.Apply(Change{Objects: decode(t, service("a", "img")), Replace: true})
	if ready(res, "a") != corev1.ConditionUnknown {
		t.Fatalf("Ready %s, want Unknown until the next pass", ready(res, "a"))
	}
	select {
	case <-p.Queued():
	default:
		t.Fatal("no pass queued: the Route would wait for an ACK that never comes")
	}
	if res = p.Apply(Change{}); ready(res, "a") != corev1.ConditionTrue {
		t.Errorf("Ready %s, want True", ready(res, "a"))
	}
}

func TestPipelineLogsEachProblemAndConflictOnce(t *testing.T) {
	p, _, logs := newPipeline(t, Options{})
	tagged := service("a", "img") + "\n  traffic:\n    - latestRevision: true\n      percent: 100\n      tag: x"
	bad := service("bad", "img") + "\n  traffic:\n    - latestRevision: true\n      percent: 40"
	objs := decode(t, tagged, service("x-a", "img"), bad)
	for range 3 {
		p.Apply(Change{Objects: objs, Replace: true})
	}
	for _, want := range []string{"host already claimed by an earlier Service", "Traffic targets sum to 40"} {
		if n := strings.Count(logs.String(), want); n != 1 {
			t.Errorf("%q logged %d times, want once; logs:\n%s", want, n, logs)
		}
	}
}

func TestPipelineRunAndBase(t *testing.T) {
	p, _, _ := newPipeline(t, Options{})
	results := make(chan *knative.Result, 10)
	testrun.Go(t, context.Background(), "the pipeline's Run", 5*time.Second, func(ctx context.Context) error {
		return p.Run(ctx, func(r *knative.Result) { results <- r })
	})

	base := config.Default()
	base.Domain = config.Domain{Domains: map[string]map[string]string{"127.0.0.1.nip.io": {}}}
	p.Submit(Change{Objects: decode(t, service("a", "img")), Replace: true, Base: &base})
	select {
	case res := <-results:
		if got := res.Services[0].Status.URL.String(); got != "http://a.default.127.0.0.1.nip.io" {
			t.Errorf("URL = %s, want the base domain's", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run ran no pass for a submitted change")
	}
}

func TestScaled(t *testing.T) {
	p, _, _ := newPipeline(t, Options{})
	res := p.Apply(Change{Objects: decode(t, service("a", "img"), service("b", "img")), Replace: true})
	got := Scaled(res, map[string]knative.Failure{"default/b-00001": {Reason: "ContainerNotRunnable"}})
	keys := make([]string, 0, len(got))
	for _, r := range got {
		keys = append(keys, r.Key)
		if r.Spec.Unreachable {
			t.Errorf("%s is routed but Unreachable", r.Key)
		}
	}
	if !slices.Equal(keys, []string{"default/a-00001"}) {
		t.Errorf("Scaled = %v, want a's revision only (b's cannot run)", keys)
	}
}

// TestPipelineRunStopsItsTimersWhenItReturns: the timers a pass arms (the
// next garbage collection, up to hours ahead, and a Recheck) are stopped
// when Run returns, and none is armed after: nothing queues a pass once
// Run has returned.
func TestPipelineRunStopsItsTimersWhenItReturns(t *testing.T) {
	clk := &clock{t: t0}
	// hello is served; held never is, so each pass arms a Recheck.
	gw := &gateways{served: map[string]bool{"default/hello": true}}
	p, _, _ := newPipeline(t, Options{Gateways: gw, Recheck: 300 * time.Millisecond})
	p.opts.Now = clk.now
	p.rec = knative.NewReconciler(clk.now)
	gc := `apiVersion: v1
kind: ConfigMap
metadata:
  name: config-gc
data:
  min-non-active-revisions: "0"
  retain-since-create-time: "1h"
  retain-since-last-active-time: "1h"`
	declare := func(image string) Change {
		return Change{Objects: decode(t, service("hello", image), service("held", "img"), gc), Replace: true}
	}
	p.Apply(declare("v1"))
	clk.set(t0.Add(time.Minute))
	due := p.Apply(declare("v2")).NextCollection
	if due.IsZero() {
		t.Fatal("no collection due: nothing to stop")
	}

	// Run's pass, 300 ms before the collection is due, arms both timers
	// 300 ms ahead.
	clk.set(due.Add(-300 * time.Millisecond))
	results := make(chan *knative.Result, 10)
	stop := testrun.Go(t, context.Background(), "the pipeline's Run", 5*time.Second, func(ctx context.Context) error {
		return p.Run(ctx, func(r *knative.Result) { results <- r })
	})
	p.Refresh()
	select {
	case res := <-results:
		if !res.NextCollection.Equal(due) {
			t.Fatalf("Run's pass: next collection %v, want %v", res.NextCollection, due)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run ran no pass")
	}
	p.mu.Lock()
	armed := p.wakeup != nil && p.recheck != nil
	p.mu.Unlock()
	if !armed {
		t.Fatal("Run's pass armed no collection timer or no Recheck: nothing to stop")
	}

	stop() // ends Run's context and waits for Run to return
	clk.set(due)
	p.mu.Lock()
	wakeup, recheck := p.wakeup, p.recheck
	p.mu.Unlock()
	if wakeup != nil {
		t.Error("the collection timer is still armed after Run returned")
	}
	if recheck != nil && recheck.Stop() {
		t.Error("the Recheck timer was still armed after Run returned")
	}
	select {
	case <-p.Queued():
		t.Error("a pass was queued after Run returned")
	case <-time.After(time.Second): // well past both timers
	}
	// A pass after Run returned arms nothing either.
	p.Apply(Change{})
	p.mu.Lock()
	armed = p.wakeup != nil || p.recheck != nil && p.recheck.Stop()
	p.mu.Unlock()
	if armed {
		t.Error("a pass after Run returned armed a timer")
	}
}

// With Deployed and StartsAtZero, a new revision at zero is routed by the
// pass that makes it; ApplyScaling's scale sees that pass's Result before
// its model is pushed (a new revision's endpoints before the routes naming
// it), and the autoscaler then reporting it Ready queues no second pass.
func TestPipelineScalesBeforeItPushesARevisionAtZero(t *testing.T) {
	r := &routing{}
	p := New(Options{Routing: r, Deployed: true, Now: func() time.Time { return t0 }, Logger: slog.New(slog.DiscardHandler),
		StartsAtZero: func(time.Time, config.Autoscaler, map[string]string, int64) bool { return true }})
	var scaled []string
	res := p.ApplyScaling(Change{Objects: decode(t, service("a", "img")), Replace: true}, func(res *knative.Result) {
		if len(r.pushes) != 0 {
			t.Errorf("scale ran after the push of %v", r.pushes)
		}
		for _, rev := range res.Revisions {
			scaled = append(scaled, rev.Namespace+"/"+rev.Name)
		}
		// The autoscaler's word that it is Ready at zero: nothing new.
		p.Submit(Change{Ready: []string{"default/a-00001"}})
	})
	if !slices.Equal(scaled, []string{"default/a-00001"}) {
		t.Errorf("scale saw %v, want the new revision", scaled)
	}
	if got := r.last(); !slices.Equal(got, []string{"default/a"}) {
		t.Errorf("the pass pushed %v, want the Service routed", got)
	}
	if ready(res, "a") != corev1.ConditionTrue {
		t.Errorf("Ready %s after one pass, want True", ready(res, "a"))
	}
	if p.Pending() {
		t.Error("the autoscaler's Ready queued a second pass")
	}
}
