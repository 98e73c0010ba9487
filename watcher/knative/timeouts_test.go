package knative

import (
	"testing"
	"time"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/translator/model"
)

// A route serves all its revisions with one response-start and one idle
// timeout: the most lenient of theirs.
func TestStreamTimeouts(t *testing.T) {
	secs := func(s int64) *int64 { return &s }
	revs := map[string]servingv1.RevisionSpec{
		"start2":   {TimeoutSeconds: secs(300), ResponseStartTimeoutSeconds: secs(2)},
		"start5":   {TimeoutSeconds: secs(300), ResponseStartTimeoutSeconds: secs(5)},
		"plain":    {TimeoutSeconds: secs(300)},
		"short":    {TimeoutSeconds: secs(10)},
		"idle2":    {TimeoutSeconds: secs(300), IdleTimeoutSeconds: secs(2)},
		"idle7":    {TimeoutSeconds: secs(300), IdleTimeoutSeconds: secs(7)},
		"startBig": {TimeoutSeconds: secs(10), ResponseStartTimeoutSeconds: secs(20)},
	}
	rd := &round{r: &Reconciler{revisions: map[string]*revisionState{}}}
	for name, spec := range revs {
		rd.r.revisions["ns/"+name] = &revisionState{namespace: "ns", name: name, spec: spec}
	}
	for _, tc := range []struct {
		name        string
		revs        []string
		start, idle time.Duration
	}{
		{"one revision's response-start timeout", []string{"start2"}, 2 * time.Second, 0},
		{"the largest of two", []string{"start2", "start5"}, 5 * time.Second, 0},
		{"a revision without one waits its timeoutSeconds: no bound beyond the route's timeout", []string{"start2", "plain"}, 0, 0},
		{"a revision without one, with a short timeoutSeconds", []string{"start2", "short"}, 10 * time.Second, 0},
		{"a response-start timeout beyond the timeout counts as the timeout", []string{"startBig"}, 0, 0},
		{"one revision's idle timeout", []string{"idle2"}, 0, 2 * time.Second},
		{"the largest idle timeout", []string{"idle2", "idle7"}, 0, 7 * time.Second},
		{"no idle timeout when one revision has none", []string{"idle2", "plain"}, 0, 0},
		{"an unknown revision counts for nothing", []string{"idle2", "gone"}, 0, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := model.Route{Timeout: rd.timeout(tc.revs, "ns")}
			rd.streamTimeouts(&r, tc.revs, "ns")
			if r.ResponseStartTimeout != tc.start || r.IdleTimeout != tc.idle {
				t.Errorf("response start %v, idle %v; want %v, %v", r.ResponseStartTimeout, r.IdleTimeout, tc.start, tc.idle)
			}
		})
	}
}
