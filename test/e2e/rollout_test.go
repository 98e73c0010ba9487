package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// rolling is hello's Service with a 12 s gradual rollout: the new revision
// gets 1 %, then 9 % a second (Knative's steps: 12 s less the first
// step's second, in 11 steps).
func rolling(target string) string {
	return strings.Replace(hello("roll", target), "  name: roll\n",
		"  name: roll\n  annotations:\n    serving.knative.dev/rollout-duration: 12s\n", 1)
}

// newShare is the percent of the Route's status traffic on revision, -1
// when the traffic is not a split of roll-00001 and it (or all on it).
func newShare(rt map[string]any, revision string) int {
	share := -1
	for _, tr := range trafficOf(rt) {
		name, p, _ := strings.Cut(tr, "=")
		switch name {
		case revision:
			fmt.Sscan(p, &share)
		case "roll-00001":
		default:
			return -1
		}
	}
	return share
}

// A new revision takes the traffic over the rollout duration: the Route's
// status shows the split moving, kgate get routes says RolloutInProgress,
// both revisions answer meanwhile, and a restart mid-rollout resumes it
// from where it was (kgate local's state store keeps the Route's
// serving.knative.dev/rollout annotation) rather than switching at once.
func TestGradualRollout(t *testing.T) {
	k := startKgate(t, map[string]string{"roll.yaml": rolling("v1")})
	k.ready("roll", host("roll"), "Hello v1!", 60*time.Second)
	k.write("roll.yaml", rolling("v2"))

	// Restarted once the rollout is well under way (9 % a second).
	var before int
	k.eventually("the Route's status splits the traffic, 10 to 60 % on the new revision", 60*time.Second, func() error {
		rt, err := k.get("routes", "roll")
		if err != nil {
			return err
		}
		if before = newShare(rt, "roll-00002"); before < 10 || before > 60 {
			return fmt.Errorf("traffic %v", trafficOf(rt))
		}
		return nil
	})
	if out := k.table("routes", "roll"); !strings.Contains(out, "RolloutInProgress") {
		t.Errorf("kgate get routes during the rollout, want RolloutInProgress:\n%s", out)
	}
	seen := map[string]int{}
	k.eventually("both revisions answer during the rollout", 10*time.Second, func() error {
		_, body, err := k.request(context.Background(), host("roll"), "/")
		if err != nil {
			return err
		}
		seen[body]++
		if seen["Hello v1!"] == 0 || seen["Hello v2!"] == 0 {
			return fmt.Errorf("answers so far %v", seen)
		}
		return nil
	})

	k.interrupt()
	k.launch()
	var rt map[string]any
	k.eventually("the Route after the restart", 20*time.Second, func() error {
		var err error
		if rt, err = k.get("routes", "roll"); err == nil && len(trafficOf(rt)) == 0 {
			err = fmt.Errorf("no traffic yet")
		}
		return err
	})
	after := newShare(rt, "roll-00002")
	t.Logf("the new revision had %d %% before the restart, %d %% after; answers during the rollout: %v", before, after, seen)
	if after < before || after >= 100 {
		t.Errorf("after a restart mid-rollout the new revision has %d %% (traffic %v), want the rollout resumed: at least the %d %% it had, not all of it",
			after, trafficOf(rt), before)
	}
	k.eventually("the new revision has all the traffic", 30*time.Second, func() error {
		rt, err := k.get("routes", "roll")
		if err != nil {
			return err
		}
		if got := trafficOf(rt); len(got) != 1 || got[0] != "roll-00002=100" {
			return fmt.Errorf("traffic %v", got)
		}
		if s := condition(rt, "Ready"); s != "True" {
			return fmt.Errorf("Ready is %q", s)
		}
		return nil
	})
	k.ready("roll", host("roll"), "Hello v2!", 10*time.Second)
}
