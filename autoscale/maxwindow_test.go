package autoscale

import (
	"testing"
	"time"
)

func TestMaxWindow(t *testing.T) {
	// A 6 s span in 2 s slots: the maximum of the last three slots.
	w := newMaxWindow(6*time.Second, 2*time.Second)
	steps := []struct {
		at   time.Duration
		v    int32
		want int32
	}{
		{at: 0, v: 5, want: 5},
		{at: 2 * time.Second, v: 3, want: 5},
		{at: 4 * time.Second, v: 4, want: 5},
		{at: 6 * time.Second, v: 1, want: 4}, // the 5 has left the span
		{at: 7 * time.Second, v: 2, want: 4}, // same slot as 6s: its largest, 2
		{at: 8 * time.Second, v: 1, want: 4}, // 4s is still in the span
		{at: 10 * time.Second, v: 0, want: 2},
		{at: 12 * time.Second, v: 0, want: 1},
		{at: 30 * time.Second, v: 7, want: 7}, // after a gap: only the new value
		{at: 32 * time.Second, v: 8, want: 8}, // a larger value wins at once
	}
	for _, s := range steps {
		if got := w.Record(epoch.Add(s.at), s.v); got != s.want {
			t.Errorf("Record(+%v, %d) = %d, want %d", s.at, s.v, got, s.want)
		}
	}
}
