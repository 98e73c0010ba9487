package autoscale

import (
	"math"

	"github.com/kgate/kgate/api/autoscaling"
	"github.com/kgate/kgate/api/config"
)

// resolveTarget returns the per-pod target the decider aims for and the
// total a pod can take, as Knative's resources/target.go resolves them.
//
// The total is the rps default for rps, else containerConcurrency, else the
// concurrency default when containerConcurrency is unlimited. A target
// annotation replaces the total, but never above a containerConcurrency
// limit, since the pod would queue beyond it. The target is the total times
// the utilization, and never below the smallest target Knative accepts.
func resolveTarget(metric string, containerConcurrency int64, cfg config.Autoscaler, ann autoscaling.Annotations) (target, total float64) {
	switch {
	case metric == autoscaling.MetricRPS:
		total = cfg.RPSTargetDefault
	case containerConcurrency > 0:
		total = float64(containerConcurrency)
	default:
		total = cfg.ContainerConcurrencyTargetDefault
	}
	if ann.Target != nil {
		total = *ann.Target
		if metric == autoscaling.MetricConcurrency && containerConcurrency > 0 {
			total = math.Min(total, float64(containerConcurrency))
		}
	}
	utilization := cfg.TargetUtilization
	if ann.TargetUtilization != nil {
		utilization = *ann.TargetUtilization / 100
	}
	return math.Max(config.TargetMin, total*utilization), total
}
