package autoscale

import (
	"time"

	"github.com/kgate/kgate/translator/model"
)

// State is whether a revision is serving, on its way, or idle: Knative's
// PodAutoscaler Active condition.
type State string

// States.
const (
	// Activating: pods are wanted but fewer than needed are ready
	// (Active=Unknown). A new revision starts here.
	Activating State = "Activating"
	// Active: enough pods are ready (Active=True).
	Active State = "Active"
	// Inactive: the revision has no demand and is on its way to, or at,
	// zero pods (Active=False).
	Inactive State = "Inactive"
)

// unknownScale is a desired scale not known yet (no metrics so far).
const unknownScale = -1

// lifecycle applies bounds, initial scale and scale-to-zero to the
// decider's desired count, picks the mode, and tracks the Active state, as
// Knative's KPA reconciler (pkg/reconciler/autoscaling/kpa, scaler.go and
// kpa.go) does once per reconcile.
type lifecycle struct {
	state State
	since time.Time // when state was entered
	// initialized says enough pods were once ready (Knative's
	// ScaleTargetInitialized); initial-scale no longer applies after.
	initialized bool
	mode        model.Mode
	proxySince  time.Time // when mode became Proxy
	// replicas is the scale last applied: what the pods should number.
	replicas int32
	// want is the desired scale last reported; unknownScale until known.
	want int32
}

// newLifecycle starts a revision at now: activating, behind the activator,
// at its initial scale (its Deployment is created with that many pods).
func newLifecycle(s *Settings, now time.Time) lifecycle {
	return lifecycle{
		state: Activating, since: now,
		mode: model.Proxy, proxySince: now,
		replicas: s.InitialScale,
		want:     unknownScale,
	}
}

// resume takes over a revision running at replicas: its initial scale is
// behind it, and at zero it is inactive (since now, which only matters
// once it has pods again).
func (l *lifecycle) resume(replicas int32) {
	l.replicas, l.initialized = replicas, true
	if replicas == 0 {
		l.state = Inactive
	}
}

// reconcile takes the decider's latest desired count and excess burst
// capacity (unknownScale when it has none) and the ready pods at now.
func (l *lifecycle) reconcile(s *Settings, now time.Time, ready, desired, ebc int32) {
	want, apply := l.scale(s, now, desired)
	if apply {
		l.replicas = want
	}
	l.setMode(now, ready, want, ebc)
	l.updateState(s, now, ready, want)
	// A lost desired scale (no metrics yet) does not overwrite a known one.
	if want != unknownScale || l.want < 0 {
		l.want = want
	}
}

// scale bounds desired and applies scale-to-zero, returning the desired
// scale and whether to apply it now.
func (l *lifecycle) scale(s *Settings, now time.Time, desired int32) (int32, bool) {
	if desired < 0 && l.state != Activating {
		return desired, false
	}
	minScale := s.minScale()
	// Until the initial scale was once reached, it is a lower bound too;
	// an unreachable revision is not held up by it.
	if s.InitialScale > 1 && !l.initialized && s.Reachable {
		minScale = max(minScale, s.InitialScale)
	}
	return l.toZero(s, now, applyBounds(minScale, s.MaxScale, desired))
}

// applyBounds clamps x to [lo, hi]; hi 0 means no upper bound.
func applyBounds(lo, hi, x int32) int32 {
	if x < lo {
		return lo
	}
	if hi != 0 && x > hi {
		return hi
	}
	return x
}

// toZero decides whether a desired scale of zero may be applied. A
// revision goes to zero in two steps: once it has been active for a stable
// window with nothing to do it becomes inactive, which puts the activator
// in the path; once the activator has been in the path for the grace
// period (and the last pod retained long enough) the last pod goes. A
// revision that was in proxy mode already skips most of the wait.
func (l *lifecycle) toZero(s *Settings, now time.Time, desired int32) (int32, bool) {
	if desired != 0 {
		return desired, true
	}
	if !s.EnableScaleToZero {
		return 1, true
	}
	inState := now.Sub(l.since)
	switch l.state {
	case Activating:
		// Pods that never become ready are given up on.
		if inState > s.ActivationTimeout {
			return 0, true
		}
		return unknownScale, false
	case Active:
		if inState >= s.StableWindow {
			return 0, false // become inactive first, keeping the pods
		}
		// Recently activated: keep one pod for the rest of the window.
		return 1, true
	}
	return 0, l.lastPodMayGo(s, now)
}

// lastPodMayGo says whether an inactive revision's last pod may go now:
// once it has been inactive for the grace period and the pod retention
// period, or, past the retention period, once the activator has been in
// the path for the grace period (it may have been for long already).
func (l *lifecycle) lastPodMayGo(s *Settings, now time.Time) bool {
	inactive, retention := now.Sub(l.since), s.podRetention()
	switch {
	case inactive >= max(s.ScaleToZeroGracePeriod, retention):
		return true
	case inactive < retention:
		return false
	}
	return l.proxyFor(now) >= s.ScaleToZeroGracePeriod
}

// proxyFor is how long the activator has been in the path.
func (l *lifecycle) proxyFor(now time.Time) time.Duration {
	if l.mode != model.Proxy {
		return 0
	}
	return now.Sub(l.proxySince)
}

// setMode takes the activator out of the path only when pods are wanted,
// there is capacity to spare beyond the target burst capacity, and pods
// are ready to take the traffic.
func (l *lifecycle) setMode(now time.Time, ready, want, ebc int32) {
	mode := model.Proxy
	if want > 0 && ebc >= 0 && ready > 0 {
		mode = model.Serve
	}
	if mode == model.Proxy && l.mode != model.Proxy {
		l.proxySince = now
	}
	l.mode = mode
}

// updateState moves the Active state by Knative's table: no demand (or no
// pods needed) is Inactive; otherwise the revision is Active once enough
// pods are ready and Activating before, except that an inactive revision
// stays inactive until there is demand.
func (l *lifecycle) updateState(s *Settings, now time.Time, ready, want int32) {
	minReady := max(s.minScale(), 1)
	if !l.initialized {
		minReady = max(s.minScale(), s.InitialScale)
	}
	if ready >= minReady {
		l.initialized = true
	}
	next := l.state
	switch {
	case want == 0 || minReady == 0:
		next = Inactive
	case want > 0 || l.state != Inactive:
		next = Active
		if ready < minReady {
			next = Activating
		}
	}
	if next != l.state {
		l.state, l.since = next, now
	}
}
