package autoscale

import (
	"math"
	"time"

	"github.com/kgate/kgate/api/autoscaling"
	"github.com/kgate/kgate/autoscale/metrics"
	"github.com/kgate/kgate/translator/model"
)

// minActivators is the fewest activators put in a revision's path.
const minActivators = 2

// Decision is what a revision should look like after a tick.
type Decision struct {
	// Revision is the revision's key, "namespace/name" (set by Autoscaler).
	Revision string
	// Replicas is how many pods the revision should run now: the scale to
	// apply to its Deployment or local processes.
	Replicas int32
	// DesiredScale is the scale the autoscaler wants, which Knative reports
	// as the revision's desired replicas; -1 until the first metrics. It
	// differs from Replicas while scale-to-zero waits for its grace period
	// (0 wanted, 1 kept) and while the revision is activating.
	DesiredScale int32
	// ExcessBurstCapacity is the spare capacity beyond the panic load and
	// the target burst capacity; negative keeps the activator in the path.
	ExcessBurstCapacity int32
	// Mode says whether the revision's traffic goes to the activator or to
	// its pods.
	Mode model.Mode
	// Activators is how many activators should be in the path in Proxy
	// mode, to cover the revision's capacity and burst capacity.
	Activators int32
	// State is the revision's Active state.
	State State
	// Panicking says the decider is in panic mode.
	Panicking bool
	// StableValue and PanicValue are the metric's averages over the stable
	// and the panic window (concurrency or requests per second).
	StableValue, PanicValue float64
	// Changed says Replicas, Mode, DesiredScale, Activators or State
	// differ from the previous tick's decision, so that a caller pushes
	// only what changed.
	Changed bool
}

// Revision is one revision's autoscaler: its recorded load, its decider
// and its lifecycle. Feed it with Record and SetReady and ask it with
// Tick; it reads no clock and is not safe for concurrent use.
type Revision struct {
	settings Settings
	load     metrics.Load
	decider  decider
	life     lifecycle
	ready    int32
	// desired and ebc are the decider's latest result, kept when a tick
	// has no metrics to decide on.
	desired, ebc int32
	last         Decision
}

// NewRevision starts the autoscaler of a revision created (or first seen,
// after a restart) at now with ready pods.
func NewRevision(now time.Time, s Settings, ready int32) *Revision {
	r := &Revision{
		settings: s,
		load:     metrics.NewLoad(s.StableWindow, s.PanicWindow, s.Aggregation),
		decider:  newDecider(&s, now, ready),
		life:     newLifecycle(&s, now),
		ready:    ready,
		desired:  unknownScale,
		ebc:      initialExcessBurstCapacity(&s),
	}
	r.last = r.decision(0, 0)
	return r
}

// ResumeRevision starts the autoscaler of a revision whose pods already run
// at replicas (ready of them ready), as after a restart of kgate: it keeps
// that scale until its metrics say otherwise, rather than start over at
// the initial scale; a revision at zero stays inactive behind the
// activator until there is demand.
func ResumeRevision(now time.Time, s Settings, replicas, ready int32) *Revision {
	r := NewRevision(now, s, ready)
	r.life.resume(replicas)
	r.last = r.decision(0, 0)
	return r
}

// initialExcessBurstCapacity is what the burst capacity will be at the
// initial scale, so that a revision whose initial pods cannot cover the
// target burst capacity starts behind the activator.
func initialExcessBurstCapacity(s *Settings) int32 {
	if s.TargetBurstCapacity <= 0 {
		return int32(s.TargetBurstCapacity)
	}
	return int32(float64(s.InitialScale)*s.TotalValue - s.TargetBurstCapacity)
}

// Settings returns the revision's current settings.
func (r *Revision) Settings() Settings { return r.settings }

// Update replaces the settings (a config-autoscaler change, or the
// revision's reachability), keeping the panic state and the recorded load,
// resized to changed windows; a changed aggregation algorithm, which
// Knative never changes on a live revision, starts the load afresh.
func (r *Revision) Update(now time.Time, s Settings) {
	old := r.settings
	r.settings = s
	switch {
	case s.Aggregation != old.Aggregation:
		r.load = metrics.NewLoad(s.StableWindow, s.PanicWindow, s.Aggregation)
	case s.StableWindow != old.StableWindow || s.PanicWindow != old.PanicWindow:
		r.load.Resize(now, s.StableWindow, s.PanicWindow)
	}
	if s.ScaleDownDelay != old.ScaleDownDelay {
		r.decider.delay = newDelayWindow(&r.settings)
	}
}

// SetReady records how many of the revision's pods are ready.
func (r *Revision) SetReady(ready int32) { r.ready = ready }

// Record adds a load report received at now. It returns true when the
// revision is at zero (or not yet decided) and the report shows requests
// in flight: the caller should Tick at once rather than wait, so that a
// cold start does not wait for the next tick.
func (r *Revision) Record(now time.Time, s model.Stat) (poke bool) {
	r.load.Record(now, s)
	return r.desired <= 0 && s.Concurrency > 0
}

// Tick decides at now.
func (r *Revision) Tick(now time.Time) Decision {
	s := &r.settings
	// Silence from the data plane while pods are up means idle pods, which
	// Knative would have scraped as zeros every second. Without pods, or
	// with the activator always in the path (nothing to scrape), silence
	// stays silence, so that the first report after a whole window without
	// any restarts the averages at its own value, sizing a cold burst at
	// once.
	if r.ready > 0 && s.TargetBurstCapacity != -1 {
		r.load.Record(now, model.Stat{})
	}
	stable, panicked := r.observe(now)
	// Knative decides nothing without data (the revision keeps its last
	// decision), except with the activator always in the path, where no
	// data means no demand.
	if !r.load.IsEmpty(now) || s.TargetBurstCapacity == -1 {
		r.desired, r.ebc = r.decider.scale(s, now, r.ready, stable, panicked)
	}
	r.life.reconcile(s, now, r.ready, r.desired, r.ebc)

	d := r.decision(stable, panicked)
	d.Changed = d.differsFrom(r.last)
	r.last = d
	return d
}

// differsFrom says whether anything a caller applies differs from prev.
func (d Decision) differsFrom(prev Decision) bool {
	return d.Replicas != prev.Replicas || d.Mode != prev.Mode || d.DesiredScale != prev.DesiredScale ||
		d.Activators != prev.Activators || d.State != prev.State
}

// observe returns the scaling metric's stable and panic averages.
func (r *Revision) observe(now time.Time) (stable, panicked float64) {
	s, p := r.load.Average(now)
	if r.settings.Metric == autoscaling.MetricRPS {
		return s.Requests, p.Requests
	}
	return s.Concurrency, p.Concurrency
}

func (r *Revision) decision(stable, panicked float64) Decision {
	return Decision{
		Replicas:            r.life.replicas,
		DesiredScale:        r.life.want,
		ExcessBurstCapacity: r.ebc,
		Mode:                r.life.mode,
		Activators:          activators(&r.settings, r.ready),
		State:               r.life.state,
		Panicking:           r.decider.panicking(),
		StableValue:         stable,
		PanicValue:          panicked,
	}
}

// activators is how many activators cover the ready pods' capacity plus
// the target burst capacity. With a burst capacity of 0 the activator only
// carries cold starts, which the minimum covers.
func activators(s *Settings, ready int32) int32 {
	if s.TargetBurstCapacity == 0 {
		return minActivators
	}
	capacity := float64(ready) * s.TotalValue
	if s.TargetBurstCapacity > 0 {
		capacity += s.TargetBurstCapacity
	}
	return int32(math.Max(minActivators, math.Ceil(capacity/s.ActivatorCapacity)))
}
