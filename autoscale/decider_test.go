package autoscale

import (
	"testing"
	"time"
)

// withTarget returns the default settings with a per-pod target value and
// total (target at 100% utilization unless total says otherwise).
func withTarget(t *testing.T, target, total float64) Settings {
	s := settingsFor(t, nil, RevisionSpec{})
	s.TargetValue, s.TotalValue = target, total
	return s
}

func TestDeciderScale(t *testing.T) {
	tests := []struct {
		name           string
		change         func(*Settings)
		ready          int32
		stable, panicV float64
		want, wantEBC  int32
	}{
		{name: "target 10 at 100%, concurrency 50: 5 pods", ready: 5, stable: 50, panicV: 50, want: 5},
		{name: "target 1 at 100%, concurrency 4: 4 pods", change: func(s *Settings) { s.TargetValue, s.TotalValue = 1, 1 }, ready: 4, stable: 4, panicV: 4, want: 4},
		{name: "target 10 at 70%, concurrency 50: ceil(50/7) = 8 pods", change: func(s *Settings) { s.TargetValue = 7 }, ready: 8, stable: 50, panicV: 50, want: 8},
		{name: "any load at all needs a pod", ready: 0, stable: 0.01, panicV: 0.01, want: 1},
		{name: "no load, one pod: zero", ready: 1, want: 0},
		{name: "scale up is limited to max-scale-up-rate times the ready pods, rounded up",
			change: func(s *Settings) { s.MaxScaleUpRate = 1.1 }, ready: 3, stable: 100, panicV: 30, want: 4},
		{name: "a revision at zero grows as if one pod were ready",
			change: func(s *Settings) { s.MaxScaleUpRate = 2 }, ready: 0, stable: 100, panicV: 10, want: 2},
		{name: "scale down is limited to the ready pods over max-scale-down-rate",
			ready: 10, stable: 10, panicV: 10, want: 5},
		{name: "an unreachable revision scales down at once",
			change: func(s *Settings) { s.Reachable = false }, ready: 10, want: 0},
		{name: "activation-scale raises a non-zero count",
			change: func(s *Settings) { s.ActivationScale = 5 }, ready: 0, stable: 1, panicV: 1, want: 5},
		{name: "activation-scale leaves zero alone",
			change: func(s *Settings) { s.ActivationScale = 5 }, ready: 1, want: 0},
		{name: "excess burst capacity: ready capacity minus burst capacity minus panic load, floored",
			change: func(s *Settings) { s.TargetBurstCapacity = 211; s.TotalValue = 100 }, ready: 3, stable: 25, panicV: 25.5, want: 3, wantEBC: 63},
		{name: "excess burst capacity uses the raw ready count, negative at zero",
			change: func(s *Settings) { s.TargetBurstCapacity = 211; s.TotalValue = 100 }, ready: 0, want: 0, wantEBC: -211},
		{name: "target-burst-capacity 0: never any excess needed",
			change: func(s *Settings) { s.TargetBurstCapacity = 0 }, ready: 1, stable: 9, panicV: 9, want: 1, wantEBC: 0},
		{name: "target-burst-capacity -1: always short",
			change: func(s *Settings) { s.TargetBurstCapacity = -1 }, ready: 10, want: 5, wantEBC: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := withTarget(t, 10, 10)
			s.TargetBurstCapacity = 0
			if tc.change != nil {
				tc.change(&s)
			}
			d := newDecider(&s, epoch, 0)
			got, ebc := d.scale(&s, epoch, tc.ready, tc.stable, tc.panicV)
			if got != tc.want || ebc != tc.wantEBC {
				t.Errorf("scale = %d (excess burst capacity %d), want %d (%d)", got, ebc, tc.want, tc.wantEBC)
			}
		})
	}
}

// TestDeciderPanic walks a decider through a burst, tick by tick.
func TestDeciderPanic(t *testing.T) {
	s := withTarget(t, 10, 10) // stable window 60s, panic threshold 200%
	ticks := []struct {
		at             time.Duration
		ready          int32
		stable, panicV float64
		want           int32
		panicking      bool
	}{
		{at: 0, ready: 1, stable: 5, panicV: 5, want: 1},
		// The panic window needs 2 pods: twice the 1 ready, the threshold.
		{at: 2 * time.Second, ready: 1, stable: 6, panicV: 20, want: 2, panicking: true},
		// Still over (6 pods for 2 ready): the panic is extended.
		{at: 4 * time.Second, ready: 2, stable: 8, panicV: 60, want: 6, panicking: true},
		// Under the threshold, but a panic never scales down.
		{at: 6 * time.Second, ready: 6, stable: 10, panicV: 10, want: 6, panicking: true},
		{at: 64 * time.Second, ready: 6, stable: 10, panicV: 10, want: 6, panicking: true},
		// More than a stable window after the last tick over the threshold
		// (4s), the panic ends and the stable count applies, limited by
		// the scale-down rate (6 ready / 2).
		{at: 66 * time.Second, ready: 6, stable: 10, panicV: 10, want: 3},
	}
	d := newDecider(&s, epoch, 1)
	for _, tk := range ticks {
		got, _ := d.scale(&s, epoch.Add(tk.at), tk.ready, tk.stable, tk.panicV)
		if got != tk.want || d.panicking() != tk.panicking {
			t.Errorf("at %v: scale %d (panicking %v), want %d (panicking %v)", tk.at, got, d.panicking(), tk.want, tk.panicking)
		}
	}
}

// TestDeciderStartsInPanic: a decider (re)started with more than one pod
// ready has no history, so it holds the pods for a stable window rather
// than scale them down on an empty average.
func TestDeciderStartsInPanic(t *testing.T) {
	s := withTarget(t, 10, 10)
	if d := newDecider(&s, epoch, 1); d.panicking() {
		t.Error("started with 1 ready pod: panicking, want not")
	}
	d := newDecider(&s, epoch, 3)
	if got, _ := d.scale(&s, epoch.Add(TickInterval), 3, 0, 0); got != 3 || !d.panicking() {
		t.Errorf("started with 3 ready pods, no load: scale %d (panicking %v), want 3 (panicking)", got, d.panicking())
	}
	if got, _ := d.scale(&s, epoch.Add(62*time.Second), 3, 0, 0); got != 1 || d.panicking() {
		t.Errorf("a stable window later: scale %d (panicking %v), want 1 (not panicking)", got, d.panicking())
	}
}

func TestDeciderScaleDownDelay(t *testing.T) {
	s := withTarget(t, 10, 10)
	s.ScaleDownDelay = 10 * time.Second
	s.PanicThreshold = 10 // no panic, whose hold would hide the delay
	d := newDecider(&s, epoch, 0)
	loads := []struct {
		at    time.Duration
		ready int32
		load  float64
		want  int32
	}{
		{at: 0, ready: 1, load: 50, want: 5},
		{at: 2 * time.Second, ready: 5, load: 10, want: 5},
		{at: 8 * time.Second, ready: 5, load: 10, want: 5},
		// Ten seconds (five slots) after the 5 was decided, it has left the
		// window.
		{at: 10 * time.Second, ready: 5, load: 10, want: 2},
	}
	for _, l := range loads {
		if got, _ := d.scale(&s, epoch.Add(l.at), l.ready, l.load, l.load); got != l.want {
			t.Errorf("at %v: scale %d, want %d", l.at, got, l.want)
		}
	}
	// An unreachable revision is not delayed.
	s.Reachable = false
	if got, _ := d.scale(&s, epoch.Add(12*time.Second), 5, 0, 0); got != 0 {
		t.Errorf("unreachable: scale %d, want 0 at once", got)
	}
}
