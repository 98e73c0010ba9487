package loop

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/translator/model"
)

// pods is a Deployer whose ready pods the test sets, recording every
// Scale the loop asks for.
type pods struct {
	mu     sync.Mutex
	ready  map[string][]model.Endpoint
	scaled []string
}

func (p *pods) Scale(_ context.Context, rev string, n int32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.scaled = append(p.scaled, rev)
	return nil
}

func (p *pods) Ready(rev string) []model.Endpoint {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.ready[rev])
}

func (p *pods) set(rev string, eps ...model.Endpoint) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ready[rev] = eps
}

func (p *pods) scales() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.scaled)
}

// TestExternalRevision: a revision another autoscaler scales (Knative's
// HPA class) gets no decision and no scale from the loop; its traffic goes
// straight to its ready pods, even with activators to put in the path, and
// follows them as they change; it leaves the KPA's hands when it becomes
// external, and removing it does not scale it to zero.
func TestExternalRevision(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dep := &pods{ready: map[string][]model.Endpoint{}}
	push := &pushes{}
	l, err := New(Options{Deployer: dep, Endpoints: push, Metrics: &load{inflight: map[string]float64{}}, Activators: activators})
	if err != nil {
		t.Fatal(err)
	}
	const hpa, kpa = "default/hpa-00001", "default/kpa-00001"
	pod1 := model.Endpoint{Address: "10.0.0.1", Port: 8080}
	pod2 := model.Endpoint{Address: "10.0.0.2", Port: 8080}

	if errs := l.Configure(ctx, now, config.DefaultAutoscaler(), []Revision{{Key: hpa, External: true}, {Key: kpa}}); len(errs) > 0 {
		t.Fatal(errs)
	}
	if _, ok := l.Decisions()[hpa]; ok {
		t.Errorf("the loop decided for a revision another autoscaler scales: %+v", l.Decisions()[hpa])
	}
	if _, ok := l.Decisions()[kpa]; !ok {
		t.Error("the KPA revision beside it got no decision")
	}
	if got := push.last(hpa); got.Mode != model.Serve || len(got.Pods) != 0 || len(got.Activators) != 0 {
		t.Errorf("endpoints at no pod %+v, want Serve with no pod and no activator", got)
	}
	if got := push.last(kpa); got.Mode != model.Proxy {
		t.Errorf("the KPA revision at no pod is %s, want Proxy: the test's activators are in use", got.Mode)
	}

	dep.set(hpa, pod1, pod2)
	l.EndpointsChanged(hpa)
	l.Handle(ctx, now)
	if got := push.last(hpa); got.Mode != model.Serve || !slices.Equal(got.Pods, []model.Endpoint{pod1, pod2}) || len(got.Activators) != 0 {
		t.Errorf("endpoints %+v, want Serve to both pods, no activator", got)
	}
	if got := l.Modes()[hpa]; got != model.Serve {
		t.Errorf("mode %q, want Serve", got)
	}
	before := push.count(hpa)
	l.EndpointsChanged(hpa)
	l.Handle(ctx, now)
	l.Tick(ctx, now.Add(2*time.Second))
	if n := push.count(hpa) - before; n != 0 {
		t.Errorf("pushed %d more times with nothing changed", n)
	}

	// The KPA revision handed over: no more decisions, its pods stay.
	if errs := l.Configure(ctx, now, config.DefaultAutoscaler(), []Revision{{Key: hpa, External: true}, {Key: kpa, External: true}}); len(errs) > 0 {
		t.Fatal(errs)
	}
	if _, ok := l.Decisions()[kpa]; ok {
		t.Error("a revision handed to another autoscaler keeps its KPA decision")
	}
	if got := push.last(kpa); got.Mode != model.Serve || len(got.Activators) != 0 {
		t.Errorf("handed over: endpoints %+v, want Serve without activators", got)
	}

	scaledBefore := dep.scales()
	if errs := l.Configure(ctx, now, config.DefaultAutoscaler(), nil); len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := dep.scales(); slices.Contains(got[len(scaledBefore):], hpa) {
		t.Errorf("removing an externally scaled revision scaled it: %q", got[len(scaledBefore):])
	}
	if slices.Contains(dep.scales(), hpa) {
		t.Errorf("the loop scaled a revision another autoscaler scales: %q", dep.scales())
	}
	if got := push.last(hpa); got.Mode != "deleted" {
		t.Errorf("removed: last push %+v, want its endpoints deleted", got)
	}
}

// count is how many pushes a revision got.
func (p *pushes) count(rev string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, ep := range p.list {
		if ep.Revision == rev {
			n++
		}
	}
	return n
}
