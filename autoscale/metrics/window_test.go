package metrics

import (
	"github.com/kgate/kgate/translator/model"

	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// at is t0 plus seconds.
func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

type write struct {
	sec float64
	v   float64
}

func TestLinearAverage(t *testing.T) {
	tests := []struct {
		name   string
		writes []write
		now    float64
		want   float64
	}{
		{name: "nothing written", now: 0, want: 0},
		{name: "a window that just started averages only its first second",
			writes: []write{{0, 1}}, now: 0, want: 1},
		{name: "writes in one second add up",
			writes: []write{{0, 1}, {0.1, 10}}, now: 0.5, want: 11},
		{name: "a full window",
			writes: []write{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}}, now: 4, want: 3},
		{name: "now lagging behind the last write",
			writes: []write{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}}, now: 3.6, want: 3},
		{name: "a second missed between writes counts as zero (rounded to six digits)",
			writes: []write{{0, 4}, {2, 4}}, now: 2, want: 2.666667},
		{name: "silence after the last write is not averaged in",
			writes: []write{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}}, now: 6, want: (3 + 4 + 5) / 3.0},
		{name: "a whole window of silence is zero",
			writes: []write{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}}, now: 9, want: 0},
		{name: "the first write after a window of silence restarts the window",
			writes: []write{{0, 5}, {1, 5}, {20, 1}}, now: 20, want: 1},
		{name: "a write a window older than the last is dropped",
			writes: []write{{10, 1}, {5, 100}}, now: 10, want: 1},
		{name: "a late write within the window counts",
			writes: []write{{10, 1}, {8, 2}}, now: 10, want: 1},
		{name: "rounding keeps sums of fractions exact, so that ceil adds no pod",
			writes: []write{{0, 0.1}, {0, 0.2}}, now: 0, want: 0.3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWindow(5*time.Second, Linear)
			for _, wr := range tc.writes {
				w.Record(at(wr.sec), model.Stat{Concurrency: wr.v, Requests: wr.v})
			}
			// Concurrency and requests are averaged alike.
			if got := w.Average(at(tc.now)); got.Concurrency != tc.want || got.Requests != tc.want {
				t.Errorf("Average = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWeightedAverage(t *testing.T) {
	// The smoothing factor makes the window's buckets carry 99.99% of the
	// weight, but never decays slower than 0.2 per bucket.
	for _, tc := range []struct {
		buckets int
		want    float64
	}{{1, 0.9999}, {5, 0.8415}, {60, 0.2}} {
		if got := smoothing(tc.buckets); math.Abs(got-tc.want) > 1e-4 {
			t.Errorf("smoothing(%d) = %v, want %v", tc.buckets, got, tc.want)
		}
	}

	w := NewWindow(5*time.Second, WeightedExponential)
	for i := range 6 {
		w.Record(at(float64(i)), model.Stat{Concurrency: float64(i + 1)}) // 1 rolls out: 2 3 4 5 6
	}
	tests := []struct {
		name string
		now  float64
		want float64
	}{
		{name: "recent buckets weigh most", now: 5, want: 5.812},
		{name: "silence decays the average", now: 6, want: 5.812 * (1 - smoothing(5))},
		{name: "a whole window of silence is zero", now: 11, want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := w.Average(at(tc.now)).Concurrency; math.Abs(got-tc.want) > 1e-3 {
				t.Errorf("Average = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestIsEmpty(t *testing.T) {
	w := NewWindow(5*time.Second, Linear)
	if !w.IsEmpty(at(0)) {
		t.Error("a new window is not empty")
	}
	w.Record(at(0), model.Stat{})
	if w.IsEmpty(at(5)) {
		t.Error("empty a window after a write of zero, want data until then")
	}
	if !w.IsEmpty(at(6)) {
		t.Error("not empty more than a window after the last write")
	}
}

func TestResize(t *testing.T) {
	tests := []struct {
		name   string
		length time.Duration
		now    float64
		want   float64
	}{
		{name: "shrinking keeps the newest buckets", length: 2 * time.Second, now: 4, want: (4 + 5) / 2.0},
		{name: "growing averages over the old length only", length: 10 * time.Second, now: 4, want: 3},
		{name: "history older than the window is dropped", length: 10 * time.Second, now: 20, want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWindow(5*time.Second, Linear)
			for i := range 5 {
				w.Record(at(float64(i)), model.Stat{Concurrency: float64(i + 1)})
			}
			w.Resize(at(tc.now), tc.length)
			if got := w.Average(at(tc.now)).Concurrency; got != tc.want {
				t.Errorf("Average after resize = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	l := NewLoad(60*time.Second, 6*time.Second, Linear)
	// Two reporters each second for a minute: 10 and 20 in flight, 5 and
	// 15 requests completed.
	for i := range 60 {
		l.Record(at(float64(i)), model.Stat{Concurrency: 10, Requests: 5})
		l.Record(at(float64(i)+0.5), model.Stat{Concurrency: 20, Requests: 15})
	}
	if stable, panicAvg := l.Average(at(59)); stable != (model.Stat{Concurrency: 30, Requests: 20}) || panicAvg != (model.Stat{Concurrency: 30, Requests: 20}) {
		t.Errorf("Average = %v, %v, want concurrency 30 and 20 rps over both windows", stable, panicAvg)
	}
	// The panic window forgets a burst first.
	for i := 60; i < 66; i++ {
		l.Record(at(float64(i)), model.Stat{})
	}
	if stable, panicAvg := l.Average(at(65)); stable.Concurrency != 27 || panicAvg.Concurrency != 0 {
		t.Errorf("Average after 6 idle seconds = %v, %v, want concurrency 27 and 0", stable, panicAvg)
	}
}
