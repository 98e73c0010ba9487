package activator

import (
	"net/http"
	"sync/atomic"
)

// RevisionStats is one revision's demand as the activator sees it: what an
// LRS reporter sends for the revision. The counts are cumulative since the
// revision was first set, so a reporter sends the difference between two
// snapshots; they restart from zero if the revision is deleted and set
// again.
type RevisionStats struct {
	// InFlight counts the requests the activator has for the revision now:
	// waiting for a pod or being proxied. It is the demand to scale on, so
	// it includes the waiting ones.
	InFlight int64
	// Waiting counts the requests among InFlight still waiting for a pod.
	Waiting int
	// Pods counts the ready pods.
	Pods int
	// Issued counts the requests received.
	Issued uint64
	// Completed counts the requests finished: answered by the pod or by
	// the activator itself, successfully or not, or given up by the client.
	// Issued = Completed + InFlight.
	Completed uint64
	// Errors counts the requests among Completed answered with a 5xx status
	// (the pod's or the activator's own 502, 503 and 504).
	Errors uint64
	// Rejected counts the requests among Errors the activator answered
	// 503 at once, shedding load: the revision's line was full
	// (Options.QueueDepth), or its share of the activator
	// (Options.MaxHeldPerRevision), or the activator itself
	// (Options.MaxHeld).
	Rejected uint64
}

// counters are a revision's request counts, updated without its lock.
type counters struct {
	inFlight  atomic.Int64
	issued    atomic.Uint64
	completed atomic.Uint64
	errors    atomic.Uint64
	rejected  atomic.Uint64
}

// begin counts a request in.
func (c *counters) begin() {
	c.issued.Add(1)
	c.inFlight.Add(1)
}

// end counts a request out with the status it was answered with, 0 when
// the client left before any answer; shed says that the activator refused
// it at once (a 503, see RevisionStats.Rejected).
func (c *counters) end(status int, shed bool) {
	c.completed.Add(1)
	c.inFlight.Add(-1)
	if status >= http.StatusInternalServerError {
		c.errors.Add(1)
	}
	if shed {
		c.rejected.Add(1)
	}
}

// fill copies the counts into s. Rejected is read before Errors, and
// Errors before Completed, the reverse of the order a request is counted
// in, so that Rejected never exceeds Errors nor Errors Completed.
func (c *counters) fill(s *RevisionStats) {
	s.InFlight = c.inFlight.Load()
	s.Issued = c.issued.Load()
	s.Rejected = c.rejected.Load()
	s.Errors = c.errors.Load()
	s.Completed = c.completed.Load()
}
