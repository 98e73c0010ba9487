// Package dashboard is kgate local's live page: the Services with their URLs
// and readiness, the revisions with their routing mode, and each revision's
// actual and desired pods and request rate over the last minutes as small
// SVG charts, served by the admin API and updated live by polling a small
// JSON document.
//
// The time series are sampled in the process: Requests sits between the
// load reports and the autoscaler and counts each revision's requests; the
// Sampler keeps one fixed-size ring of points per revision, dropped when
// the revision goes. Both are pure but for a lock; the clock is the
// caller's.
package dashboard

import (
	"cmp"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/kgate/kgate/translator/model"
)

// Collector is where load comes from: the LRS server's per-revision sums
// (autoscale/loop.Metrics).
type Collector interface {
	// Collect returns, per revision, the in-flight requests now and the
	// requests issued since the previous call.
	Collect(now time.Time) map[string]model.Stat
}

// Requests passes a Collector's load through unchanged and adds up each
// revision's requests until Take: put it where the autoscaler reads its
// load, and the page sees what the autoscaler sees.
type Requests struct {
	src Collector

	mu      sync.Mutex
	pending map[string]float64
}

// Tap returns a Requests reading src.
func Tap(src Collector) *Requests {
	return &Requests{src: src, pending: map[string]float64{}}
}

// Collect returns src's load and counts its requests.
func (r *Requests) Collect(now time.Time) map[string]model.Stat {
	stats := r.src.Collect(now)
	r.mu.Lock()
	defer r.mu.Unlock()
	for key, s := range stats {
		if s.Requests > 0 {
			r.pending[key] += s.Requests
		}
	}
	return stats
}

// Take returns the requests counted per revision since the previous Take.
func (r *Requests) Take() map[string]float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.pending
	r.pending = make(map[string]float64, len(out))
	return out
}

// Observation is one revision's pods at a sample.
type Observation struct {
	// Key is "namespace/name".
	Key    string
	Actual int32
	// Desired is the autoscaler's decision; -1 when it has none yet.
	Desired int32
}

// Point is one sample of a revision.
type Point struct {
	At              time.Time
	Actual, Desired float64
	// RPS is the requests per second since the previous sample.
	RPS float64
}

// Sampler keeps the last Length points of at most MaxRevisions revisions.
// Its methods are safe for concurrent use.
type Sampler struct {
	length, maxRevisions int

	mu     sync.Mutex
	last   time.Time
	series map[string]*ring
}

// NewSampler returns a Sampler keeping length points of at most
// maxRevisions revisions (each at least 1).
func NewSampler(length, maxRevisions int) *Sampler {
	return &Sampler{length: max(length, 1), maxRevisions: max(maxRevisions, 1), series: map[string]*ring{}}
}

// Record adds a point at now for each observed revision, its request rate
// being its requests over the time since the previous Record (interval
// for the first). Revisions not observed are dropped with their points;
// beyond maxRevisions, the first by key are kept.
func (s *Sampler) Record(now time.Time, obs []Observation, requests map[string]float64, interval time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	elapsed := interval
	if !s.last.IsZero() && now.After(s.last) {
		elapsed = now.Sub(s.last)
	}
	s.last = now
	obs = slices.SortedFunc(slices.Values(obs), func(a, b Observation) int { return cmp.Compare(a.Key, b.Key) })
	obs = slices.CompactFunc(obs, func(a, b Observation) bool { return a.Key == b.Key })
	if len(obs) > s.maxRevisions {
		obs = obs[:s.maxRevisions]
	}
	seen := make(map[string]bool, len(obs))
	for _, o := range obs {
		seen[o.Key] = true
		r := s.series[o.Key]
		if r == nil {
			r = &ring{pts: make([]Point, s.length)}
			s.series[o.Key] = r
		}
		p := Point{At: now, Actual: float64(o.Actual), Desired: float64(o.Desired), RPS: 0}
		if elapsed > 0 {
			p.RPS = requests[o.Key] / elapsed.Seconds()
		}
		r.add(p)
	}
	maps.DeleteFunc(s.series, func(key string, _ *ring) bool { return !seen[key] })
}

// Series returns a revision's points, oldest first; nil when it has none.
func (s *Sampler) Series(key string) []Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.series[key]; r != nil {
		return r.points()
	}
	return nil
}

// Len returns the number of revisions with points.
func (s *Sampler) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.series)
}

// ring is a fixed-size buffer of the latest points.
type ring struct {
	pts      []Point
	start, n int
}

func (r *ring) add(p Point) {
	if r.n < len(r.pts) {
		r.pts[(r.start+r.n)%len(r.pts)] = p
		r.n++
		return
	}
	r.pts[r.start] = p
	r.start = (r.start + 1) % len(r.pts)
}

func (r *ring) points() []Point {
	out := make([]Point, r.n)
	for i := range r.n {
		out[i] = r.pts[(r.start+i)%len(r.pts)]
	}
	return out
}
