package watcher

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kgate/kgate/watcher/knative"
)

// clock is a settable clock safe across goroutines (the pipeline's timer
// reads it).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// A gradual rollout's next step needs no event: the pass that started it
// schedules the pass that takes the step (Result.NextStep), and the last
// step's pass says none is due.
func TestPipelineRunsTheRolloutsNextStep(t *testing.T) {
	clk := &clock{t: t0}
	p, _, _ := newPipeline(t, Options{})
	p.opts.Now = clk.now
	p.rec = knative.NewReconciler(clk.now)
	rolling := func(image string) Change {
		svc := strings.Replace(service("hello", image), "  name: hello\n",
			"  name: hello\n  annotations:\n    serving.knative.dev/rollout-duration: 4s\n", 1)
		return Change{Objects: decode(t, svc), Replace: true}
	}
	p.Apply(rolling("v1"))
	clk.set(t0.Add(10 * time.Second))
	res := p.Apply(rolling("v2"))
	if got, want := res.NextStep, t0.Add(11*time.Second); !got.Equal(want) {
		t.Fatalf("next step at %v, want %v", got, want)
	}
	select {
	case <-p.Queued():
		t.Fatal("a pass was queued before the step is due")
	case <-time.After(100 * time.Millisecond):
	}
	// The pass scheduled the next by itself, a second ahead by the clock
	// it read: no one else asks for it. When its timer fires the step is
	// due by the pipeline's clock too.
	clk.set(t0.Add(11 * time.Second))
	select {
	case <-p.Queued():
	case <-time.After(5 * time.Second):
		t.Fatal("no pass queued when the step was due: the pass scheduled none")
	}
	res = p.Apply(Change{})
	if got := traffic(res); got != "hello-00001=66 hello-00002=34" {
		t.Errorf("after the step: traffic %q, want hello-00001=66 hello-00002=34", got)
	}
	// One step a pass, the next a step later; then none is due.
	for _, at := range []time.Duration{20 * time.Second, 21 * time.Second} {
		clk.set(t0.Add(at))
		res = p.Apply(Change{})
	}
	if got := traffic(res); got != "hello-00002=100" || !res.NextStep.IsZero() {
		t.Errorf("at the end: traffic %q next %v, want hello-00002=100 and no next step", got, res.NextStep)
	}
}

// traffic renders the first Route's status traffic.
func traffic(res *knative.Result) string {
	var parts []string
	for _, tt := range res.Routes[0].Status.Traffic {
		parts = append(parts, fmt.Sprintf("%s=%d", tt.RevisionName, *tt.Percent))
	}
	return strings.Join(parts, " ")
}

// The pipeline's one timer is for the earlier of the next rollout step and
// the next collection, whichever is set.
func TestNextPassIsTheEarlierDue(t *testing.T) {
	a, b := t0.Add(time.Second), t0.Add(time.Hour)
	for _, c := range []struct {
		step, gc, want time.Time
	}{
		{time.Time{}, time.Time{}, time.Time{}},
		{a, time.Time{}, a},
		{time.Time{}, b, b},
		{a, b, a},
		{b, a, a},
	} {
		if got := nextPass(&knative.Result{NextStep: c.step, NextCollection: c.gc}); !got.Equal(c.want) {
			t.Errorf("step %v, collection %v: next pass %v, want %v", c.step, c.gc, got, c.want)
		}
	}
}
