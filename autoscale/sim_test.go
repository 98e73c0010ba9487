package autoscale

import (
	"testing"
	"time"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/translator/model"
)

// epoch is the fake clock's start; any time works, the decider reads none.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// podStartup is how long a simulated pod takes to become ready, unless a
// test says otherwise.
const podStartup = 3 * time.Second

// sim is a revision under load on a fake clock: each second the data plane
// reports the clients' in-flight requests and request rate, every
// TickInterval the revision decides, pods become ready startup after they
// are asked for and go at once when scaled down, and a poke decides at
// once.
type sim struct {
	t        *testing.T
	rev      *Revision
	now      time.Time
	startup  time.Duration
	ready    int32
	starting []time.Time // when each pod on its way becomes ready
	// concurrency and rps are what the clients generate now; with both 0
	// the data plane sends no report at all.
	concurrency, rps float64
	last             Decision
	// panicDrop says Replicas went down while the decider was panicking.
	panicDrop bool
}

// newSim creates a revision at epoch with the settings that
// config-autoscaler data cm and the annotations give.
func newSim(t *testing.T, cm, ann map[string]string) *sim {
	t.Helper()
	return newSimWith(t, settingsFor(t, cm, RevisionSpec{Annotations: ann}))
}

func newSimWith(t *testing.T, s Settings) *sim {
	sm := &sim{t: t, now: epoch, startup: podStartup, rev: NewRevision(epoch, s, 0)}
	sm.last = sm.rev.last
	sm.apply(sm.last)
	return sm
}

// settingsFor resolves settings or fails the test.
func settingsFor(t *testing.T, cm map[string]string, rev RevisionSpec) Settings {
	t.Helper()
	s, err := resolve(t, cm, rev)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// resolve resolves the settings of rev under config-autoscaler data cm,
// failing the test if cm is invalid.
func resolve(t *testing.T, cm map[string]string, rev RevisionSpec) (Settings, error) {
	t.Helper()
	cfg, err := config.ParseAutoscaler(cm)
	if err != nil {
		t.Fatal(err)
	}
	return NewSettings(cfg, rev)
}

// load sets the clients' concurrency (and a request rate to match).
func (s *sim) load(concurrency float64) { s.concurrency, s.rps = concurrency, concurrency }

// elapsed is the fake time since the revision was created.
func (s *sim) elapsed() time.Duration { return s.now.Sub(epoch) }

// run advances the clock by d, a second at a time.
func (s *sim) run(d time.Duration) {
	s.until(d, func(Decision) bool { return false })
}

// until advances the clock a second at a time until cond holds for a
// decision or limit has passed; it returns the time it took and whether
// cond held.
func (s *sim) until(limit time.Duration, cond func(Decision) bool) (time.Duration, bool) {
	start := s.now
	for s.now.Sub(start) < limit {
		s.now = s.now.Add(time.Second)
		s.startPods()
		if s.concurrency > 0 || s.rps > 0 {
			if s.rev.Record(s.now, model.Stat{Concurrency: s.concurrency, Requests: s.rps}) && s.decide() && cond(s.last) {
				return s.now.Sub(start), true
			}
		}
		if s.now.Sub(epoch)%TickInterval == 0 && s.decide() && cond(s.last) {
			return s.now.Sub(start), true
		}
	}
	return s.now.Sub(start), false
}

// decide ticks the revision and applies the decision; it always returns
// true, so that until can chain it.
func (s *sim) decide() bool {
	d := s.rev.Tick(s.now)
	if d.Replicas < s.last.Replicas && s.last.Panicking && d.Panicking {
		s.panicDrop = true
	}
	s.last = d
	s.apply(d)
	return true
}

// apply starts or stops pods to match d.Replicas.
func (s *sim) apply(d Decision) {
	for s.ready+int32(len(s.starting)) < d.Replicas {
		s.starting = append(s.starting, s.now.Add(s.startup))
	}
	for s.ready+int32(len(s.starting)) > d.Replicas {
		if n := len(s.starting); n > 0 {
			s.starting = s.starting[:n-1]
		} else {
			s.ready--
		}
	}
	s.rev.SetReady(s.ready)
}

// startPods makes the pods whose startup is over ready.
func (s *sim) startPods() {
	waiting := s.starting[:0]
	for _, at := range s.starting {
		if at.After(s.now) {
			waiting = append(waiting, at)
		} else {
			s.ready++
		}
	}
	s.starting = waiting
	s.rev.SetReady(s.ready)
}

// mustReach runs until cond holds, failing the test after limit.
func (s *sim) mustReach(limit time.Duration, what string, cond func(Decision) bool) time.Duration {
	s.t.Helper()
	took, ok := s.until(limit, cond)
	if !ok {
		s.t.Fatalf("at %v: %s not reached within %v; last decision %+v, ready %d", s.elapsed(), what, limit, s.last, s.ready)
	}
	return took
}

// settle runs until the revision is active with its pods ready.
func (s *sim) settle() {
	s.t.Helper()
	s.mustReach(time.Minute, "Active", func(d Decision) bool { return d.State == Active })
}
