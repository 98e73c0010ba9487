package idletimer

import (
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A timer fires once nothing moved for d after it was armed, and only
// then: every touch (a read that returned bytes included) starts the count
// again, and a timer stopped, never armed or of no duration never fires.
// Steps run at their offsets from the start; a touch at offset o puts the
// firing at o+d at the earliest, so the lower bounds are exact and the
// waits generous.
func TestTimer(t *testing.T) {
	const d = 100 * time.Millisecond
	read := func(it *Timer) { _, _ = io.ReadAll(it.Reader(io.NopCloser(strings.NewReader("x")))) }
	type step struct {
		at time.Duration
		do func(*Timer)
	}
	cases := []struct {
		name string
		d    time.Duration
		// start makes the timer with Start, armed at once; else New.
		start bool
		steps []step
		// fires: whether it fires, no earlier than notBefore.
		fires     bool
		notBefore time.Duration
	}{
		{name: "armed and untouched, it fires after d", d: d,
			steps: []step{{0, (*Timer).Arm}}, fires: true, notBefore: d},
		{name: "Start arms at once", d: d, start: true, fires: true, notBefore: d},
		{name: "each touch starts the count again", d: d, start: true,
			steps: []step{{d / 2, (*Timer).Touch}, {d, (*Timer).Touch}, {3 * d / 2, (*Timer).Touch}, {2 * d, (*Timer).Touch}},
			fires: true, notBefore: 3 * d},
		{name: "a read that returns bytes is a touch", d: d, start: true,
			steps: []step{{d / 2, read}, {d, read}, {3 * d / 2, read}},
			fires: true, notBefore: 5 * d / 2},
		{name: "a second Arm is a touch", d: d,
			steps: []step{{0, (*Timer).Arm}, {d / 2, (*Timer).Arm}}, fires: true, notBefore: 3 * d / 2},
		{name: "touches before Arm do not arm it", d: d,
			steps: []step{{0, (*Timer).Touch}, {d / 2, (*Timer).Touch}}},
		{name: "stopped before d, it never fires", d: d, start: true,
			steps: []step{{d / 2, (*Timer).Stop}}},
		{name: "Arm after Stop does nothing", d: d,
			steps: []step{{0, (*Timer).Stop}, {0, (*Timer).Arm}}},
		{name: "New with d of 0 never fires", d: 0,
			steps: []step{{0, (*Timer).Arm}, {d / 2, (*Timer).Touch}, {d / 2, read}, {d, (*Timer).Stop}}},
		{name: "Start with d of 0 is nil, which never fires", d: 0, start: true,
			steps: []step{{0, (*Timer).Arm}, {d / 2, (*Timer).Touch}, {d / 2, read}, {d, (*Timer).Stop}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var fired atomic.Int32
			firedAt := make(chan time.Duration, 1)
			begin := time.Now()
			fire := func() {
				if fired.Add(1) == 1 {
					firedAt <- time.Since(begin)
				}
			}
			var it *Timer
			if tc.start {
				it = Start(tc.d, fire)
				if (it == nil) != (tc.d <= 0) {
					t.Fatalf("Start(%v) = %v, want nil only for no duration", tc.d, it)
				}
			} else {
				it = New(tc.d, fire)
			}
			var last time.Duration
			for _, s := range tc.steps {
				time.Sleep(time.Until(begin.Add(s.at)))
				s.do(it)
				last = s.at
			}
			if !tc.fires {
				time.Sleep(time.Until(begin.Add(last + 3*d)))
				if n := fired.Load(); n != 0 {
					t.Fatalf("fired %d times, want never", n)
				}
				return
			}
			select {
			case at := <-firedAt:
				if at < tc.notBefore {
					t.Errorf("fired after %v, want no earlier than %v", at, tc.notBefore)
				}
			case <-time.After(tc.notBefore + 20*d):
				t.Fatalf("not fired after %v, want once nothing moved for %v", tc.notBefore+20*d, tc.d)
			}
			// It fires once, and a Stop after it is harmless.
			time.Sleep(2 * d)
			it.Stop()
			if n := fired.Load(); n != 1 {
				t.Errorf("fired %d times, want once", n)
			}
		})
	}
}

// Reader counts a read as activity only when it returned bytes, and a nil
// timer's Reader is the reader itself.
func TestReader(t *testing.T) {
	cases := []struct {
		name  string
		body  string
		touch bool
	}{
		{"a read that returns bytes touches", "x", true},
		{"a read at the end touches nothing", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			it := New(time.Hour, func() { t.Error("fired") })
			defer it.Stop()
			it.last.Store(-1)
			if _, err := it.Reader(io.NopCloser(strings.NewReader(tc.body))).Read(make([]byte, 8)); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			if touched := it.last.Load() != -1; touched != tc.touch {
				t.Errorf("touched = %v, want %v", touched, tc.touch)
			}
		})
	}
	rc := io.NopCloser(strings.NewReader("x"))
	if got := (*Timer)(nil).Reader(rc); got != rc {
		t.Errorf("a nil timer's Reader = %T, want the reader itself", got)
	}
}
