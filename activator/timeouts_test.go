package activator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kgate/kgate/internal/pacer"
	"github.com/kgate/kgate/translator/model"
)

// The activator holds each revision to its own three timeouts, counted
// from the request's arrival, with Knative's answers (docs/timeouts.md):
// 504 when the response has not started within the timeout, the
// response-start timeout or the idle timeout (waiting for a pod
// included); a response under way cut at the timeout, or once silent for
// the idle timeout. Unlike the gateways' per_try_idle_timeout, the
// response-start timeout no longer counts once the response started.
func TestRevisionTimeouts(t *testing.T) {
	const unit = 300 * time.Millisecond
	cases := []struct {
		name string
		cfg  RevisionConfig
		// noPod leaves the revision without pods.
		noPod bool
		path  string
		// status, body (contained) and cut: what the client gets; after:
		// about when it ends.
		status int
		body   string
		cut    bool
		after  time.Duration
	}{
		{name: "response start: no pod in time is 504", cfg: RevisionConfig{Timeout: 20 * unit, ResponseStartTimeout: unit}, noPod: true, path: "/",
			status: 504, body: "no pod was ready to take the request within the revision's response start timeout (300ms)", after: unit},
		{name: "response start: a pod that does not start in time is 504", cfg: RevisionConfig{Timeout: 20 * unit, ResponseStartTimeout: unit}, path: "/?delay=900ms",
			status: 504, body: "did not start responding within the revision's response start timeout (300ms)", after: unit},
		{name: "response start: a response started in time may then pause longer", cfg: RevisionConfig{Timeout: 20 * unit, ResponseStartTimeout: unit}, path: "/?pause=600ms",
			status: 200, body: "ab", after: 600 * time.Millisecond},
		{name: "idle: no byte since arrival is 504", cfg: RevisionConfig{Timeout: 20 * unit, IdleTimeout: unit}, path: "/?delay=900ms",
			status: 504, body: "did not start responding within the revision's idle timeout (300ms)", after: unit},
		{name: "idle: a response silent for as long is cut", cfg: RevisionConfig{Timeout: 20 * unit, IdleTimeout: unit}, path: "/?pause=900ms",
			status: 200, body: "a", cut: true, after: unit},
		{name: "idle: a response never silent for as long completes", cfg: RevisionConfig{Timeout: 20 * unit, IdleTimeout: unit}, path: "/?delay=100ms&pause=100ms",
			status: 200, body: "ab", after: 200 * time.Millisecond},
		{name: "timeout: a pod that does not start in time is 504", cfg: RevisionConfig{Timeout: unit}, path: "/?delay=900ms",
			status: 504, body: "did not start responding within the revision's timeout (300ms)", after: unit},
		{name: "timeout: a response under way at the timeout is cut", cfg: RevisionConfig{Timeout: unit}, path: "/?pause=900ms",
			status: 200, body: "a", cut: true, after: unit},
		{name: "the shortest bound on the start wins", cfg: RevisionConfig{Timeout: 3 * unit, ResponseStartTimeout: 2 * unit, IdleTimeout: unit}, path: "/?delay=900ms",
			status: 504, body: "within the revision's idle timeout (300ms)", after: unit},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Options{})
			h.act.SetRevision(testKey, tc.cfg)
			if !tc.noPod {
				h.act.SetEndpoints(testKey, []model.Endpoint{startBackend(t, model.HTTP1, http.HandlerFunc(pacer.ServeHTTP))})
			}
			start := time.Now()
			res, err := h.client.Do(h.request(context.Background(), t, tc.path))
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			took := time.Since(start)
			cut := errors.Is(err, io.ErrUnexpectedEOF)
			if err != nil && !cut {
				t.Fatalf("reading the body: %v", err)
			}
			got := fmt.Sprintf("%d %q cut=%v after %v", res.StatusCode, body, cut, took.Round(time.Millisecond))
			t.Log(got)
			if res.StatusCode != tc.status || !strings.Contains(string(body), tc.body) || cut != tc.cut {
				t.Errorf("got %s, want %d with %q cut=%v", got, tc.status, tc.body, tc.cut)
			}
			// Late by a loaded machine's scheduling, never early.
			if took < tc.after-20*time.Millisecond || took > tc.after+400*time.Millisecond {
				t.Errorf("ended after %v, want about %v", took, tc.after)
			}
		})
	}
}
