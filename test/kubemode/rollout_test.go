package kubemode

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/watcher/knative"
)

// rolloutShare is the percent of a Route's status traffic on revision (0 when it
// has none), and whether that traffic is a split of two revisions.
func rolloutShare(rt *servingv1.Route, revision string) (p int64, split bool) {
	for _, t := range rt.Status.Traffic {
		if t.RevisionName == revision && t.Percent != nil {
			p = *t.Percent
		}
	}
	return p, len(rt.Status.Traffic) == 2
}

// A gradual rollout on the API server: the Route's status splits the
// traffic in steps, with IngressReady RolloutInProgress, the Route carries
// the serving.knative.dev/rollout annotation, and a new controller (a
// restart, or a new leader) resumes the rollout from it rather than moving
// the rest of the traffic at once.
func TestGradualRolloutResumesAcrossControllers(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, stop := e.startController()
	e.connectGateway(c.XDSAddr().String(), "gateway-1")
	e.kubelet(ctx)

	svc := helloService("roll", nil)
	// 20 s: 1 %, then 5 % a second.
	svc.Annotations = map[string]string{servingv1.AnnotationRolloutDuration: "20s"}
	if err := e.client.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(svc)
	e.eventually(30*time.Second, "roll-00001 Ready", func() error {
		if err := e.client.Get(ctx, key, svc); err != nil {
			return err
		}
		if svc.Status.LatestReadyRevisionName != "roll-00001" {
			return fmt.Errorf("latestReady %q", svc.Status.LatestReadyRevisionName)
		}
		return nil
	})
	e.updateService(ctx, key, func(svc *servingv1.Service) {
		svc.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "TARGET", Value: "two"}}
	})

	var rt servingv1.Route
	var before int64
	e.eventually(30*time.Second, "the Route's status splits the traffic, 5 to 50 % on roll-00002", func() error {
		if err := e.client.Get(ctx, key, &rt); err != nil {
			return err
		}
		p, split := rolloutShare(&rt, "roll-00002")
		if !split || p < 5 || p > 50 {
			return fmt.Errorf("traffic %s", trafficString(&rt))
		}
		before = p
		return nil
	})
	if rt.Annotations[knative.AnnotationRollout] == "" {
		t.Errorf("the Route has no %s annotation during the rollout: %v", knative.AnnotationRollout, rt.Annotations)
	}
	if c := routeCondition(rt.Status.Conditions, servingv1.ConditionIngressReady); c == nil || c.Reason != knative.ReasonRolloutInProgress {
		t.Errorf("IngressReady %+v during the rollout, want RolloutInProgress", c)
	}

	stop()
	c, _ = e.startController()
	e.connectGateway(c.XDSAddr().String(), "gateway-2")
	// The first change the new controller writes is a step on, not all of
	// the traffic at once.
	e.eventually(30*time.Second, "the new controller moves the split on", func() error {
		if err := e.client.Get(ctx, key, &rt); err != nil {
			return err
		}
		if p, _ := rolloutShare(&rt, "roll-00002"); p == before {
			return fmt.Errorf("still %d %%", p)
		}
		return nil
	})
	if p, split := rolloutShare(&rt, "roll-00002"); !split || p < before {
		t.Errorf("after the restart: traffic %s, want the rollout resumed from %d %%", trafficString(&rt), before)
	}
	e.eventually(40*time.Second, "roll-00002 has all the traffic and the Route is Ready", func() error {
		if err := e.client.Get(ctx, key, &rt); err != nil {
			return err
		}
		if p, _ := rolloutShare(&rt, "roll-00002"); p != 100 || len(rt.Status.Traffic) != 1 {
			return fmt.Errorf("traffic %s", trafficString(&rt))
		}
		if c := routeCondition(rt.Status.Conditions, servingv1.ConditionReady); c == nil || c.Status != corev1.ConditionTrue {
			return fmt.Errorf("Ready %+v", c)
		}
		return nil
	})
}

// trafficString renders a Route's status traffic as "revision=percent".
func trafficString(rt *servingv1.Route) string {
	var out []string
	for _, t := range rt.Status.Traffic {
		p := int64(-1)
		if t.Percent != nil {
			p = *t.Percent
		}
		out = append(out, fmt.Sprintf("%s=%d", t.RevisionName, p))
	}
	return strings.Join(out, " ")
}

// routeCondition is the condition of type typ, nil when absent.
func routeCondition(cs []servingv1.Condition, typ servingv1.ConditionType) *servingv1.Condition {
	for i := range cs {
		if cs[i].Type == typ {
			return &cs[i]
		}
	}
	return nil
}
