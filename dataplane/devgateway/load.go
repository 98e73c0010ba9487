package devgateway

import (
	"sync/atomic"

	"github.com/kgate/kgate/dataplane/xdsclient"
)

// loadCounter counts one cluster's requests for LRS, as Envoy's upstream
// stats do: a request counts once it has a host to go to.
type loadCounter struct {
	inProgress atomic.Int64
	issued     atomic.Uint64
	successful atomic.Uint64
	errors     atomic.Uint64
}

// start counts a request sent to the cluster; the returned func counts
// its end, failed for a 5xx answer or an upstream that failed.
func (l *loadCounter) start() (end func(failed bool)) {
	l.issued.Add(1)
	l.inProgress.Add(1)
	return func(failed bool) {
		l.inProgress.Add(-1)
		if failed {
			l.errors.Add(1)
		} else {
			l.successful.Add(1)
		}
	}
}

func (l *loadCounter) snapshot() xdsclient.Load {
	return xdsclient.Load{
		InProgress: uint64(max(l.inProgress.Load(), 0)),
		Issued:     l.issued.Load(),
		Successful: l.successful.Load(),
		Errors:     l.errors.Load(),
	}
}
