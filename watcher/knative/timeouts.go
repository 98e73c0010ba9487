package knative

import (
	"time"

	"github.com/kgate/kgate/translator/model"
)

// responseStartTimeout is the revision's responseStartTimeoutSeconds, zero
// when it has none.
func (rev *revisionState) responseStartTimeout() time.Duration {
	return seconds(rev.spec.ResponseStartTimeoutSeconds)
}

// idleTimeout is the revision's idleTimeoutSeconds, zero when it has none.
func (rev *revisionState) idleTimeout() time.Duration {
	return seconds(rev.spec.IdleTimeoutSeconds)
}

func seconds(s *int64) time.Duration {
	if s == nil || *s <= 0 {
		return 0
	}
	return time.Duration(*s) * time.Second
}

// streamTimeouts sets r's response-start and idle timeouts from the
// revisions revs (names in ns) it sends traffic to. A route serves all of
// them with one setting, so it takes the most lenient: the largest
// response-start timeout, a revision without one waiting as long as its
// timeoutSeconds (left out when that is no shorter than r's Timeout,
// which bounds the wait anyway), and the largest idle timeout, none when
// one revision has none. The activator holds each revision to its own.
func (rd *round) streamTimeouts(r *model.Route, revs []string, ns string) {
	var start, idle time.Duration
	unboundedIdle := false
	for _, name := range revs {
		rev := rd.r.revisions[ns+"/"+name]
		if rev == nil {
			continue
		}
		s := rev.responseStartTimeout()
		if s == 0 || s > rev.timeout() {
			s = rev.timeout()
		}
		start = max(start, s)
		if i := rev.idleTimeout(); i == 0 {
			unboundedIdle = true
		} else {
			idle = max(idle, i)
		}
	}
	if r.Timeout > 0 && start >= r.Timeout {
		start = 0
	}
	if unboundedIdle {
		idle = 0
	}
	r.ResponseStartTimeout, r.IdleTimeout = start, idle
}
