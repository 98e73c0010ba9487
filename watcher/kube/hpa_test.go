package kube

import (
	"math"
	"slices"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kgate/kgate/api/config"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	deploykube "github.com/kgate/kgate/deploy/kube"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/watcher/knative"
)

// annotated sets an object's annotations.
func annotated(kv ...string) opt {
	return func(o client.Object) {
		a := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			a[kv[i]] = kv[i+1]
		}
		o.SetAnnotations(a)
	}
}

const classHPA = "autoscaling.knative.dev/class"

// hpaRev is a revision of the HPA class with more annotations.
func hpaRev(name string, kv ...string) *servingv1.Revision {
	return krev(name, "hello", image("hello:1"), annotated(append([]string{classHPA, config.ClassHPA}, kv...)...))
}

// TestHorizontalPodAutoscaler: the HPA of an HPA-class revision is
// Knative's: its Deployment as target, min and max from the annotations or
// config-autoscaler (no max: no limit; min only while routed), the metric
// and target from the annotations (cpu utilization by default, memory as
// an average in MiB, another name as a per-pod custom metric), the window
// as both stabilization windows.
func TestHorizontalPodAutoscaler(t *testing.T) {
	cpu := func(pct int32) autoscalingv2.MetricSpec {
		return resourceMetric(corev1.ResourceCPU, autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &pct})
	}
	cfgWith := func(minScale, maxScale int32) config.Autoscaler {
		c := config.DefaultAutoscaler()
		c.MinScale, c.MaxScale = minScale, maxScale
		return c
	}
	tests := []struct {
		name      string
		rev       *servingv1.Revision
		cfg       config.Autoscaler
		unrouted  bool
		min, max  int32
		metric    autoscalingv2.MetricSpec
		windowSec int32 // 0: no behavior
	}{
		{name: "no annotation: CPU at the API server's 80 %, 1 to unlimited", rev: hpaRev("a"), cfg: config.DefaultAutoscaler(),
			min: 1, max: math.MaxInt32, metric: cpu(80)},
		{name: "cpu target is a utilization percentage, rounded up", rev: hpaRev("a", "autoscaling.knative.dev/metric", "cpu", "autoscaling.knative.dev/target", "70.2"),
			cfg: config.DefaultAutoscaler(), min: 1, max: math.MaxInt32, metric: cpu(71)},
		{name: "the metric defaults to cpu", rev: hpaRev("a", "autoscaling.knative.dev/target", "50"),
			cfg: config.DefaultAutoscaler(), min: 1, max: math.MaxInt32, metric: cpu(50)},
		{name: "memory target is an average in MiB", rev: hpaRev("a", "autoscaling.knative.dev/metric", "memory", "autoscaling.knative.dev/target", "200"),
			cfg: config.DefaultAutoscaler(), min: 1, max: math.MaxInt32,
			metric: resourceMetric(corev1.ResourceMemory, autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: new(resource.MustParse("200Mi"))})},
		{name: "another metric is a per-pod custom metric", rev: hpaRev("a", "autoscaling.knative.dev/metric", "http_requests", "autoscaling.knative.dev/target", "10"),
			cfg: config.DefaultAutoscaler(), min: 1, max: math.MaxInt32,
			metric: autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
				Metric: autoscalingv2.MetricIdentifier{Name: "http_requests"},
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: new(resource.MustParse("10"))}}}},
		{name: "min-scale and max-scale bound it", rev: hpaRev("a", "autoscaling.knative.dev/min-scale", "2", "autoscaling.knative.dev/max-scale", "7"),
			cfg: config.DefaultAutoscaler(), min: 2, max: 7, metric: cpu(80)},
		{name: "the older spellings too", rev: hpaRev("a", "autoscaling.knative.dev/minScale", "3", "autoscaling.knative.dev/maxScale", "4"),
			cfg: config.DefaultAutoscaler(), min: 3, max: 4, metric: cpu(80)},
		{name: "config-autoscaler's min-scale and max-scale where the revision sets none", rev: hpaRev("a"), cfg: cfgWith(2, 9),
			min: 2, max: 9, metric: cpu(80)},
		{name: "an unrouted revision's min-scale does not hold", rev: hpaRev("a", "autoscaling.knative.dev/min-scale", "3"), cfg: config.DefaultAutoscaler(),
			unrouted: true, min: 1, max: math.MaxInt32, metric: cpu(80)},
		{name: "the window is both stabilization windows", rev: hpaRev("a", "autoscaling.knative.dev/window", "2m"), cfg: config.DefaultAutoscaler(),
			min: 1, max: math.MaxInt32, metric: cpu(80), windowSec: 120},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := horizontalPodAutoscaler(tt.rev, tt.cfg, !tt.unrouted)
			if h.Name != tt.rev.Name || h.Namespace != ns || h.Labels[deploykube.LabelRevision] != tt.rev.Name {
				t.Errorf("meta %+v, want the revision's name and label", h.ObjectMeta)
			}
			if !equalRefs(h.OwnerReferences, []metav1.OwnerReference{owner(servingv1.KindRevision, tt.rev.Name)}) {
				t.Errorf("owners %v, want the Revision", h.OwnerReferences)
			}
			ref := h.Spec.ScaleTargetRef
			if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != tt.rev.Name+"-deployment" {
				t.Errorf("scaleTargetRef %+v, want the revision's Deployment", ref)
			}
			if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas != tt.min || h.Spec.MaxReplicas != tt.max {
				t.Errorf("replicas %v..%d, want %d..%d", h.Spec.MinReplicas, h.Spec.MaxReplicas, tt.min, tt.max)
			}
			if len(h.Spec.Metrics) != 1 || !sameHPASpec(autoscalingv2.HorizontalPodAutoscalerSpec{Metrics: h.Spec.Metrics}, autoscalingv2.HorizontalPodAutoscalerSpec{Metrics: []autoscalingv2.MetricSpec{tt.metric}}) {
				t.Errorf("metrics %+v, want %+v", h.Spec.Metrics, tt.metric)
			}
			if got := window(h.Spec.Behavior, true); (tt.windowSec == 0 && h.Spec.Behavior != nil) || (tt.windowSec != 0 && (got != tt.windowSec || window(h.Spec.Behavior, false) != tt.windowSec)) {
				t.Errorf("behavior %+v, want windows of %d s", h.Spec.Behavior, tt.windowSec)
			}
		})
	}
}

// TestPublishHPAs: an HPA-class revision gets its HorizontalPodAutoscaler,
// owned by it; a stored one that differs in what kgate sets is brought
// back, one that does not is left alone whatever the API server filled in;
// an HPA whose revision is gone or no longer of the class goes; one kgate
// does not control stays; a KPA revision gets none.
func TestPublishHPAs(t *testing.T) {
	created := func(r *servingv1.Revision, cfg config.Autoscaler) *autoscalingv2.HorizontalPodAutoscaler {
		return horizontalPodAutoscaler(r, cfg, true)
	}
	hpaCfg := config.DefaultAutoscaler()
	hpaCfg.PodAutoscalerClass = config.ClassHPA
	tests := []struct {
		name   string
		cache  []client.Object
		revs   []*servingv1.Revision
		cfg    config.Autoscaler
		queued []string
		calls  []string
		check  func(t *testing.T, c *Controller)
	}{
		{
			name:   "an HPA-class revision gets its HPA",
			cache:  []client.Object{stored(hpaRev("hello-00001", "autoscaling.knative.dev/max-scale", "5"))},
			revs:   []*servingv1.Revision{hpaRev("hello-00001", "autoscaling.knative.dev/max-scale", "5")},
			queued: []string{"HPA/default/hello-00001"},
			calls:  []string{"create HorizontalPodAutoscaler default/hello-00001"},
			check: func(t *testing.T, c *Controller) {
				h := get(t, c, &autoscalingv2.HorizontalPodAutoscaler{}, "hello-00001")
				if h.Spec.MaxReplicas != 5 || h.Spec.ScaleTargetRef.Name != "hello-00001-deployment" {
					t.Errorf("spec %+v, want max 5 on the revision's Deployment", h.Spec)
				}
				if !equalRefs(h.OwnerReferences, []metav1.OwnerReference{owner(servingv1.KindRevision, "hello-00001")}) {
					t.Errorf("owners %v, want the Revision", h.OwnerReferences)
				}
			},
		},
		{
			name:   "config-autoscaler's pod-autoscaler-class makes every revision without a class HPA's",
			cache:  []client.Object{stored(krev("hello-00001", "hello", image("hello:1")))},
			revs:   []*servingv1.Revision{krev("hello-00001", "hello", image("hello:1"))},
			cfg:    hpaCfg,
			queued: []string{"HPA/default/hello-00001"},
			calls:  []string{"create HorizontalPodAutoscaler default/hello-00001"},
		},
		{
			name:   "a revision being brought up (pending) is reachable: min-scale holds",
			cache:  []client.Object{stored(hpaRev("hello-00001", "autoscaling.knative.dev/min-scale", "2"))},
			revs:   []*servingv1.Revision{routingState(hpaRev("hello-00001", "autoscaling.knative.dev/min-scale", "2"), knative.RoutingStatePending)},
			queued: []string{"HPA/default/hello-00001"},
			calls:  []string{"create HorizontalPodAutoscaler default/hello-00001"},
			check: func(t *testing.T, c *Controller) {
				if h := get(t, c, &autoscalingv2.HorizontalPodAutoscaler{}, "hello-00001"); *h.Spec.MinReplicas != 2 {
					t.Errorf("minReplicas %d, want 2", *h.Spec.MinReplicas)
				}
			},
		},
		{
			name:   "a revision routed no more (reserve) is unreachable: min-scale does not hold",
			cache:  []client.Object{stored(hpaRev("hello-00001", "autoscaling.knative.dev/min-scale", "2"))},
			revs:   []*servingv1.Revision{routingState(hpaRev("hello-00001", "autoscaling.knative.dev/min-scale", "2"), knative.RoutingStateReserve)},
			queued: []string{"HPA/default/hello-00001"},
			calls:  []string{"create HorizontalPodAutoscaler default/hello-00001"},
			check: func(t *testing.T, c *Controller) {
				if h := get(t, c, &autoscalingv2.HorizontalPodAutoscaler{}, "hello-00001"); *h.Spec.MinReplicas != 1 {
					t.Errorf("minReplicas %d, want 1", *h.Spec.MinReplicas)
				}
			},
		},
		{
			name:  "a KPA revision gets none",
			cache: []client.Object{stored(krev("hello-00001", "hello", image("hello:1")))},
			revs:  []*servingv1.Revision{krev("hello-00001", "hello", image("hello:1"))},
		},
		{
			name:  "a revision not stored yet gets none before it is",
			revs:  []*servingv1.Revision{hpaRev("hello-00001")},
			cache: []client.Object{kcfg("hello")},
		},
		{
			name: "an HPA as wanted, with what the API server defaults, is left alone",
			cache: []client.Object{stored(hpaRev("hello-00001", "autoscaling.knative.dev/window", "90s")), func() client.Object {
				h := created(hpaRev("hello-00001", "autoscaling.knative.dev/window", "90s"), config.DefaultAutoscaler())
				h.Spec.Behavior.ScaleUp.SelectPolicy = new(autoscalingv2.MaxChangePolicySelect)
				h.Spec.Behavior.ScaleUp.Policies = []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}}
				h.Status.DesiredReplicas = 2
				return h
			}()},
			revs: []*servingv1.Revision{hpaRev("hello-00001", "autoscaling.knative.dev/window", "90s")},
		},
		{
			name: "an HPA that differs is brought back to the revision's",
			cache: []client.Object{stored(hpaRev("hello-00001", "autoscaling.knative.dev/max-scale", "5")), func() client.Object {
				h := created(hpaRev("hello-00001", "autoscaling.knative.dev/max-scale", "5"), config.DefaultAutoscaler())
				h.Spec.MaxReplicas = 50
				return h
			}()},
			revs:   []*servingv1.Revision{hpaRev("hello-00001", "autoscaling.knative.dev/max-scale", "5")},
			queued: []string{"HPA/default/hello-00001"},
			calls:  []string{"update HorizontalPodAutoscaler default/hello-00001"},
			check: func(t *testing.T, c *Controller) {
				if h := get(t, c, &autoscalingv2.HorizontalPodAutoscaler{}, "hello-00001"); h.Spec.MaxReplicas != 5 {
					t.Errorf("maxReplicas %d, want 5", h.Spec.MaxReplicas)
				}
			},
		},
		{
			name: "an HPA whose windows differ gets the revision's, keeping the policies the API server filled in",
			cache: []client.Object{stored(hpaRev("hello-00001", "autoscaling.knative.dev/window", "90s")), func() client.Object {
				h := created(hpaRev("hello-00001", "autoscaling.knative.dev/window", "30s"), config.DefaultAutoscaler())
				h.Spec.Behavior.ScaleUp.Policies = []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}}
				return h
			}()},
			revs:   []*servingv1.Revision{hpaRev("hello-00001", "autoscaling.knative.dev/window", "90s")},
			queued: []string{"HPA/default/hello-00001"},
			calls:  []string{"update HorizontalPodAutoscaler default/hello-00001"},
			check: func(t *testing.T, c *Controller) {
				b := get(t, c, &autoscalingv2.HorizontalPodAutoscaler{}, "hello-00001").Spec.Behavior
				if window(b, true) != 90 || window(b, false) != 90 || len(b.ScaleUp.Policies) != 1 {
					t.Errorf("behavior %+v, want 90 s windows and the stored policy", b)
				}
			},
		},
		{
			name: "an HPA whose revision is gone, or no longer of the class, goes; one not kgate's stays",
			cache: []client.Object{
				stored(krev("kpa-00001", "hello", image("hello:1"))),
				created(hpaRev("kpa-00001"), config.DefaultAutoscaler()),
				created(hpaRev("gone-00001"), config.DefaultAutoscaler()),
				func() client.Object {
					h := created(hpaRev("theirs-00001"), config.DefaultAutoscaler())
					h.OwnerReferences = nil
					return h
				}(),
			},
			revs:   []*servingv1.Revision{krev("kpa-00001", "hello", image("hello:1"))},
			queued: []string{"HPA/default/gone-00001", "HPA/default/kpa-00001"},
			calls:  []string{"delete HorizontalPodAutoscaler default/gone-00001", "delete HorizontalPodAutoscaler default/kpa-00001"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, calls := newTestController(t, tt.cache...)
			res := knative.Result{Revisions: tt.revs, Config: config.Default(), Routed: map[string]bool{}}
			if tt.cfg.PodAutoscalerClass != "" {
				res.Config.Autoscaler = tt.cfg
			}
			for _, r := range tt.revs {
				res.Routed[ns+"/"+r.Name] = true
			}
			c.publishHPAs(snap(t, c), &res)
			if got := queued(c); !slices.Equal(got, tt.queued) {
				t.Errorf("queued writes:\n got %q\nwant %q", got, tt.queued)
			}
			flush(t, c)
			if got := calls.take(); !slices.Equal(got, tt.calls) {
				t.Errorf("API calls:\n got %q\nwant %q", got, tt.calls)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

// TestHPAClassNotKPAScaled: in a round, the KPA makes no decision for an
// HPA-class revision and routes it straight to its pods; its status shows
// the HPA's desired replicas and the Serve mode.
func TestHPAClassNotKPAScaled(t *testing.T) {
	rev := stored(hpaRev("hello-00001"))
	h := horizontalPodAutoscaler(rev, config.DefaultAutoscaler(), true)
	h.Status.DesiredReplicas = 3
	c, _ := newTestController(t, kcfg("hello"), rev, h, revDeployment(rev, 2), deploykube.PrivateService(rev))
	res := knative.Result{Revisions: []*servingv1.Revision{hpaRev("hello-00001")}, Config: config.Default(),
		Routed: map[string]bool{ns + "/hello-00001": true}}
	c.configureAutoscaler(t.Context(), &res)
	if d, ok := c.loop.Decisions()[ns+"/hello-00001"]; ok {
		t.Errorf("the KPA decided %+v for an HPA-class revision", d)
	}
	if m := c.loop.Modes()[ns+"/hello-00001"]; m != model.Serve {
		t.Errorf("mode %q, want Serve: the activators out of the path", m)
	}
	c.publish(snap(t, c), &res)
	flush(t, c)
	st := get(t, c, &servingv1.Revision{}, "hello-00001").Status
	if st.DesiredReplicas == nil || *st.DesiredReplicas != 3 || st.Annotations[knative.AnnotationRoutingMode] != string(model.Serve) {
		t.Errorf("status %+v, want the HPA's 3 desired replicas and Serve", st)
	}
	if st.ActualReplicas == nil || *st.ActualReplicas != 2 {
		t.Errorf("actualReplicas %v, want the Deployment's 2 ready", st.ActualReplicas)
	}
}

// stored is a revision as the API server holds it.
func stored(r *servingv1.Revision) *servingv1.Revision { r.SetGeneration(1); return r }

// routingState gives a result's revision Knative's routing state.
func routingState(r *servingv1.Revision, state string) *servingv1.Revision {
	r.Labels[knative.LabelRoutingState] = state
	return r
}
