package xdsclient

import (
	"context"
	"log/slog"
	"math"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Backoff bounds the wait before a failed stream is reopened: Initial
// after the first failure, doubling with each failure in a row up to Max,
// each wait jittered by ±20% so that many clients of a restarted server do
// not reconnect in step. A stream that got a response starts the count
// again. Zero fields take Envoy's defaults for xDS: 500 ms and 30 s.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
}

// Defaults of Backoff.
const (
	DefaultBackoffInitial = 500 * time.Millisecond
	DefaultBackoffMax     = 30 * time.Second
)

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = DefaultBackoffInitial
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoffMax
	}
	b.Max = max(b.Max, b.Initial)
	return b
}

// steps is b as a wait.Backoff for one run of failures in a row: each
// Step is the wait after the next failure. kgate paces its retries with
// apimachinery's wait.Backoff (the local deployer's restarts too), one
// well-tested backoff rather than one written per package.
//
// wait.Backoff jitters upwards only, by up to Jitter × the step; b's ±20%
// around a nominal wait d is the same range, [0.8d, 1.2d), as 0.8d plus up
// to half of that: so the base and the cap are 0.8 × Initial and Max, and
// Jitter is 0.5.
func (b Backoff) steps() wait.Backoff {
	return wait.Backoff{
		Duration: b.Initial - b.Initial/5,
		Factor:   2,
		Jitter:   0.5,
		Cap:      b.Max - b.Max/5,
		Steps:    math.MaxInt, // no end but the cap
	}
}

// attempt runs one stream until it fails or ctx ends. healthy reports that
// the server answered at least once, which resets the backoff.
type attempt func(ctx context.Context) (healthy bool, err error)

// retry runs attempt again and again, waiting as b says between failures,
// until ctx ends. Each failure goes to o, which logs the run of them; the
// attempt tells o when its stream recovers.
func retry(ctx context.Context, b Backoff, o *outage, run attempt) {
	backoff := b.steps()
	for {
		healthy, err := run(ctx)
		if ctx.Err() != nil {
			return
		}
		if healthy {
			backoff = b.steps()
		}
		delay := backoff.Step()
		o.failed(err, delay)
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// orDiscard returns l, or a logger that discards everything when l is nil.
func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
