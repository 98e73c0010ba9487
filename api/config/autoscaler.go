package config

import (
	"time"
)

// AutoscalerConfigName is the name of the ConfigMap Autoscaler is read from.
const AutoscalerConfigName = "config-autoscaler"

// Autoscaler class names (pod-autoscaler-class and the class annotation).
const (
	ClassKPA = "kpa.autoscaling.knative.dev"
	ClassHPA = "hpa.autoscaling.knative.dev"
)

// Bounds shared by config-autoscaler and the autoscaling annotations.
const (
	WindowMin                   = 6 * time.Second
	WindowMax                   = time.Hour
	TargetMin                   = 0.01
	PanicWindowPercentageMin    = 1.0
	PanicWindowPercentageMax    = 100.0
	PanicThresholdPercentageMin = 110.0
	PanicThresholdPercentageMax = 1000.0
)

// Autoscaler is config-autoscaler: the cluster-wide defaults of the KPA.
type Autoscaler struct {
	PodAutoscalerClass    string // pod-autoscaler-class (kpa.autoscaling.knative.dev)
	EnableScaleToZero     bool   // enable-scale-to-zero (true)
	AllowZeroInitialScale bool   // allow-zero-initial-scale (false)

	MaxScaleUpRate   float64 // max-scale-up-rate (1000), > 1
	MaxScaleDownRate float64 // max-scale-down-rate (2), > 1
	// TargetUtilization is container-concurrency-target-percentage as a
	// fraction (70 -> 0.7); Knative also accepts it written as 0.7.
	TargetUtilization                 float64
	ContainerConcurrencyTargetDefault float64 // container-concurrency-target-default (100)
	RPSTargetDefault                  float64 // requests-per-second-target-default (200)
	TargetBurstCapacity               float64 // target-burst-capacity (211), >= 0 or -1
	PanicWindowPercentage             float64 // panic-window-percentage (10), 1..100
	PanicThresholdPercentage          float64 // panic-threshold-percentage (200)
	ActivatorCapacity                 float64 // activator-capacity (100), >= 1

	InitialScale  int32 // initial-scale (1)
	MinScale      int32 // min-scale (0)
	MaxScale      int32 // max-scale (0, unlimited)
	MaxScaleLimit int32 // max-scale-limit (0, none)

	StableWindow                  time.Duration // stable-window (60s), 6s..1h
	ScaleDownDelay                time.Duration // scale-down-delay (0s)
	ScaleToZeroGracePeriod        time.Duration // scale-to-zero-grace-period (30s)
	ScaleToZeroPodRetentionPeriod time.Duration // scale-to-zero-pod-retention-period (0s)
}

// DefaultAutoscaler returns Knative's config-autoscaler values.
func DefaultAutoscaler() Autoscaler {
	return Autoscaler{
		PodAutoscalerClass:                ClassKPA,
		EnableScaleToZero:                 true,
		MaxScaleUpRate:                    1000,
		MaxScaleDownRate:                  2,
		TargetUtilization:                 0.7,
		ContainerConcurrencyTargetDefault: 100,
		RPSTargetDefault:                  200,
		TargetBurstCapacity:               211,
		PanicWindowPercentage:             10,
		PanicThresholdPercentage:          200,
		ActivatorCapacity:                 100,
		InitialScale:                      1,
		StableWindow:                      60 * time.Second,
		ScaleToZeroGracePeriod:            30 * time.Second,
	}
}

// ParseAutoscaler reads config-autoscaler data.
func ParseAutoscaler(data map[string]string) (Autoscaler, error) {
	return parseAutoscaler(&parser{configMap: AutoscalerConfigName, data: data})
}

func parseAutoscaler(p *parser) (Autoscaler, error) {
	a := DefaultAutoscaler()
	p.string("pod-autoscaler-class", &a.PodAutoscalerClass)
	p.bool("enable-scale-to-zero", &a.EnableScaleToZero)
	p.bool("allow-zero-initial-scale", &a.AllowZeroInitialScale)
	p.float("max-scale-up-rate", &a.MaxScaleUpRate)
	p.float("max-scale-down-rate", &a.MaxScaleDownRate)
	p.float("container-concurrency-target-percentage", &a.TargetUtilization)
	p.float("container-concurrency-target-default", &a.ContainerConcurrencyTargetDefault)
	p.float("requests-per-second-target-default", &a.RPSTargetDefault)
	p.float("target-burst-capacity", &a.TargetBurstCapacity)
	p.float("panic-window-percentage", &a.PanicWindowPercentage)
	p.float("panic-threshold-percentage", &a.PanicThresholdPercentage)
	p.float("activator-capacity", &a.ActivatorCapacity)
	p.int32("initial-scale", &a.InitialScale)
	p.int32("min-scale", &a.MinScale)
	p.int32("max-scale", &a.MaxScale)
	p.int32("max-scale-limit", &a.MaxScaleLimit)
	p.duration("stable-window", &a.StableWindow)
	p.duration("scale-down-delay", &a.ScaleDownDelay)
	p.duration("scale-to-zero-grace-period", &a.ScaleToZeroGracePeriod)
	p.duration("scale-to-zero-pod-retention-period", &a.ScaleToZeroPodRetentionPeriod)
	if p.err != nil {
		return Autoscaler{}, p.err
	}
	// Knative reads 70 as 70% and 0.7 as the fraction itself.
	if a.TargetUtilization > 1 {
		a.TargetUtilization /= 100
	}

	var minMaxScale int32
	if a.MaxScaleLimit > 0 {
		minMaxScale = 1
	}
	switch {
	case a.PodAutoscalerClass != ClassKPA && a.PodAutoscalerClass != ClassHPA:
		p.fail("pod-autoscaler-class", "%q is not one of %s, %s", a.PodAutoscalerClass, ClassKPA, ClassHPA)
	case a.ScaleToZeroGracePeriod <= 0:
		p.fail("scale-to-zero-grace-period", "must be positive, was: %v", a.ScaleToZeroGracePeriod)
	case a.ScaleDownDelay < 0:
		p.fail("scale-down-delay", "cannot be negative, was: %v", a.ScaleDownDelay)
	case a.ScaleDownDelay.Round(time.Second) != a.ScaleDownDelay:
		p.fail("scale-down-delay", "%v must be specified with at most second precision", a.ScaleDownDelay)
	case a.ScaleToZeroPodRetentionPeriod < 0:
		p.fail("scale-to-zero-pod-retention-period", "cannot be negative, was: %v", a.ScaleToZeroPodRetentionPeriod)
	case a.TargetBurstCapacity < 0 && a.TargetBurstCapacity != -1:
		p.fail("target-burst-capacity", "must be either non-negative or -1 (for unlimited), was: %v", a.TargetBurstCapacity)
	case a.TargetUtilization <= 0 || a.TargetUtilization > 1:
		p.fail("container-concurrency-target-percentage", "%v is outside of valid range of (0, 100]", p.data["container-concurrency-target-percentage"])
	case a.TargetUtilization*a.ContainerConcurrencyTargetDefault < TargetMin:
		p.fail("container-concurrency-target-default", "with container-concurrency-target-percentage yields target concurrency of %v, can't be less than %v", a.TargetUtilization*a.ContainerConcurrencyTargetDefault, TargetMin)
	case a.RPSTargetDefault < TargetMin:
		p.fail("requests-per-second-target-default", "must be at least %v, was: %v", TargetMin, a.RPSTargetDefault)
	case a.ActivatorCapacity < 1:
		p.fail("activator-capacity", "%v, must be at least 1", a.ActivatorCapacity)
	case a.MaxScaleUpRate <= 1:
		p.fail("max-scale-up-rate", "%v, must be greater than 1.0", a.MaxScaleUpRate)
	case a.MaxScaleDownRate <= 1:
		p.fail("max-scale-down-rate", "%v, must be greater than 1.0", a.MaxScaleDownRate)
	case a.StableWindow < WindowMin || a.StableWindow > WindowMax:
		p.fail("stable-window", "%v, must be in [%v; %v] range", a.StableWindow, WindowMin, WindowMax)
	case a.StableWindow.Round(time.Second) != a.StableWindow:
		p.fail("stable-window", "%v, must be specified with at most second precision", a.StableWindow)
	case a.PanicWindowPercentage < PanicWindowPercentageMin || a.PanicWindowPercentage > PanicWindowPercentageMax:
		p.fail("panic-window-percentage", "%v, must be in [%v, %v] interval", a.PanicWindowPercentage, PanicWindowPercentageMin, PanicWindowPercentageMax)
	case a.InitialScale < 0 || (a.InitialScale == 0 && !a.AllowZeroInitialScale):
		p.fail("initial-scale", "%v, must be at least 0 (or at least 1 when allow-zero-initial-scale is false)", a.InitialScale)
	case a.MinScale < 0:
		p.fail("min-scale", "%v, must be at least 0", a.MinScale)
	case a.MaxScaleLimit < 0:
		p.fail("max-scale-limit", "%v, must be at least 0", a.MaxScaleLimit)
	case a.MaxScale < minMaxScale || (a.MaxScaleLimit > 0 && a.MaxScale > a.MaxScaleLimit):
		p.fail("max-scale", "%d, must be in [%d, max-scale-limit(%d)] range", a.MaxScale, minMaxScale, a.MaxScaleLimit)
	case a.MinScale > a.MaxScale && a.MaxScale > 0:
		p.fail("min-scale", "%d must be less than max-scale (%d)", a.MinScale, a.MaxScale)
	}
	if p.err != nil {
		return Autoscaler{}, p.err
	}
	return a, nil
}

// LocalMaxScaleLimit is kgate local's max-scale-limit when config-autoscaler
// sets none: four replicas per CPU, at least 8. kgate local runs a process
// per replica on one machine, where Knative's "no limit" would let
// min-scale "1000000000" start a process per replica.
func LocalMaxScaleLimit(cpus int) int32 { return int32(max(8, 4*cpus)) }

// Bounded applies a machine's ceiling on a revision's replicas where
// config-autoscaler sets none: max-scale-limit becomes ceiling, and max-scale
// (the bound of revisions without their own annotation), when unlimited,
// becomes it too. A ceiling of 0, or a ConfigMap's own max-scale-limit,
// leaves a unchanged.
func (a Autoscaler) Bounded(ceiling int32) Autoscaler {
	if ceiling <= 0 || a.MaxScaleLimit > 0 {
		return a
	}
	a.MaxScaleLimit = ceiling
	if a.MaxScale == 0 || a.MaxScale > ceiling {
		a.MaxScale = ceiling
	}
	return a
}
