package loop

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/autoscale"
	"github.com/kgate/kgate/deploy/inprocess"
	"github.com/kgate/kgate/translator/model"
)

// load is a Metrics whose in-flight level the test sets.
type load struct {
	mu       sync.Mutex
	inflight map[string]float64
}

func (l *load) set(rev string, n float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inflight[rev] = n
}

func (l *load) Collect(time.Time) map[string]model.Stat {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]model.Stat{}
	for rev, n := range l.inflight {
		out[rev] = model.Stat{Concurrency: n, Requests: n}
	}
	return out
}

// pushes records what the loop pushes to the engine, in order.
type pushes struct {
	mu   sync.Mutex
	list []model.RevisionEndpoints
}

func (p *pushes) SetEndpoints(ep model.RevisionEndpoints) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.list = append(p.list, ep)
	return nil
}

func (p *pushes) DeleteEndpoints(rev string) error {
	return p.SetEndpoints(model.RevisionEndpoints{Revision: rev, Mode: "deleted"})
}

func (p *pushes) last(rev string) model.RevisionEndpoints {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.list) - 1; i >= 0; i-- {
		if p.list[i].Revision == rev {
			return p.list[i]
		}
	}
	return model.RevisionEndpoints{}
}

var activators = []model.Endpoint{{Address: "127.0.0.1", Port: 8012}, {Address: "127.0.0.2", Port: 8012}, {Address: "127.0.0.3", Port: 8012}}

// rig is a Loop over a real in-process deployer, driven by a fake clock.
type rig struct {
	t      *testing.T
	ctx    context.Context
	loop   *Loop
	dep    *inprocess.Deployer
	load   *load
	pushes *pushes
	now    time.Time
}

func newRig(t *testing.T, acts []model.Endpoint) *rig {
	t.Helper()
	r := &rig{t: t, ctx: context.Background(), load: &load{inflight: map[string]float64{}}, pushes: &pushes{},
		now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	dep, err := inprocess.New(inprocess.Options{Handler: func(string) http.Handler { return http.NotFoundHandler() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dep.Close)
	r.dep = dep
	r.loop, err = New(Options{Deployer: dep, Endpoints: r.pushes, Metrics: r.load, Activators: acts})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) configure(cfg config.Autoscaler, revs ...Revision) map[string]error {
	r.t.Helper()
	errs := r.loop.Configure(r.ctx, r.now, cfg, revs)
	r.settle()
	return errs
}

// settle waits until the deployer runs the replicas the loop asked for
// and lets the loop see the pods that became ready.
func (r *rig) settle() {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for key, d := range r.loop.Decisions() {
		for int32(len(r.dep.Ready(key))) != d.Replicas {
			if time.Now().After(deadline) {
				r.t.Fatalf("%s: %d pods ready, want %d", key, len(r.dep.Ready(key)), d.Replicas)
			}
			time.Sleep(time.Millisecond)
		}
		r.loop.EndpointsChanged(key)
	}
	r.loop.Handle(r.ctx, r.now)
}

// run advances the fake clock by d, sampling every second and ticking
// every two, as Run does in real time.
func (r *rig) run(d time.Duration) {
	r.t.Helper()
	for end := r.now.Add(d); r.now.Before(end); {
		r.now = r.now.Add(time.Second)
		r.loop.Sample(r.ctx, r.now)
		if r.now.Unix()%2 == 0 {
			r.loop.Tick(r.ctx, r.now)
		}
		r.settle()
	}
}

func (r *rig) replicas(rev string) int32 { return r.dep.Replicas(rev) }

func annotations(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m["autoscaling.knative.dev/"+kv[i]] = kv[i+1]
	}
	return m
}

// The seed's numbers, through the real loop and deployer: concurrency 50
// at target 10 and 100 % utilization runs 5 pods; at 70 %, 8.
func TestSteadyLoadScales(t *testing.T) {
	for _, tt := range []struct {
		utilization string
		want        int32
	}{{"100", 5}, {"70", 8}} {
		t.Run("utilization "+tt.utilization, func(t *testing.T) {
			r := newRig(t, activators)
			const rev = "default/hello-00001"
			r.configure(config.DefaultAutoscaler(), Revision{Key: rev, Spec: autoscale.RevisionSpec{
				Annotations: annotations("target", "10", "target-utilization-percentage", tt.utilization)}})
			r.load.set(rev, 50)
			r.run(90 * time.Second)
			if got := r.replicas(rev); got != tt.want {
				t.Errorf("replicas %d, want %d", got, tt.want)
			}
			if eps := r.pushes.last(rev); len(eps.Pods) != int(tt.want) {
				t.Errorf("endpoints carry %d pods, want %d", len(eps.Pods), tt.want)
			}
		})
	}
}

// Target burst capacity decides the mode: 0 puts the pods in the path as
// soon as they are ready, -1 keeps the activator there; containerConcurrency
// keeps the activator whatever the capacity.
func TestModes(t *testing.T) {
	for _, tt := range []struct {
		name string
		spec autoscale.RevisionSpec
		want model.Mode
	}{
		{"tbc 0", autoscale.RevisionSpec{Annotations: annotations("target-burst-capacity", "0")}, model.Serve},
		{"tbc -1", autoscale.RevisionSpec{Annotations: annotations("target-burst-capacity", "-1")}, model.Proxy},
		{"tbc 0 and containerConcurrency 1", autoscale.RevisionSpec{Annotations: annotations("target-burst-capacity", "0"), ContainerConcurrency: 1}, model.Proxy},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, activators)
			const rev = "default/hello-00001"
			r.configure(config.DefaultAutoscaler(), Revision{Key: rev, Spec: tt.spec})
			r.load.set(rev, 5)
			r.run(10 * time.Second)
			eps := r.pushes.last(rev)
			if eps.Mode != tt.want {
				t.Errorf("mode %s, want %s", eps.Mode, tt.want)
			}
			if len(eps.Pods) == 0 || len(eps.Activators) == 0 {
				t.Errorf("endpoints %+v: want both pods and activators", eps)
			}
		})
	}
	t.Run("no activators: always the pods", func(t *testing.T) {
		r := newRig(t, nil)
		const rev = "default/hello-00001"
		r.configure(config.DefaultAutoscaler(), Revision{Key: rev})
		if eps := r.pushes.last(rev); eps.Mode != model.Serve {
			t.Errorf("mode %s, want Serve", eps.Mode)
		}
	})
}

// An idle revision goes to zero, and traffic is moved to the activator
// before its last pod goes; a poke brings it back at once.
func TestScaleToZeroAndBack(t *testing.T) {
	r := newRig(t, activators)
	const rev = "default/hello-00001"
	r.configure(config.DefaultAutoscaler(), Revision{Key: rev})
	if got := r.replicas(rev); got != 1 {
		t.Fatalf("initial replicas %d, want 1 (initial-scale)", got)
	}
	r.run(150 * time.Second)
	if got := r.replicas(rev); got != 0 {
		t.Fatalf("after 150 s idle, replicas %d, want 0", got)
	}
	if eps := r.pushes.last(rev); eps.Mode != model.Proxy || len(eps.Pods) != 0 {
		t.Errorf("at zero the endpoints are %+v, want the activators only", eps)
	}
	// Every push with no pod was in Proxy mode: traffic never pointed at
	// an empty pod set.
	for _, p := range r.pushes.list {
		if len(p.Pods) == 0 && p.Mode != model.Proxy {
			t.Errorf("pushed %+v: no pods in Serve mode", p)
		}
	}

	r.loop.Demand(rev)
	r.loop.Handle(r.ctx, r.now)
	r.settle()
	if got := r.replicas(rev); got != 1 {
		t.Errorf("after a poke, replicas %d, want 1 at once", got)
	}
}

// A revision with an invalid annotation is reported and left alone; the
// others scale.
func TestInvalidSettingsDoNotStopOthers(t *testing.T) {
	r := newRig(t, activators)
	errs := r.configure(config.DefaultAutoscaler(),
		Revision{Key: "default/bad-00001", Spec: autoscale.RevisionSpec{Annotations: annotations("min-scale", "lots")}},
		Revision{Key: "default/good-00001", Spec: autoscale.RevisionSpec{Annotations: annotations("min-scale", "2")}},
	)
	if err := errs["default/bad-00001"]; err == nil || !strings.Contains(err.Error(), "autoscaling.knative.dev/min-scale") {
		t.Errorf("error %v, want one naming autoscaling.knative.dev/min-scale", err)
	}
	if len(errs) != 1 {
		t.Errorf("errors %v, want only the bad revision's", errs)
	}
	r.run(10 * time.Second)
	if got := r.replicas("default/good-00001"); got != 2 {
		t.Errorf("good revision: replicas %d, want 2", got)
	}
	if got := r.replicas("default/bad-00001"); got != 0 {
		t.Errorf("bad revision: replicas %d, want 0 (not scaled)", got)
	}
}

// A revision no longer configured loses its endpoints and its pods.
func TestRemovedRevision(t *testing.T) {
	r := newRig(t, activators)
	const rev = "default/hello-00001"
	r.configure(config.DefaultAutoscaler(), Revision{Key: rev})
	r.configure(config.DefaultAutoscaler())
	if got := r.replicas(rev); got != 0 {
		t.Errorf("replicas %d, want 0", got)
	}
	if eps := r.pushes.last(rev); eps.Mode != "deleted" {
		t.Errorf("last push %+v, want the endpoints deleted", eps)
	}
}

func TestSubsetIsStableAndSpread(t *testing.T) {
	var acts []model.Endpoint
	for i := range 10 {
		acts = append(acts, model.Endpoint{Address: "10.0.0." + string(rune('0'+i)), Port: 8012})
	}
	a := subset(acts, 3, "default/a-00001")
	if b := subset(acts, 3, "default/a-00001"); len(a) != 3 || !equalEndpoints(model.RevisionEndpoints{Activators: a}, model.RevisionEndpoints{Activators: b}) {
		t.Errorf("subset not stable: %v then %v", a, b)
	}
	used := map[model.Endpoint]bool{}
	for i := range 50 {
		for _, ep := range subset(acts, 2, "default/r"+string(rune('a'+i%26))+string(rune('a'+i/26))) {
			used[ep] = true
		}
	}
	if len(used) < 8 {
		t.Errorf("50 revisions use %d of 10 activators, want them spread", len(used))
	}
	if got := subset(acts, 0, "x"); len(got) != 1 {
		t.Errorf("subset of 0: %d activators, want 1", len(got))
	}
	if got := subset(acts[:2], 5, "x"); len(got) != 2 {
		t.Errorf("subset of 5 from 2: %d, want 2", len(got))
	}
}

func TestModesReportWhatWasPushed(t *testing.T) {
	r := newRig(t, activators)
	const rev = "default/hello-00001"
	r.configure(config.DefaultAutoscaler(), Revision{Key: rev, Spec: autoscale.RevisionSpec{
		Annotations: annotations("target-burst-capacity", "0"), ContainerConcurrency: 1}})
	if got, want := r.loop.Modes()[rev], r.pushes.last(rev).Mode; got != want || got != model.Proxy {
		t.Errorf("Modes() says %s, pushed %s; want Proxy (containerConcurrency 1)", got, want)
	}
}

// Activators that come and go (Kubernetes pods) re-route every revision:
// none means its pods; with some, a revision of little spare capacity goes
// through them (target-burst-capacity 211).
func TestSetActivators(t *testing.T) {
	r := newRig(t, nil)
	const rev = "default/hello-00001"
	r.configure(config.DefaultAutoscaler(), Revision{Key: rev})
	if eps := r.pushes.last(rev); eps.Mode != model.Serve || len(eps.Activators) != 0 {
		t.Fatalf("no activators: endpoints %+v, want Serve and none", eps)
	}
	r.loop.SetActivators(r.ctx, activators[:2])
	if eps := r.pushes.last(rev); eps.Mode != model.Proxy || len(eps.Activators) != 2 {
		t.Fatalf("two activators: endpoints %+v, want Proxy through both", eps)
	}
	n := len(r.pushes.list)
	r.loop.SetActivators(r.ctx, activators[:2])
	if len(r.pushes.list) != n {
		t.Errorf("the same activators again pushed %d more times, want none", len(r.pushes.list)-n)
	}
	r.loop.SetActivators(r.ctx, nil)
	if eps := r.pushes.last(rev); eps.Mode != model.Serve || len(eps.Activators) != 0 {
		t.Errorf("activators gone: endpoints %+v, want Serve and none", eps)
	}
}
