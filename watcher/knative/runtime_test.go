package knative

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
)

func TestWithRuntime(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	before := metav1.NewTime(now.Add(-time.Hour))
	active := servingv1.Condition{Type: servingv1.ConditionActive, Status: corev1.ConditionTrue, LastTransitionTime: before}
	ready := servingv1.Condition{Type: servingv1.ConditionReady, Status: corev1.ConditionTrue, LastTransitionTime: before}
	idleSince := servingv1.Condition{Type: servingv1.ConditionActive, Status: corev1.ConditionFalse, Reason: "NoTraffic", LastTransitionTime: before}
	zero, two := int32(0), int32(2)
	for _, tt := range []struct {
		name       string
		rt         Runtime
		prev       []servingv1.Condition
		wantMode   string
		wantActive servingv1.Condition
	}{
		{"no decision yet: replicas only", Runtime{Actual: 1}, nil, "", active},
		{"serving", Runtime{Actual: 2, Desired: &two, Mode: "Serve"}, nil, "Serve", active},
		{"at zero: not active since now", Runtime{Desired: &zero, Mode: "Proxy"}, nil, "Proxy",
			servingv1.Condition{Type: servingv1.ConditionActive, Status: corev1.ConditionFalse, Reason: "NoTraffic", LastTransitionTime: metav1.NewTime(now)}},
		{"still at zero: not active since before", Runtime{Desired: &zero, Mode: "Proxy"}, []servingv1.Condition{idleSince}, "Proxy", idleSince},
		{"going to zero, one pod left: still active", Runtime{Actual: 1, Desired: &zero, Mode: "Proxy"}, nil, "Proxy", active},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := servingv1.RevisionStatus{}
			in.Conditions = []servingv1.Condition{active, ready}
			got := WithRuntime(in, tt.rt, tt.prev, now)
			if *got.ActualReplicas != tt.rt.Actual {
				t.Errorf("actualReplicas %d, want %d", *got.ActualReplicas, tt.rt.Actual)
			}
			if (got.DesiredReplicas == nil) != (tt.rt.Desired == nil) || got.Annotations[AnnotationRoutingMode] != tt.wantMode {
				t.Errorf("desired %v mode %q, want %v %q", got.DesiredReplicas, got.Annotations[AnnotationRoutingMode], tt.rt.Desired, tt.wantMode)
			}
			c := find(got.Conditions, servingv1.ConditionActive)
			if c == nil || c.Status != tt.wantActive.Status || c.Reason != tt.wantActive.Reason || !c.LastTransitionTime.Equal(&tt.wantActive.LastTransitionTime) {
				t.Errorf("Active %+v, want %+v", c, tt.wantActive)
			}
			if len(in.Conditions) != 2 || in.Conditions[0] != active || in.Annotations != nil {
				t.Errorf("the input status changed: %+v", in)
			}
		})
	}
}
