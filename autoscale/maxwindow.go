package autoscale

import (
	"math"
	"time"
)

// maxWindow remembers the largest value recorded over a trailing span of
// time, in slots of a fixed width: the scale-down delay keeps the largest
// decision of its span. Values recorded in the same slot keep the largest.
//
// It keeps a deque of candidates whose values decrease from front to back:
// a value that is both older and not larger than a newer one can never be
// the maximum again, so it is dropped when the newer one arrives. Each
// value is pushed and popped once, so Record is O(1) amortized whatever
// the span (a one-hour delay is 1800 two-second slots).
type maxWindow struct {
	slot  time.Duration
	slots int64 // span in slots
	queue []slotValue
}

type slotValue struct {
	slot  int64
	value int32
}

// newMaxWindow spans span (rounded up to whole slots) in slots of slot.
func newMaxWindow(span, slot time.Duration) *maxWindow {
	return &maxWindow{slot: slot, slots: int64(math.Ceil(float64(span) / float64(slot)))}
}

// Record adds v at now and returns the largest value recorded in the span
// ending at now's slot.
func (w *maxWindow) Record(now time.Time, v int32) int32 {
	slot := now.Unix() / int64(w.slot/time.Second)
	for len(w.queue) > 0 && w.queue[len(w.queue)-1].value <= v {
		w.queue = w.queue[:len(w.queue)-1]
	}
	for len(w.queue) > 0 && slot-w.queue[0].slot >= w.slots {
		w.queue = w.queue[1:]
	}
	// A larger value already in this slot stays the slot's value.
	if n := len(w.queue); n > 0 && w.queue[n-1].slot == slot {
		v = w.queue[n-1].value
		w.queue = w.queue[:n-1]
	}
	w.queue = append(w.queue, slotValue{slot: slot, value: v})
	return w.queue[0].value
}
