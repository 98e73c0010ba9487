package activator

import "time"

// timeouts are one request's bounds, from the revision's three timeouts
// counted from the request's arrival, as Knative's activator and
// queue-proxy count them (docs/timeouts.md):
//
//   - timeoutSeconds bounds the whole request: 504 when no response has
//     started by then, the response cut when one is under way;
//   - responseStartTimeoutSeconds: 504 when no response has started by
//     then, waiting for a pod included;
//   - idleTimeoutSeconds: 504 when nothing has come back since arrival
//     for that long, the response cut when it then stays silent as long.
//
// An upgraded connection (WebSocket) is bounded only until the upgrade is
// accepted, as the gateways bound it.
type timeouts struct {
	arrived time.Time
	// timeout, start and idle are the revision's; start and idle are 0
	// when it has none.
	timeout, start, idle time.Duration
}

func timeoutsOf(arrived time.Time, cfg *RevisionConfig) timeouts {
	return timeouts{arrived: arrived, timeout: cfg.Timeout, start: cfg.ResponseStartTimeout, idle: cfg.IdleTimeout}
}

// startBy is the earliest of the three bounds on the response's start:
// when, which one (in words, for the answer) and how long it is.
func (t timeouts) startBy() (time.Time, string, time.Duration) {
	d, what := t.timeout, "timeout"
	if t.start > 0 && t.start < d {
		d, what = t.start, "response start timeout"
	}
	if t.idle > 0 && t.idle < d {
		d, what = t.idle, "idle timeout"
	}
	return t.arrived.Add(d), what, d
}

// end is when the whole request must be over.
func (t timeouts) end() time.Time { return t.arrived.Add(t.timeout) }
