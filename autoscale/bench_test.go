package autoscale

import (
	"fmt"
	"testing"
	"time"

	"github.com/kgate/kgate/autoscale/metrics"
	"github.com/kgate/kgate/translator/model"
)

// BenchmarkTick10k is one Tick over 10,000 revisions with a minute of load
// history, each fed two reports per second between ticks (not timed). A
// quarter of the revisions average weighted-exponentially and a tenth have
// a scale-down delay. Goal: under 20 ms on one core.
func BenchmarkTick10k(b *testing.B) {
	const n = 10_000
	base := settingsFor(&testing.T{}, nil, RevisionSpec{Annotations: map[string]string{targetKey: "10"}})
	a := New()
	keys := make([]string, n)
	for i := range n {
		s := base
		if i%4 == 0 {
			s.Aggregation = metrics.WeightedExponential
		}
		if i%10 == 0 {
			s.ScaleDownDelay = 5 * time.Minute
		}
		keys[i] = fmt.Sprintf("ns-%d/rev-%d", i%100, i)
		a.Set(epoch, keys[i], s, int32(1+i%5))
	}
	now := epoch
	feed := func() {
		for sec := range 2 {
			at := now.Add(time.Duration(sec) * time.Second)
			for i, k := range keys {
				a.Record(at, k, model.Stat{Concurrency: float64(i % 50), Requests: float64(i % 30)})
			}
		}
		now = now.Add(TickInterval)
	}
	for range 30 { // a minute of history
		feed()
		a.Tick(now)
	}

	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		feed()
		b.StartTimer()
		if got := len(a.Tick(now)); got != n {
			b.Fatalf("Tick decided %d revisions, want %d", got, n)
		}
	}
}
