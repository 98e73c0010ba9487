package kube

import (
	"context"
	"fmt"
	"maps"
	"math"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kgate/kgate/api/autoscaling"
	"github.com/kgate/kgate/api/config"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/autoscale"
	"github.com/kgate/kgate/autoscale/loop"
	deploykube "github.com/kgate/kgate/deploy/kube"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/watcher/knative"
)

// Knative's HPA class (autoscaling.knative.dev/class:
// hpa.autoscaling.knative.dev): Kubernetes' HorizontalPodAutoscaler scales
// the revision's Deployment, as Knative's HPA reconciler
// (pkg/reconciler/autoscaling/hpa) has it do. kgate's autoscaler leaves
// such a revision alone and routes its traffic straight to its pods
// (loop.Revision.External); the revision is Ready once its Deployment has
// ready pods, like any other.

// The metrics of the HPA class (autoscaling.knative.dev/metric); any other
// name is a custom per-pod metric, as in Knative.
const (
	metricCPU    = "cpu"
	metricMemory = "memory"
)

// defaultCPUUtilization is what the API server defaults an
// autoscaling/v2 HorizontalPodAutoscaler without metrics to (80 % of the
// pods' CPU requests); kgate writes it out, so that what it wants is what
// the API server stores.
const defaultCPUUtilization = 80

// isHPA says whether the HorizontalPodAutoscaler scales a revision.
func isHPA(cfg config.Autoscaler, annotations map[string]string) bool {
	return autoscale.Class(cfg, annotations) == config.ClassHPA
}

// startsAtZero is watcher.Options.StartsAtZero: a new revision the loop
// will start at zero (loop.StartsAtZero), the HPA class never.
func startsAtZero(now time.Time, cfg config.Autoscaler, annotations map[string]string, containerConcurrency int64) bool {
	return loop.StartsAtZero(now, cfg, loop.Revision{
		Spec:     autoscale.RevisionSpec{Annotations: annotations, ContainerConcurrency: containerConcurrency},
		External: isHPA(cfg, annotations),
	})
}

// markExternal marks the revisions of the HPA class as scaled elsewhere:
// the loop decides nothing for them and serves them from their pods.
func markExternal(cfg config.Autoscaler, revs []loop.Revision) {
	for i := range revs {
		revs[i].External = isHPA(cfg, revs[i].Spec.Annotations)
	}
}

// horizontalPodAutoscaler is the HorizontalPodAutoscaler of a revision of
// the HPA class, as Knative makes it: named as the revision, its
// Deployment as target, owned by the revision; min and max from
// min-scale and max-scale (else config-autoscaler's; max 0 is no limit,
// min holds only while the revision is reachable); the metric
// from autoscaling.knative.dev/metric (cpu by default) with the target
// annotation as a CPU utilization percentage, a memory average in MiB or
// a custom metric's per-pod average; the window annotation as both
// stabilization windows. Without a target the API server's default, CPU at
// 80 %, applies. rev is the stored Revision (its UID makes the owner).
func horizontalPodAutoscaler(rev *servingv1.Revision, cfg config.Autoscaler, reachable bool) *autoscalingv2.HorizontalPodAutoscaler {
	// The reconciler has validated the annotations; a bad one counts as
	// absent.
	ann, _ := autoscaling.Parse(rev.Annotations, field.NewPath("metadata", "annotations"))
	minScale, maxScale := cfg.MinScale, cfg.MaxScale
	if ann.MinScale != nil {
		minScale = *ann.MinScale
	}
	if ann.MaxScale != nil {
		maxScale = *ann.MaxScale
	}
	if !reachable {
		minScale = 0
	}
	if maxScale == 0 {
		maxScale = math.MaxInt32
	}
	h := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: rev.Namespace, Name: rev.Name,
			Labels: deploykube.Labels(rev), Annotations: maps.Clone(rev.Annotations),
			OwnerReferences: []metav1.OwnerReference{deploykube.OwnerReference(rev)},
		},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{
				APIVersion: "apps/v1", Kind: "Deployment", Name: deploykube.DeploymentName(rev.Name),
			},
			// 1 is the API server's default, and the least an HPA scales to.
			MinReplicas: ptr.To(max(minScale, 1)),
			MaxReplicas: maxScale,
			Metrics:     []autoscalingv2.MetricSpec{hpaMetric(ann)},
		},
	}
	if ann.Window != nil {
		w := int32(ann.Window.Seconds())
		h.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{
			ScaleUp:   &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &w},
			ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &w},
		}
	}
	return h
}

// hpaMetric is the metric an HPA-class revision scales on.
func hpaMetric(ann autoscaling.Annotations) autoscalingv2.MetricSpec {
	metric := ann.Metric
	if metric == "" {
		metric = metricCPU
	}
	if ann.Target == nil {
		return resourceMetric(corev1.ResourceCPU, autoscalingv2.MetricTarget{
			Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](defaultCPUUtilization),
		})
	}
	target := *ann.Target
	switch metric {
	case metricCPU:
		return resourceMetric(corev1.ResourceCPU, autoscalingv2.MetricTarget{
			Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(int32(math.Ceil(target))),
		})
	case metricMemory:
		// Knative reads the target as whole MiB.
		return resourceMetric(corev1.ResourceMemory, autoscalingv2.MetricTarget{
			Type: autoscalingv2.AverageValueMetricType, AverageValue: resource.NewQuantity(int64(target)*1024*1024, resource.BinarySI),
		})
	default:
		return autoscalingv2.MetricSpec{
			Type: autoscalingv2.PodsMetricSourceType,
			Pods: &autoscalingv2.PodsMetricSource{
				Metric: autoscalingv2.MetricIdentifier{Name: metric},
				Target: autoscalingv2.MetricTarget{
					Type: autoscalingv2.AverageValueMetricType, AverageValue: resource.NewQuantity(int64(target), resource.DecimalSI),
				},
			},
		}
	}
}

func resourceMetric(name corev1.ResourceName, target autoscalingv2.MetricTarget) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{
		Type:     autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{Name: name, Target: target},
	}
}

// readHPAs lists the revisions' HorizontalPodAutoscalers, by revision key.
func (c *Controller) readHPAs(ctx context.Context, s *snapshot) error {
	var list autoscalingv2.HorizontalPodAutoscalerList
	if err := c.client.List(ctx, &list, client.HasLabels{deploykube.LabelRevision}); err != nil {
		return fmt.Errorf("listing HorizontalPodAutoscalers: %w", err)
	}
	s.hpas = make(map[string]*autoscalingv2.HorizontalPodAutoscaler, len(list.Items))
	for i := range list.Items {
		o := &list.Items[i]
		s.hpas[o.Namespace+"/"+o.Labels[deploykube.LabelRevision]] = o
	}
	return nil
}

// publishHPAs gives each stored revision of the HPA class its
// HorizontalPodAutoscaler, brings one that differs from what the revision
// asks back to it, and deletes those of revisions gone or no longer of
// the class (config-autoscaler's pod-autoscaler-class changed). One this
// controller does not control is left alone, as Knative leaves an HPA it
// does not own.
func (c *Controller) publishHPAs(s *snapshot, res *knative.Result) {
	class := make(map[string]bool, len(res.Revisions))
	for _, want := range res.Revisions {
		key := want.Namespace + "/" + want.Name
		rev := s.revisions[key]
		class[key] = isHPA(res.Config.Autoscaler, want.Annotations)
		if rev == nil || !class[key] {
			continue // being created: next round
		}
		// Knative's reachability, from the routing state: a revision
		// being brought up (pending) or routed (active) is reachable; one
		// routed no more (reserve) is not, and its min-scale no longer
		// holds.
		reachable := want.Labels[knative.LabelRoutingState] != knative.RoutingStateReserve
		h := horizontalPodAutoscaler(rev, res.Config.Autoscaler, reachable)
		have := s.hpas[key]
		if have == nil {
			c.writes.put("HPA/"+key, func(ctx context.Context) error {
				if err := ignoreExists(c.client.Create(ctx, h)); err != nil {
					return fmt.Errorf("creating the HorizontalPodAutoscaler of Revision %s: %w", key, err)
				}
				return nil
			})
			continue
		}
		if !metav1.IsControlledBy(have, rev) || sameHPASpec(have.Spec, h.Spec) {
			continue
		}
		upd := have.DeepCopy()
		setHPASpec(&upd.Spec, h.Spec)
		c.writes.put("HPA/"+key, func(ctx context.Context) error {
			if err := c.client.Update(ctx, upd); err != nil {
				return fmt.Errorf("updating the HorizontalPodAutoscaler of Revision %s: %w", key, err)
			}
			return nil
		})
	}
	for key, o := range s.hpas {
		if _, ok := controllerOf(o.OwnerReferences, servingv1.KindRevision); !ok {
			continue
		}
		if hpa, known := class[key]; s.revisions[key] == nil || (known && !hpa) {
			c.deleteLater("HPA/"+key, o)
		}
	}
}

// sameHPASpec says whether the stored spec is what kgate wants, looking
// only at what kgate sets: the API server fills in the scaling policies
// of a behavior around its windows.
func sameHPASpec(have, want autoscalingv2.HorizontalPodAutoscalerSpec) bool {
	return equality.Semantic.DeepEqual(have.ScaleTargetRef, want.ScaleTargetRef) &&
		ptr.Deref(have.MinReplicas, 1) == ptr.Deref(want.MinReplicas, 1) &&
		have.MaxReplicas == want.MaxReplicas &&
		equality.Semantic.DeepEqual(have.Metrics, want.Metrics) &&
		window(have.Behavior, true) == window(want.Behavior, true) &&
		window(have.Behavior, false) == window(want.Behavior, false)
}

// setHPASpec sets in have what sameHPASpec compares.
func setHPASpec(have *autoscalingv2.HorizontalPodAutoscalerSpec, want autoscalingv2.HorizontalPodAutoscalerSpec) {
	have.ScaleTargetRef, have.MinReplicas, have.MaxReplicas, have.Metrics = want.ScaleTargetRef, want.MinReplicas, want.MaxReplicas, want.Metrics
	switch {
	case want.Behavior == nil:
		have.Behavior = nil
	case have.Behavior == nil || have.Behavior.ScaleUp == nil || have.Behavior.ScaleDown == nil:
		have.Behavior = want.Behavior
	default:
		have.Behavior.ScaleUp.StabilizationWindowSeconds = want.Behavior.ScaleUp.StabilizationWindowSeconds
		have.Behavior.ScaleDown.StabilizationWindowSeconds = want.Behavior.ScaleDown.StabilizationWindowSeconds
	}
}

// window is a behavior's stabilization window up or down; -1 when unset.
func window(b *autoscalingv2.HorizontalPodAutoscalerBehavior, up bool) int32 {
	if b == nil {
		return -1
	}
	r := b.ScaleDown
	if up {
		r = b.ScaleUp
	}
	if r == nil || r.StabilizationWindowSeconds == nil {
		return -1
	}
	return *r.StabilizationWindowSeconds
}

// hpaRuntime is what an HPA-class revision's status shows of its
// autoscaler, as Knative shows the HPA's: the replicas it wants, and its
// traffic served by its pods. A decision of 0 before the HPA has computed
// one is none, so that the revision is not shown idle.
func hpaRuntime(s *snapshot, key string, rt *knative.Runtime) {
	h := s.hpas[key]
	if h == nil || h.Status.DesiredReplicas == 0 {
		return
	}
	rt.Desired, rt.Mode = ptr.To(h.Status.DesiredReplicas), string(model.Serve)
}
