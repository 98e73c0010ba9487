package autoscale

import (
	"math"
	"time"
)

// TickInterval is how often a revision's scale is decided, as in Knative;
// the scale-down delay counts in slots of it too.
const TickInterval = 2 * time.Second

// decider turns observed load into a desired pod count and an excess burst
// capacity, with the semantics of Knative's pkg/autoscaler/scaling
// autoscaler.go. It holds the panic state and the scale-down delay window.
type decider struct {
	// panicSince is the last time the panic window was over the threshold;
	// zero when not panicking.
	panicSince time.Time
	// maxPanicPods is the largest count decided during this panic: a panic
	// only ever scales up.
	maxPanicPods int32
	// delay holds the largest recent decision; nil without a scale-down
	// delay.
	delay *maxWindow
}

// newDecider starts a decider at now with ready pods. With more than one
// pod ready it starts panicking at that count: a decider that has just
// (re)started has no history, and must not scale running pods down before
// it has seen a window of load.
func newDecider(s *Settings, now time.Time, ready int32) decider {
	d := decider{delay: newDelayWindow(s)}
	if ready > 1 {
		d.panicSince, d.maxPanicPods = now, ready
	}
	return d
}

func newDelayWindow(s *Settings) *maxWindow {
	if s.ScaleDownDelay <= 0 {
		return nil
	}
	return newMaxWindow(s.ScaleDownDelay, TickInterval)
}

// panicking reports whether the decider is in panic mode.
func (d *decider) panicking() bool { return !d.panicSince.IsZero() }

// scale decides at now, given the ready pods and the metric's averages over
// the stable and the panic window.
func (d *decider) scale(s *Settings, now time.Time, ready int32, stable, panicked float64) (desired, ebc int32) {
	// Rates are relative to at least one pod, so that a revision at zero
	// can grow.
	readyF := math.Max(1, float64(ready))
	// maxUp is the most pods one decision may ask for; rounded up, so that
	// a slow rate still allows one more pod.
	maxUp := math.Ceil(s.MaxScaleUpRate * readyF)
	// maxDown is the fewest pods one decision may leave; an unreachable
	// revision may drop at once.
	maxDown := 0.0
	if s.Reachable {
		maxDown = math.Floor(readyF / s.MaxScaleDownRate)
	}

	stablePods := math.Ceil(stable / s.TargetValue)
	panicPods := math.Ceil(panicked / s.TargetValue)
	desiredStable := int32(math.Min(math.Max(stablePods, maxDown), maxUp))
	desiredPanic := int32(math.Min(math.Max(panicPods, maxDown), maxUp))
	if s.ActivationScale > 1 {
		if stablePods > 0 {
			desiredStable = max(desiredStable, s.ActivationScale)
		}
		if panicPods > 0 {
			desiredPanic = max(desiredPanic, s.ActivationScale)
		}
	}

	d.updatePanic(s, now, panicPods/readyF >= s.PanicThreshold)

	desired = desiredStable
	if d.panicking() {
		// The stable window can exceed the panic one (the burst is
		// ebbing); provision for the larger, and never scale down.
		d.maxPanicPods = max(d.maxPanicPods, desiredStable, desiredPanic)
		desired = d.maxPanicPods
	}
	if s.Reachable && d.delay != nil {
		desired = d.delay.Record(now, desired)
	}
	return desired, excessBurstCapacity(s, ready, panicked)
}

// updatePanic enters panic when the panic window is over the threshold,
// extends it while it stays over, and leaves it once the window has been
// under for a whole stable window, by when the burst is in the stable
// average.
func (d *decider) updatePanic(s *Settings, now time.Time, over bool) {
	switch {
	case over:
		d.panicSince = now
	case d.panicking() && d.panicSince.Add(s.StableWindow).Before(now):
		d.panicSince, d.maxPanicPods = time.Time{}, 0
	}
}

// excessBurstCapacity is the capacity the ready pods have beyond the panic
// load and the target burst capacity; negative means the activator must
// stay in the path to absorb bursts. It uses the panic average so that the
// activator is not switched on and off by the stable one's lag. A
// target-burst-capacity of 0 never asks for the activator, -1 always does.
func excessBurstCapacity(s *Settings, ready int32, panicked float64) int32 {
	switch {
	case s.TargetBurstCapacity == 0:
		return 0
	case s.TargetBurstCapacity > 0:
		return int32(math.Floor(float64(ready)*s.TotalValue - s.TargetBurstCapacity - panicked))
	}
	return -1
}
