package xdsclient

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"
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

// delay is the wait after failures failed attempts in a row (from 1).
func (b Backoff) delay(failures int) time.Duration {
	d := b.Initial
	for i := 1; i < failures && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	jitter := 0.8 + 0.4*rand.Float64()
	return time.Duration(float64(d) * jitter)
}

// attempt runs one stream until it fails or ctx ends. healthy reports that
// the server answered at least once, which resets the backoff.
type attempt func(ctx context.Context) (healthy bool, err error)

// retry runs attempt again and again, waiting as b says between failures,
// until ctx ends.
func retry(ctx context.Context, b Backoff, log *slog.Logger, what string, run attempt) {
	failures := 0
	for {
		healthy, err := run(ctx)
		if ctx.Err() != nil {
			return
		}
		if healthy {
			failures = 0
		}
		failures++
		wait := b.delay(failures)
		log.Warn(what+" stream ended; reopening it", "error", err, "retry_in", wait.Round(time.Millisecond))
		timer := time.NewTimer(wait)
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
