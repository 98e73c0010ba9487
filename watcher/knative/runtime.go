package knative

import (
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
)

// AnnotationRoutingMode is the Revision status annotation saying where the
// revision's traffic goes now: Proxy (the activators) or Serve (its pods).
const AnnotationRoutingMode = "kgate.dev/routing-mode"

// Runtime is what the deployer and the autoscaler know of a revision now.
type Runtime struct {
	// Actual is its ready pods.
	Actual int32
	// Desired is the replicas last decided; nil before any decision.
	Desired *int32
	// Mode is where its traffic was last sent (with a decision only).
	Mode string
}

// WithRuntime returns a Revision status (one of a Result's, which stays
// as it is) with rt added as Knative shows it: actualReplicas,
// desiredReplicas, the routing mode, and Active False (NoTraffic) for a
// revision at zero by decision. Active keeps its lastTransitionTime from
// prev (the stored conditions) while it is unchanged there, else it is now.
func WithRuntime(st servingv1.RevisionStatus, rt Runtime, prev []servingv1.Condition, now time.Time) servingv1.RevisionStatus {
	actual := rt.Actual
	st.ActualReplicas = &actual
	if rt.Desired == nil {
		return st
	}
	desired := *rt.Desired
	st.DesiredReplicas = &desired
	st.Annotations = maps.Clone(st.Annotations)
	if st.Annotations == nil {
		st.Annotations = map[string]string{}
	}
	st.Annotations[AnnotationRoutingMode] = rt.Mode
	if desired != 0 || actual != 0 {
		return st
	}
	idle := servingv1.Condition{
		Type: servingv1.ConditionActive, Status: corev1.ConditionFalse, Reason: "NoTraffic",
		Message: "The target is not receiving traffic.", LastTransitionTime: metav1.NewTime(now),
	}
	for _, p := range prev {
		if p.Type == idle.Type && p.Status == idle.Status && p.Reason == idle.Reason {
			idle.LastTransitionTime = p.LastTransitionTime
		}
	}
	conds := make([]servingv1.Condition, 0, len(st.Conditions)+1)
	for _, c := range st.Conditions {
		if c.Type != idle.Type {
			conds = append(conds, c)
		}
	}
	st.Conditions = append(conds, idle)
	return st
}
