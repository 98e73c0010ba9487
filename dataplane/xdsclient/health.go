package xdsclient

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// outage follows the failures of a stream in a row, so that a run of them
// is told once: its first failure is logged at warning level when the
// control plane went away (a restart, a rollout: reconnecting cures it)
// and at error level otherwise (the client cannot receive what the server
// sends, or the server refuses it: reconnecting does not help); each retry
// after it only at debug level with the count so far, unless the reason
// changes (the first failure is often the control plane restarting, and
// the next the actual cause); the recovery at info level with the count
// and how long it lasted. Before, every retry logged the same warning
// without a count, indistinguishable from a restart, and a client without
// a Logger said nothing at all: Client.Err now reports it too.
type outage struct {
	log  *slog.Logger
	what string

	mu sync.Mutex
	// err is why the last stream failed; nil once a stream has received a
	// response.
	err error
	// failures counts the streams failed in a row, since the first of them.
	failures int
	since    time.Time
	// logged is the reason (see reasonOf) of the last failure logged above
	// debug level.
	logged string
}

func newOutage(log *slog.Logger, what string) *outage {
	return &outage{log: log, what: what}
}

// failed records that a stream failed with err and is reopened in retryIn,
// and logs it as the type says.
func (o *outage) failed(err error, retryIn time.Duration) {
	o.mu.Lock()
	if o.err == nil {
		o.failures, o.since, o.logged = 0, time.Now(), ""
	}
	o.err = err
	o.failures++
	failures, since := o.failures, o.since
	reason := reasonOf(err)
	level := slog.LevelDebug
	if reason != o.logged {
		level = levelOf(err)
		o.logged = reason
	}
	o.mu.Unlock()
	o.log.Log(context.Background(), level, o.what+" stream failed; reopening it",
		"error", err, "failures", failures, "since", since.Format(time.RFC3339), "retry_in", retryIn.Round(time.Millisecond))
}

// recovered records that a stream received a response, ending the run of
// failures if there was one.
func (o *outage) recovered() {
	o.mu.Lock()
	err, failures, since := o.err, o.failures, o.since
	o.err = nil
	o.mu.Unlock()
	if err != nil {
		o.log.Info(o.what+" stream recovered", "failures", failures,
			"down_for", time.Since(since).Round(time.Millisecond), "last_error", err)
	}
}

// state returns why the last stream failed (nil when it is not failing),
// how many failed in a row and since when.
func (o *outage) state() (err error, failures int, since time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err, o.failures, o.since
}

// reasonOf names the kind of a stream failure: the server closing it, or
// its gRPC code.
func reasonOf(err error) string {
	if errors.Is(err, errServerClosed) {
		return "closed"
	}
	return status.Code(err).String()
}

// transient reports whether err is the control plane going away or out
// of reach, which reconnecting cures: it closed the stream or is
// unavailable.
func transient(err error) bool {
	return errors.Is(err, errServerClosed) || status.Code(err) == codes.Unavailable
}

func levelOf(err error) slog.Level {
	if transient(err) {
		return slog.LevelWarn
	}
	return slog.LevelError
}
