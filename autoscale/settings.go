package autoscale

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kgate/kgate/api/autoscaling"
	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/api/fielderr"
	"github.com/kgate/kgate/autoscale/metrics"
)

const (
	// defaultProgressDeadline is Knative's config-deployment
	// progress-deadline, used when a RevisionSpec gives none.
	defaultProgressDeadline = 600 * time.Second
	// activationTimeoutBuffer is added to the progress deadline before a
	// revision that never becomes ready is scaled to zero, so that the
	// revision's own failure is reported first (Knative's buffer).
	activationTimeoutBuffer = 30 * time.Second
)

// ErrNotKPA is returned (wrapped) by NewSettings for a revision whose
// autoscaler class is not the KPA, which this package does not scale.
var ErrNotKPA = errors.New("autoscaler class is not " + config.ClassKPA)

// Class is a revision's autoscaler class: its autoscaling.knative.dev/class
// annotation, else config-autoscaler's pod-autoscaler-class. Only
// config.ClassKPA is this package's to scale; NewSettings refuses the
// others.
func Class(cfg config.Autoscaler, annotations map[string]string) string {
	if c := annotations[autoscaling.ClassKey]; c != "" {
		return c
	}
	return cfg.PodAutoscalerClass
}

// RevisionSpec is what NewSettings reads from one revision besides
// config-autoscaler.
type RevisionSpec struct {
	// Annotations are the revision's metadata.annotations; the
	// autoscaling.knative.dev/* keys, in either spelling, are read.
	Annotations map[string]string
	// ContainerConcurrency is spec.containerConcurrency; 0 means unlimited.
	ContainerConcurrency int64
	// Unreachable says that no route sends traffic to the revision
	// (Knative's routing state "reserve"), so min-scale, initial-scale and
	// the pod retention period no longer hold pods up. The zero value,
	// reachable, is Knative's default for an unknown routing state.
	Unreachable bool
	// ProgressDeadline is how long pods may take to become ready
	// (serving.knative.dev/progress-deadline); 0 means Knative's 600s.
	ProgressDeadline time.Duration
}

// Settings are the resolved autoscaling parameters of one revision: the
// union of Knative's DeciderSpec, Metric spec and the scaler's
// configuration. Build them with NewSettings.
type Settings struct {
	// Metric is autoscaling.MetricConcurrency or autoscaling.MetricRPS.
	Metric string
	// Aggregation is how the windows average (linear by default).
	Aggregation metrics.Algorithm

	// TargetValue is the metric value per pod the decider aims for.
	TargetValue float64
	// TotalValue is the metric value one pod can take at most; it sizes
	// the burst capacity and the activator count.
	TotalValue float64
	// TargetBurstCapacity is the spare capacity to keep before taking the
	// activator out of the path: 0 never needs it, -1 always keeps it.
	TargetBurstCapacity float64
	// ActivatorCapacity is the metric value one activator takes.
	ActivatorCapacity float64
	// PanicThreshold is panic-threshold-percentage as a fraction (2 = 200%).
	PanicThreshold float64

	// StableWindow and PanicWindow are the averaging windows.
	StableWindow, PanicWindow time.Duration
	// MaxScaleUpRate and MaxScaleDownRate bound one decision's change
	// relative to the ready pods.
	MaxScaleUpRate, MaxScaleDownRate float64
	// ScaleDownDelay holds the largest recent decision for this long.
	ScaleDownDelay time.Duration

	// InitialScale is the scale a new revision starts at.
	InitialScale int32
	// MinScale and MaxScale bound the scale; MaxScale 0 means unbounded.
	// MinScale is ignored while the revision is unreachable.
	MinScale, MaxScale int32
	// ActivationScale is the least non-zero scale (0 or 1: no effect).
	ActivationScale int32
	// Reachable says a route sends traffic to the revision.
	Reachable bool

	// EnableScaleToZero allows a scale of zero at all.
	EnableScaleToZero bool
	// ScaleToZeroGracePeriod is how long the activator must have been in
	// the path before the last pod goes.
	ScaleToZeroGracePeriod time.Duration
	// ScaleToZeroPodRetention keeps the last pod at least this long after
	// the revision became inactive (only while reachable).
	ScaleToZeroPodRetention time.Duration
	// ActivationTimeout is how long a revision may stay activating before
	// it is given up and scaled to zero.
	ActivationTimeout time.Duration
}

// NewSettings resolves a revision's settings from config-autoscaler and the
// revision's annotations, with the precedence Knative gives them. An
// invalid annotation yields an error naming its key; a revision of another
// autoscaler class yields an error wrapping ErrNotKPA.
func NewSettings(cfg config.Autoscaler, rev RevisionSpec) (Settings, error) {
	path := field.NewPath("metadata", "annotations")
	ann, errs := autoscaling.Parse(rev.Annotations, path)
	errs = append(errs, ann.ValidateWith(cfg, rev.Annotations, path)...)
	if len(errs) > 0 {
		return Settings{}, fmt.Errorf("autoscaling annotations: %s", strings.Join(fielderr.Messages(errs), "; "))
	}
	class := cfg.PodAutoscalerClass
	if ann.Class != "" {
		class = ann.Class
	}
	if class != config.ClassKPA {
		return Settings{}, fmt.Errorf("autoscaler class %q: %w", class, ErrNotKPA)
	}

	deadline := rev.ProgressDeadline
	if deadline == 0 {
		deadline = defaultProgressDeadline
	}
	s := Settings{
		Metric:              autoscaling.MetricConcurrency,
		TargetBurstCapacity: or(ann.TargetBurstCapacity, cfg.TargetBurstCapacity),
		ActivatorCapacity:   cfg.ActivatorCapacity,
		PanicThreshold:      or(ann.PanicThresholdPercentage, cfg.PanicThresholdPercentage) / 100,
		StableWindow:        or(ann.Window, cfg.StableWindow),
		MaxScaleUpRate:      cfg.MaxScaleUpRate,
		MaxScaleDownRate:    cfg.MaxScaleDownRate,
		ScaleDownDelay:      or(ann.ScaleDownDelay, cfg.ScaleDownDelay),
		// ValidateWith has rejected initial-scale 0 unless the cluster
		// allows it.
		InitialScale:            or(ann.InitialScale, cfg.InitialScale),
		MinScale:                or(ann.MinScale, cfg.MinScale),
		MaxScale:                or(ann.MaxScale, cfg.MaxScale),
		ActivationScale:         or(ann.ActivationScale, 0),
		Reachable:               !rev.Unreachable,
		EnableScaleToZero:       cfg.EnableScaleToZero,
		ScaleToZeroGracePeriod:  cfg.ScaleToZeroGracePeriod,
		ScaleToZeroPodRetention: or(ann.ScaleToZeroPodRetention, cfg.ScaleToZeroPodRetentionPeriod),
		ActivationTimeout:       deadline + activationTimeoutBuffer,
	}
	if ann.Metric != "" {
		s.Metric = ann.Metric
	}
	if ann.MetricAggregation == autoscaling.AggregationWeightedExponential || ann.MetricAggregation == autoscaling.AggregationWeightedExponentialAlt {
		s.Aggregation = metrics.WeightedExponential
	}
	s.PanicWindow = panicWindow(s.StableWindow, or(ann.PanicWindowPercentage, cfg.PanicWindowPercentage))
	s.TargetValue, s.TotalValue = resolveTarget(s.Metric, rev.ContainerConcurrency, cfg, ann)
	return s, nil
}

// or returns *p, or def when p is nil (the annotation is absent).
func or[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// panicWindow is percent of the stable window, rounded to whole seconds and
// at least one bucket.
func panicWindow(stable time.Duration, percent float64) time.Duration {
	w := time.Duration(float64(stable) * percent / 100).Round(time.Second)
	return max(w, metrics.BucketSize)
}

// minScale is the lower scale bound, which an unreachable revision drops.
func (s *Settings) minScale() int32 {
	if !s.Reachable {
		return 0
	}
	return s.MinScale
}

// podRetention is how long the last pod is kept after the revision became
// inactive; an unreachable revision keeps none.
func (s *Settings) podRetention() time.Duration {
	if !s.Reachable {
		return 0
	}
	return s.ScaleToZeroPodRetention
}
