package watcher

import (
	"strings"
	"testing"
	"time"

	"github.com/kgate/kgate/watcher/knative"
)

// A revision turning old enough for garbage collection needs no event: the
// pass that last saw it schedules the pass that collects it
// (Result.NextCollection).
func TestPipelineRunsTheNextCollection(t *testing.T) {
	clk := &clock{t: t0}
	p, _, _ := newPipeline(t, Options{})
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
		return Change{Objects: decode(t, service("hello", image), gc), Replace: true}
	}
	p.Apply(declare("v1"))
	clk.set(t0.Add(time.Minute))
	res := p.Apply(declare("v2"))
	if got, want := res.NextCollection, t0.Add(time.Minute+time.Hour); !got.Equal(want) {
		t.Fatalf("next collection at %v, want %v (an hour after hello-00001 left the traffic)", got, want)
	}
	p.mu.Lock()
	scheduled := p.wakeup != nil
	p.mu.Unlock()
	if !scheduled {
		t.Fatal("the pass scheduled no collection pass")
	}
	select {
	case <-p.Queued():
		t.Fatal("a pass was queued before the collection is due")
	case <-time.After(100 * time.Millisecond):
	}
	// An hour is long to wait: a pass shortly before the collection is due
	// schedules the next by itself, 300 ms ahead by the clock it read; no
	// one else asks for it. When its timer fires the collection is due by
	// the pipeline's clock too.
	due := res.NextCollection
	clk.set(due.Add(-300 * time.Millisecond))
	if res = p.Apply(Change{}); !res.NextCollection.Equal(due) || len(res.Collected) > 0 {
		t.Fatalf("300 ms before: collected %v, next %v; want nothing yet and the same next collection", res.Collected, res.NextCollection)
	}
	clk.set(due)
	select {
	case <-p.Queued():
	case <-time.After(5 * time.Second):
		t.Fatal("no pass queued when the collection was due: the pass scheduled none")
	}
	res = p.Apply(Change{})
	if got := strings.Join(res.Collected, " "); got != "default/hello-00001" || !res.NextCollection.IsZero() {
		t.Errorf("the due pass collected %q, next %v; want default/hello-00001 and nothing more due", got, res.NextCollection)
	}
	p.mu.Lock()
	scheduled = p.wakeup != nil
	p.mu.Unlock()
	if scheduled {
		t.Error("a collection pass is still scheduled with nothing left to collect")
	}
}
