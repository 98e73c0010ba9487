package knative

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
)

// As in Knative, a latest created revision that cannot run fails its
// Configuration (RevisionFailed, with the revision's message) and so its
// Service: kgate local's HPA class, say, shows on `kgate get ksvc`. Once a
// later revision is ready, the Configuration is Ready again.
func TestFailedRevisionFailsItsConfiguration(t *testing.T) {
	r := NewReconciler((&fakeClock{t: t0}).now)
	failed := map[string]Failure{"default/hello-00001": {Reason: "HPAClassUnsupported", Message: "not supported by kgate local"}}
	res := r.Reconcile(Input{Objects: decode(t, service("hello", "img")), Ready: map[string]bool{}, Failed: failed})
	if len(res.Configurations) != 1 {
		t.Fatalf("%d configurations, want 1", len(res.Configurations))
	}
	want := `Revision "hello-00001" failed with message: not supported by kgate local.`
	c := condOf(t, res.Configurations[0].Status.Conditions, servingv1.ConditionReady)
	if c.Status != corev1.ConditionFalse || c.Reason != ReasonRevisionFailed || c.Message != want {
		t.Errorf("Configuration Ready = %+v, want False %s %q", c, ReasonRevisionFailed, want)
	}
	svc := findService(res, "hello")
	c = condOf(t, svc.Status.Conditions, servingv1.ConditionReady)
	if c.Status != corev1.ConditionFalse || !strings.Contains(c.Message, "not supported by kgate local") {
		t.Errorf("Service Ready = %+v, want False with the revision's message", c)
	}

	res = r.Reconcile(Input{Objects: decode(t, service("hello", "img2")), Ready: map[string]bool{"default/hello-00002": true}, Failed: failed})
	if c := condOf(t, res.Configurations[0].Status.Conditions, servingv1.ConditionReady); c.Status != corev1.ConditionTrue {
		t.Errorf("with hello-00002 ready: Configuration Ready = %+v, want True", c)
	}
}
