package knative

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kgate/kgate/api/config"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
)

// A revision the autoscaler starts at zero (Input.StartsAtZero) is Ready,
// and routed, in the round that makes it, before Input.Ready names it; one
// it does not start at zero waits for Ready, and a failure wins over both.
// The question is asked once, of the revision as made.
func TestARevisionStartingAtZeroIsReadyInTheRoundThatMakesIt(t *testing.T) {
	for _, tc := range []struct {
		name      string
		atZero    bool
		failed    bool
		wantReady corev1.ConditionStatus
	}{
		{"starts at zero", true, false, corev1.ConditionTrue},
		{"starts with pods", false, false, corev1.ConditionUnknown},
		{"starts at zero, cannot run", true, true, corev1.ConditionFalse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked []map[string]string
			in := Input{Objects: decode(t, `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/window: "90s"
    spec:
      containers:
        - image: img`), Ready: map[string]bool{},
				StartsAtZero: func(_ time.Time, cfg config.Autoscaler, annotations map[string]string, _ int64) bool {
					asked = append(asked, annotations)
					return tc.atZero
				}}
			if tc.failed {
				in.Failed = map[string]Failure{"default/hello-00001": {Reason: "ImagePullBackOff", Message: "cannot pull"}}
			}
			r := NewReconciler((&fakeClock{t: t0}).now)
			res := r.Reconcile(in)
			if c := condOf(t, res.Revisions[0].Status.Conditions, servingv1.ConditionReady); c.Status != tc.wantReady {
				t.Errorf("the revision is Ready %q in the round that made it, want %q", c.Status, tc.wantReady)
			}
			routed := len(res.Model.Services) == 1 && res.Routed["default/hello-00001"]
			if want := tc.wantReady == corev1.ConditionTrue; routed != want {
				t.Errorf("the Route serves it: %v, want %v", routed, want)
			}
			if want := tc.atZero; slices.Equal(res.ReadyAtZero, []string{"default/hello-00001"}) != want {
				t.Errorf("ReadyAtZero %v, want it listed: %v", res.ReadyAtZero, want)
			}
			if len(asked) != 1 || asked[0]["autoscaling.knative.dev/window"] != "90s" {
				t.Errorf("asked %v, want once, with the template's annotations", asked)
			}
			// Later rounds neither ask again nor list it again.
			res = r.Reconcile(in)
			if len(asked) != 1 || len(res.ReadyAtZero) != 0 {
				t.Errorf("a second round asked %d times in all and listed %v, want asked once and nothing listed", len(asked), res.ReadyAtZero)
			}
		})
	}
}
