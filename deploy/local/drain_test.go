//go:build unix

package local

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kgate/kgate/translator/model"
)

// inFlight is a fake Options.InFlight: the count it reports for every
// address, and the addresses it was asked about.
type inFlight struct {
	n     atomic.Int64
	mu    sync.Mutex
	asked map[string]int
}

func newInFlight(n int64) *inFlight {
	f := &inFlight{asked: map[string]int{}}
	f.n.Store(n)
	return f
}

func (f *inFlight) count(addr string) int {
	f.mu.Lock()
	f.asked[addr]++
	f.mu.Unlock()
	return int(f.n.Load())
}

// askedAbout says how many times the count of ep was asked for.
func (f *inFlight) askedAbout(ep model.Endpoint) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asked[ep.Address+":"+strconv.Itoa(int(ep.Port))]
}

// termed returns the time the replica's "term" app logged its SIGTERM,
// and whether it did.
func (f *fixture) termed() (time.Time, bool) {
	got := f.logs.find("SIGTERM")
	if len(got) == 0 {
		return time.Time{}, false
	}
	return got[0].time, true
}

// stopped waits for the replica to be logged as stopped and returns that
// record.
func (f *fixture) stopped(t *testing.T) record {
	t.Helper()
	waitFor(t, "the replica to stop", func() bool { return len(f.logs.find("replica stopped")) == 1 })
	return f.logs.find("replica stopped")[0]
}

// TestDrainWaitsForRequests scales a replica away while requests are in
// flight to it: it leaves the endpoints at once, but gets SIGTERM only
// once none is in flight, and then exits cleanly.
func TestDrainWaitsForRequests(t *testing.T) {
	t.Parallel()
	counts := newInFlight(1)
	f := newFixture(t, Options{StopDelay: 50 * time.Millisecond, InFlight: counts.count})
	rev := f.start(t, newRevision("drain-00001", "drain", testApp("term")), 1)
	ep := f.ready(t, rev, 1)[0]
	f.nextChange(t)
	_, pids := f.pids(t)

	if err := f.Scale(t.Context(), rev, 0); err != nil {
		t.Fatal(err)
	}
	if got := f.nextChange(t); len(got) != 0 {
		t.Fatalf("ready %v after scaling to 0", got)
	}
	// Asked about its own address, many times, and not stopped meanwhile.
	waitFor(t, "the drain to ask about the replica 10 times", func() bool { return counts.askedAbout(ep) >= 10 })
	time.Sleep(200 * time.Millisecond)
	if _, ok := f.termed(); ok {
		t.Fatal("the replica got SIGTERM with a request in flight")
	}
	if !alive(pids["1"]) {
		t.Fatal("the replica's process exited with a request in flight")
	}

	idle := time.Now()
	counts.n.Store(0)
	stopped := f.stopped(t)
	if at, ok := f.termed(); !ok || at.Before(idle) {
		t.Errorf("SIGTERM logged %v (%v), want after the requests were done at %v", ok, at, idle)
	}
	if stopped.attrs["exit"] != "exit status 0" {
		t.Errorf("the replica stopped with %q, want a clean exit on SIGTERM", stopped.attrs["exit"])
	}
	if got := f.logs.find("replica stopping with requests in flight"); len(got) != 0 {
		t.Errorf("a drain that ended in time logged %v", got)
	}
	waitFor(t, "the replica's process to be gone", func() bool { return !alive(pids["1"]) })
}

// TestDrainTimesOut scales a replica away whose requests never finish: it
// gets SIGTERM once the revision's timeoutSeconds have gone by, and that
// is logged once.
func TestDrainTimesOut(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{StopDelay: 50 * time.Millisecond, InFlight: newInFlight(1).count})
	r := newRevision("slow-00001", "slow", testApp("term"))
	r.Spec.TimeoutSeconds = new(int64(1))
	rev := f.start(t, r, 1)
	f.ready(t, rev, 1)
	f.nextChange(t)

	removed := time.Now()
	if err := f.Scale(t.Context(), rev, 0); err != nil {
		t.Fatal(err)
	}
	stopped := f.stopped(t)
	at, ok := f.termed()
	if !ok {
		t.Fatal("no SIGTERM logged")
	}
	if d := at.Sub(removed); d < time.Second || d > 10*time.Second {
		t.Errorf("SIGTERM came %s after the removal, want the 1 s timeout", d)
	}
	if stopped.attrs["exit"] != "exit status 0" {
		t.Errorf("the replica stopped with %q", stopped.attrs["exit"])
	}
	got := f.logs.find("replica stopping with requests in flight")
	if len(got) != 1 || got[0].attrs["in_flight"] != "1" || got[0].attrs["timeout"] != "1s" {
		t.Errorf("timeout logged as %v, want one line with 1 in flight and a 1s timeout", got)
	}
}

// TestGraceKills removes a replica that ignores SIGTERM: it is killed once
// its terminationGracePeriodSeconds have gone by.
func TestGraceKills(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	r := newRevision("stubborn-00002", "stubborn", testApp("term", env("IGNORE_TERM", "1")))
	r.Spec.TerminationGracePeriodSeconds = new(int64(1))
	rev := f.start(t, r, 1)
	f.ready(t, rev, 1)
	f.nextChange(t)
	_, pids := f.pids(t)

	removed := time.Now()
	if err := f.Scale(t.Context(), rev, 0); err != nil {
		t.Fatal(err)
	}
	stopped := f.stopped(t)
	if _, ok := f.termed(); !ok {
		t.Error("the replica was not sent SIGTERM first")
	}
	if d := stopped.time.Sub(removed); d < time.Second {
		t.Errorf("stopped %s after the removal, before the 1 s grace period", d)
	}
	if stopped.attrs["exit"] != "signal: killed" {
		t.Errorf("the replica stopped with %q, want killed", stopped.attrs["exit"])
	}
	if got := f.logs.find("replica killed"); len(got) != 1 || got[0].attrs["grace"] != "1s" {
		t.Errorf("kill logged as %v", got)
	}
	if alive(pids["1"]) {
		t.Error("the replica's process outlived its stop")
	}
}

// TestDrainOutlivesRevision forgets a revision whose replica has a request
// in flight: the drain goes on without the revision, and the process is
// stopped once the request is done.
func TestDrainOutlivesRevision(t *testing.T) {
	t.Parallel()
	counts := newInFlight(1)
	f := newFixture(t, Options{InFlight: counts.count})
	rev := f.start(t, newRevision("gone-00001", "gone", testApp("term")), 1)
	ep := f.ready(t, rev, 1)[0]
	f.nextChange(t)
	_, pids := f.pids(t)

	f.Forget(rev)
	if got := f.nextChange(t); len(got) != 0 {
		t.Fatalf("ready %v after Forget", got)
	}
	if err := f.Scale(t.Context(), rev, 1); err == nil {
		t.Fatal("the forgotten revision scaled")
	}
	asked := counts.askedAbout(ep)
	waitFor(t, "the drain to go on", func() bool { return counts.askedAbout(ep) >= asked+5 })
	if _, ok := f.termed(); ok || !alive(pids["1"]) {
		t.Fatal("the replica of a forgotten revision was stopped with a request in flight")
	}
	counts.n.Store(0)
	if exit := f.stopped(t).attrs["exit"]; exit != "exit status 0" {
		t.Errorf("the replica stopped with %q, want a clean exit on SIGTERM", exit)
	}
	waitFor(t, "the replica's process to be gone", func() bool { return !alive(pids["1"]) })
}

// TestCloseCutsDrain closes the deployer while a drain waits on a request
// that never ends: the replica gets SIGTERM at once, and Close returns
// with the process gone and the last list of replicas empty.
func TestCloseCutsDrain(t *testing.T) {
	t.Parallel()
	lists := make(chan []Record, 100)
	counts := newInFlight(1)
	f := newFixture(t, Options{
		InFlight:   counts.count,
		OnReplicas: func(recs []Record) { lists <- recs },
	})
	rev := f.start(t, newRevision("cut-00001", "cut", testApp("term")), 1)
	ep := f.ready(t, rev, 1)[0]
	f.nextChange(t)
	_, pids := f.pids(t)
	if err := f.Scale(t.Context(), rev, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the drain to wait on the request", func() bool { return counts.askedAbout(ep) > 0 })

	start := time.Now()
	f.Close()
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Close took %s with a drain waiting on the 300 s timeout", d)
	}
	if alive(pids["1"]) {
		t.Error("the replica's process outlived Close")
	}
	if exit := f.stopped(t).attrs["exit"]; exit != "exit status 0" {
		t.Errorf("the replica stopped with %q, want a clean exit on SIGTERM", exit)
	}
	if len(lists) == 0 {
		t.Fatal("OnReplicas was not called")
	}
	var last []Record
	for len(lists) > 0 {
		last = <-lists
	}
	if len(last) != 0 {
		t.Errorf("the last list of replicas is %v, want an empty one", last)
	}
}
