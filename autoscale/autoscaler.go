package autoscale

import (
	"slices"
	"strings"
	"time"

	"github.com/kgate/kgate/translator/model"
)

// Autoscaler holds the autoscalers of many revisions, keyed by revision
// ("namespace/name"). A loop owns it: it feeds reports with Record and pod
// counts with SetReady, calls Tick every TickInterval, and Poke at once
// when Record asks for it. It does no I/O, reads no clock and is not safe
// for concurrent use.
type Autoscaler struct {
	revisions map[string]*Revision
	// entries are the revisions again, for Tick to walk without a map
	// lookup each; sorted lazily, so that Tick's order is stable.
	entries []entry
	sorted  bool
}

type entry struct {
	key string
	rev *Revision
}

// New returns an Autoscaler with no revisions.
func New() *Autoscaler {
	return &Autoscaler{revisions: map[string]*Revision{}, sorted: true}
}

// Len is the number of revisions.
func (a *Autoscaler) Len() int { return len(a.revisions) }

// Set starts scaling rev, a new revision, at now with ready pods, or
// updates its settings if it is scaled already.
func (a *Autoscaler) Set(now time.Time, rev string, s Settings, ready int32) {
	if r, ok := a.revisions[rev]; ok {
		r.Update(now, s)
		r.SetReady(ready)
		return
	}
	a.add(rev, NewRevision(now, s, ready))
}

// Resume starts scaling rev, whose pods already run at replicas (ready of
// them ready), as after a restart; see ResumeRevision. A revision scaled
// already is updated as by Set.
func (a *Autoscaler) Resume(now time.Time, rev string, s Settings, replicas, ready int32) {
	if _, ok := a.revisions[rev]; ok {
		a.Set(now, rev, s, ready)
		return
	}
	a.add(rev, ResumeRevision(now, s, replicas, ready))
}

func (a *Autoscaler) add(key string, r *Revision) {
	a.revisions[key] = r
	a.entries = append(a.entries, entry{key: key, rev: r})
	a.sorted = false
}

// Delete stops scaling rev.
func (a *Autoscaler) Delete(rev string) {
	if _, ok := a.revisions[rev]; !ok {
		return
	}
	delete(a.revisions, rev)
	a.entries = slices.DeleteFunc(a.entries, func(e entry) bool { return e.key == rev })
}

// Revision returns rev's autoscaler, or nil.
func (a *Autoscaler) Revision(rev string) *Revision { return a.revisions[rev] }

// SetReady records how many of rev's pods are ready; unknown revisions are
// ignored.
func (a *Autoscaler) SetReady(rev string, ready int32) {
	if r, ok := a.revisions[rev]; ok {
		r.SetReady(ready)
	}
}

// Record adds a load report for rev received at now. It returns true when
// the caller should Poke rev now (see Revision.Record); reports for
// unknown revisions are dropped.
func (a *Autoscaler) Record(now time.Time, rev string, s model.Stat) (poke bool) {
	if r, ok := a.revisions[rev]; ok {
		return r.Record(now, s)
	}
	return false
}

// Tick decides every revision at now and returns the decisions, ordered by
// revision key.
func (a *Autoscaler) Tick(now time.Time) []Decision {
	if !a.sorted {
		slices.SortFunc(a.entries, func(x, y entry) int { return strings.Compare(x.key, y.key) })
		a.sorted = true
	}
	out := make([]Decision, 0, len(a.entries))
	for _, e := range a.entries {
		d := e.rev.Tick(now)
		d.Revision = e.key
		out = append(out, d)
	}
	return out
}

// Poke decides rev alone at now, out of the tick; false if rev is unknown.
func (a *Autoscaler) Poke(now time.Time, rev string) (Decision, bool) {
	r, ok := a.revisions[rev]
	if !ok {
		return Decision{}, false
	}
	d := r.Tick(now)
	d.Revision = rev
	return d, true
}
