// Package metrics keeps a revision's recent load in one-second buckets and
// averages it over the KPA's stable and panic windows, the way Knative's
// autoscaler aggregates the stats it collects (pkg/autoscaler/aggregation).
//
// Nothing here reads a clock: every call is given the time it happens at.
// Nothing is safe for concurrent use; the caller's loop owns the values.
package metrics

import (
	"github.com/kgate/kgate/translator/model"

	"math"
	"time"
)

// BucketSize is the span of time one bucket sums, as in Knative.
const BucketSize = time.Second

// Algorithm is how a Window averages its buckets.
type Algorithm int

// Algorithms (the metric-aggregation-algorithm annotation).
const (
	// Linear weighs every bucket of the window alike (Knative's default).
	Linear Algorithm = iota
	// WeightedExponential weighs recent buckets more, decaying
	// geometrically into the past.
	WeightedExponential
)

// String returns the annotation spelling of a.
func (a Algorithm) String() string {
	if a == WeightedExponential {
		return "weighted-exponential"
	}
	return "linear"
}

const (
	// weightPrecision is how much of the total weight the window's buckets
	// must carry under WeightedExponential.
	weightPrecision = 0.9999
	// minSmoothing keeps long windows from decaying so slowly that the
	// weighted average is no more than the linear one.
	minSmoothing = 0.2
	// averageDigits rounds linear averages so that sums of fractions do not
	// tip an exact ratio over an integer (50/10 must give 5 pods, not 6).
	averageDigits = 6
)

// Window sums stats into one-second buckets over a fixed length of time
// and averages them. Concurrency and requests share the buckets, so that a
// tick over thousands of revisions touches half the memory.
//
// Buckets with no writes count as zero, except that the average covers
// only the span since the first write, so that a window that has just
// started, or restarted after a whole window of silence, is not diluted by
// time nobody measured; and a linear average leaves out the silence after
// the last write, as Knative's does.
type Window struct {
	buckets []model.Stat // ring, indexed by unix second modulo len
	total   model.Stat   // sum of buckets
	// first and last are the unix seconds of the first and the latest write
	// since the window was (re)started; written says there was one.
	first, last int64
	written     bool
	algorithm   Algorithm
	smoothing   float64 // decay per bucket, for WeightedExponential
}

// NewWindow returns an empty window spanning length, rounded up to whole
// buckets (at least one).
func NewWindow(length time.Duration, a Algorithm) Window {
	n := bucketCount(length)
	return Window{buckets: make([]model.Stat, n), algorithm: a, smoothing: smoothing(n)}
}

func bucketCount(length time.Duration) int {
	return max(1, int(math.Ceil(float64(length)/float64(BucketSize))))
}

// smoothing is the weighted-exponential decay for n buckets: large enough
// that the n buckets carry weightPrecision of the total weight.
func smoothing(n int) float64 {
	return math.Max(1-math.Pow(1-weightPrecision, 1/float64(n)), minSmoothing)
}

func (w *Window) index(sec int64) int { return ringIndex(sec, len(w.buckets)) }

// ringIndex maps a unix second to its slot in a ring of n buckets.
func ringIndex(sec int64, n int) int {
	i := sec % int64(n)
	if i < 0 {
		i += int64(n)
	}
	return int(i)
}

// size is the window's length in buckets.
func (w *Window) size() int64 { return int64(len(w.buckets)) }

// Record adds s to the bucket of now. Buckets skipped since the last write
// are zeroed; a write after a whole window of silence restarts the window;
// a write older than the window is dropped.
func (w *Window) Record(now time.Time, s model.Stat) {
	sec := now.Unix()
	if s == (model.Stat{}) && w.written && sec == w.last {
		// Nothing to add: spare the memory access, which is most of a
		// tick's cost over thousands of revisions.
		return
	}
	switch {
	case !w.written || sec-w.last >= w.size():
		w.restart(sec)
	case sec > w.last:
		for t := w.last + 1; t <= sec; t++ {
			i := w.index(t)
			w.total = minus(w.total, w.buckets[i])
			w.buckets[i] = model.Stat{}
		}
		w.last = sec
	case w.last-sec >= w.size():
		return // a window ago or more: no bucket holds it any longer
	case sec < w.first:
		w.first = sec
	}
	i := w.index(sec)
	w.buckets[i] = plus(w.buckets[i], s)
	w.total = plus(w.total, s)
}

func (w *Window) restart(sec int64) {
	clear(w.buckets)
	w.total = model.Stat{}
	w.first, w.last, w.written = sec, sec, true
}

// IsEmpty reports whether nothing was written during the window before now.
func (w *Window) IsEmpty(now time.Time) bool {
	return !w.written || now.Unix()-w.last > w.size()
}

// Average is the window's average per bucket as of now, by its algorithm:
// the average concurrency, and the requests per second.
func (w *Window) Average(now time.Time) model.Stat {
	if !w.written {
		return model.Stat{}
	}
	if w.algorithm == WeightedExponential {
		return w.weightedAverage(now.Unix())
	}
	return w.linearAverage(now.Unix())
}

// linearAverage divides the buckets still inside the window by how many of
// them lie between the first and the last write.
func (w *Window) linearAverage(now int64) model.Stat {
	silence := now - w.last
	if silence >= w.size() {
		return model.Stat{}
	}
	sum := w.total
	valid := min(w.last-w.first+1, w.size())
	if silence > 0 {
		// The buckets after the last write hold values from a window ago.
		for t := w.last + 1; t <= now; t++ {
			sum = minus(sum, w.buckets[w.index(t)])
		}
		valid = min(valid, w.size()-silence)
	}
	return model.Stat{
		Concurrency: roundTo(averageDigits, sum.Concurrency/float64(valid)),
		Requests:    roundTo(averageDigits, sum.Requests/float64(valid)),
	}
}

// weightedAverage weighs the newest bucket by the smoothing factor s, the
// one before by s(1-s), and so on; silence since the last write counts as
// zero-valued newest buckets.
func (w *Window) weightedAverage(now int64) model.Stat {
	silence := max(0, now-w.last)
	if silence > w.size() {
		return model.Stat{}
	}
	weight := w.smoothing * math.Pow(1-w.smoothing, float64(silence))
	var avg model.Stat
	for t := w.last; t > w.last-(w.size()-silence); t-- {
		avg = plus(avg, times(w.buckets[w.index(t)], weight))
		weight *= 1 - w.smoothing
	}
	return avg
}

// Resize changes the window's length to length, keeping the most recent
// buckets that fit. It is O(length) and meant for configuration changes.
func (w *Window) Resize(now time.Time, length time.Duration) {
	n := bucketCount(length)
	if n == len(w.buckets) {
		return
	}
	old := w.buckets
	w.buckets, w.smoothing = make([]model.Stat, n), smoothing(n)
	w.total = model.Stat{}
	if !w.written || now.Unix()-w.last > int64(len(old)) {
		w.written = false
		return
	}
	for t := w.last; t > w.last-int64(min(n, len(old))); t-- {
		s := old[ringIndex(t, len(old))]
		w.buckets[w.index(t)] = s
		w.total = plus(w.total, s)
	}
	// As in Knative, the old window is taken to have been full: a grown
	// window averages over the old length until it fills, not over
	// buckets it never held.
	w.first = w.last - int64(len(old)) + 1
}

func roundTo(digits int, f float64) float64 {
	p := math.Pow10(digits)
	return math.Round(f*p) / p
}
