package knative

import "testing"

// FuzzParseRollout: the serving.knative.dev/rollout annotation comes from
// the API server (anyone who can edit a Route) and from kgate local's state
// store. What parseRollout accepts holds the bounds the rollout steps rely
// on, and writes back as it was read.
func FuzzParseRollout(f *testing.F) {
	for _, seed := range []string{
		``,
		`{"configurations":[{"configurationName":"hello","percent":100,"revisions":[{"revisionName":"hello-00001","percent":100}],"stepParams":{}}]}`,
		`{"configurations":[{"configurationName":"hello","percent":100,"revisions":[{"revisionName":"hello-00001","percent":99},{"revisionName":"hello-00002","percent":1}],"stepParams":{"starttime":1,"nextStepTime":2,"stepDuration":1000000000,"stepSize":33}}]}`,
		`{"configurations":[{"configurationName":"a","percent":50,"revisions":[{"revisionName":"a-1","percent":9223372036854775807},{"revisionName":"a-2","percent":9223372036854775807},{"revisionName":"a-3","percent":52}]}]}`,
		`{"configurations":[null]}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ro := parseRollout(s)
		if ro == nil {
			return
		}
		for _, c := range ro.Configurations {
			if c.Percent < 0 || c.Percent > 100 || c.Step.Size < 0 || c.Step.Size > c.Percent || c.Step.Duration < 0 {
				t.Fatalf("accepted %+v", c)
			}
			sum := 0
			for _, r := range c.Revisions {
				if r.Percent < 0 || r.Percent > 100 {
					t.Fatalf("accepted a share of %d%%", r.Percent)
				}
				sum += r.Percent
			}
			if sum != c.Percent {
				t.Fatalf("accepted shares summing to %d of %d", sum, c.Percent)
			}
		}
		// Empty lists write back as absent: compare what is written.
		if again := parseRollout(ro.String()); again == nil || again.String() != ro.String() {
			t.Fatalf("written back as %s, read again as %+v", ro.String(), again)
		}
	})
}
