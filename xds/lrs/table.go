package lrs

import (
	"sync"
	"time"

	"github.com/kgate/kgate/translator/model"
)

// table is the load the open streams reported, by side, as Collect reads
// it. See the package doc for how it treats silent reporters and sides.
type table struct {
	maxAge time.Duration

	mu   sync.Mutex
	next uint64
	// streams holds, per open stream and revision and side, the latest
	// in-flight count.
	streams map[uint64]map[sideRev]gauge
	// issued holds, per revision and side, the requests issued since the
	// last collect.
	issued map[sideRev]float64
}

// sideRev is a revision's load as one side sees it.
type sideRev struct {
	side side
	rev  string
}

// gauge is a reporter's latest in-flight count and when it arrived.
type gauge struct {
	inFlight float64
	at       time.Time
}

func newTable(maxAge time.Duration) *table {
	return &table{
		maxAge:  maxAge,
		streams: map[uint64]map[sideRev]gauge{},
		issued:  map[sideRev]float64{},
	}
}

// open adds a stream and returns its id.
func (t *table) open() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next++
	t.streams[t.next] = map[sideRev]gauge{}
	return t.next
}

// close drops a stream's in-flight counts at once. The requests it issued
// stay for the next collect: they happened.
func (t *table) close(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.streams, id)
}

// record stores one report of a stream, received at at. Revisions the
// report leaves out keep their previous count until it ages out.
func (t *table) record(id uint64, at time.Time, loads map[sideRev]load) {
	t.mu.Lock()
	defer t.mu.Unlock()
	revs, ok := t.streams[id]
	if !ok {
		return
	}
	for rev, l := range loads {
		revs[rev] = gauge{inFlight: float64(l.inFlight), at: at}
		t.issued[rev] += float64(l.issued)
	}
}

// collect returns, per revision, the larger side's load: on each side, the
// in-flight counts of the reporters heard from within maxAge before now,
// added up, and the requests issued since the previous collect. It
// forgets the counts that aged out.
func (t *table) collect(now time.Time) map[string]model.Stat {
	t.mu.Lock()
	defer t.mu.Unlock()
	sides := map[sideRev]model.Stat{}
	for _, revs := range t.streams {
		for key, g := range revs {
			if now.Sub(g.at) > t.maxAge {
				delete(revs, key)
				continue
			}
			s := sides[key]
			s.Concurrency += g.inFlight
			sides[key] = s
		}
	}
	for key, n := range t.issued {
		s := sides[key]
		s.Requests += n
		sides[key] = s
	}
	clear(t.issued)
	out := make(map[string]model.Stat, len(sides))
	for key, s := range sides {
		o := out[key.rev]
		o.Concurrency = max(o.Concurrency, s.Concurrency)
		o.Requests = max(o.Requests, s.Requests)
		out[key.rev] = o
	}
	return out
}
