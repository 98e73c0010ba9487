package metrics

import (
	"time"

	"github.com/kgate/kgate/translator/model"
)

// Load is what one revision's reporters said recently, over the stable and
// the panic window. Reports that fall in the same second add up, so that
// the buckets hold the revision's total in-flight requests and its
// requests per second.
type Load struct {
	stableWindow, panicWindow Window
}

// NewLoad returns an empty Load averaging over the given windows.
func NewLoad(stableLength, panicLength time.Duration, a Algorithm) Load {
	return Load{stableWindow: NewWindow(stableLength, a), panicWindow: NewWindow(panicLength, a)}
}

// Record adds a report received at now.
func (l *Load) Record(now time.Time, s model.Stat) {
	l.stableWindow.Record(now, s)
	l.panicWindow.Record(now, s)
}

// IsEmpty reports whether nothing was recorded during the stable window
// before now.
func (l *Load) IsEmpty(now time.Time) bool {
	return l.stableWindow.IsEmpty(now)
}

// Average returns the averages over the stable and the panic window.
func (l *Load) Average(now time.Time) (stable, panicked model.Stat) {
	return l.stableWindow.Average(now), l.panicWindow.Average(now)
}

// Resize changes the windows' lengths, keeping the recent history that
// fits.
func (l *Load) Resize(now time.Time, stableLength, panicLength time.Duration) {
	l.stableWindow.Resize(now, stableLength)
	l.panicWindow.Resize(now, panicLength)
}
