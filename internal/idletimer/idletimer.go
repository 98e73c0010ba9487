// Package idletimer is an idle timeout: a timer that fires once nothing
// moved for a while, every touch starting the count again, as Envoy's and
// Knative's idle timers count. The activator's revision idle timeout and
// the dev gateway's stream and per-try idle timeouts are each one Timer.
//
// A touch is an atomic store, cheap enough for every read of a body: the
// timer wakes only when the idle time may have passed, and sleeps again
// for what is left.
package idletimer

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Timer calls fire once nothing moved for d after Arm. A nil *Timer is
// valid and never fires; so is one made with d of 0 or less.
type Timer struct {
	d    time.Duration
	fire func()
	// base is when the timer was made; last is the last activity, as an
	// offset from base (monotonic).
	base time.Time
	last atomic.Int64

	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

// New returns a timer calling fire once nothing moved for d after Arm; it
// does not count until armed. d of 0 or less never fires.
func New(d time.Duration, fire func()) *Timer {
	return &Timer{d: d, fire: fire, base: time.Now()}
}

// Start returns a timer armed now, or nil (which never fires) when d is 0
// or less.
func Start(d time.Duration, fire func()) *Timer {
	if d <= 0 {
		return nil
	}
	it := New(d, fire)
	it.Arm()
	return it
}

// Arm starts counting, from now. Once armed, Arm is only a touch; after
// Stop it does nothing.
func (it *Timer) Arm() {
	if it == nil || it.d <= 0 {
		return
	}
	it.Touch()
	it.mu.Lock()
	defer it.mu.Unlock()
	if it.stopped || it.t != nil {
		return
	}
	it.t = time.AfterFunc(it.d, it.check)
}

// Touch records activity now.
func (it *Timer) Touch() {
	if it != nil && it.d > 0 {
		it.last.Store(int64(time.Since(it.base)))
	}
}

func (it *Timer) check() {
	it.mu.Lock()
	if it.stopped {
		it.mu.Unlock()
		return
	}
	if idle := time.Since(it.base) - time.Duration(it.last.Load()); idle < it.d {
		it.t.Reset(it.d - idle)
		it.mu.Unlock()
		return
	}
	it.stopped = true
	it.mu.Unlock()
	it.fire()
}

// Stop disarms the timer for good.
func (it *Timer) Stop() {
	if it == nil {
		return
	}
	it.mu.Lock()
	defer it.mu.Unlock()
	it.stopped = true
	if it.t != nil {
		it.t.Stop()
	}
}

// Reader returns rc with every read that returned bytes touching the
// timer: what the other side sends is activity. A nil timer's is rc
// itself.
func (it *Timer) Reader(rc io.ReadCloser) io.ReadCloser {
	if it == nil {
		return rc
	}
	return &activity{ReadCloser: rc, it: it}
}

type activity struct {
	io.ReadCloser
	it *Timer
}

func (a *activity) Read(p []byte) (int, error) {
	n, err := a.ReadCloser.Read(p)
	if n > 0 {
		a.it.Touch()
	}
	return n, err
}
