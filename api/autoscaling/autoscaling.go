// Package autoscaling reads the autoscaling.knative.dev/* annotations of a
// Revision template into typed values, checking each against Knative's rules
// and reporting violations with Knative's messages on the annotation's path.
package autoscaling

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/api/fielderr"
)

// GroupName prefixes every autoscaling annotation.
const GroupName = "autoscaling.knative.dev"

// Annotation keys, in their current kebab-case spelling.
const (
	ClassKey                         = GroupName + "/class"
	MetricKey                        = GroupName + "/metric"
	TargetKey                        = GroupName + "/target"
	TargetUtilizationPercentageKey   = GroupName + "/target-utilization-percentage"
	MinScaleKey                      = GroupName + "/min-scale"
	MaxScaleKey                      = GroupName + "/max-scale"
	InitialScaleKey                  = GroupName + "/initial-scale"
	ActivationScaleKey               = GroupName + "/activation-scale"
	ScaleDownDelayKey                = GroupName + "/scale-down-delay"
	WindowKey                        = GroupName + "/window"
	PanicWindowPercentageKey         = GroupName + "/panic-window-percentage"
	PanicThresholdPercentageKey      = GroupName + "/panic-threshold-percentage"
	TargetBurstCapacityKey           = GroupName + "/target-burst-capacity"
	ScaleToZeroPodRetentionPeriodKey = GroupName + "/scale-to-zero-pod-retention-period"
	MetricAggregationAlgorithmKey    = GroupName + "/metric-aggregation-algorithm"
)

// Metric names (the metric annotation).
const (
	MetricConcurrency = "concurrency"
	MetricRPS         = "rps"
)

// Metric aggregation algorithms (the metric-aggregation-algorithm annotation).
const (
	AggregationLinear                 = "linear"
	AggregationWeightedExponential    = "weighted-exponential"
	AggregationWeightedExponentialAlt = "weightedExponential"
)

// aliases maps each key to its older camelCase spelling, which Knative still
// accepts.
var aliases = map[string]string{
	TargetUtilizationPercentageKey:   GroupName + "/targetUtilizationPercentage",
	MinScaleKey:                      GroupName + "/minScale",
	MaxScaleKey:                      GroupName + "/maxScale",
	InitialScaleKey:                  GroupName + "/initialScale",
	ScaleDownDelayKey:                GroupName + "/scaleDownDelay",
	PanicWindowPercentageKey:         GroupName + "/panicWindowPercentage",
	PanicThresholdPercentageKey:      GroupName + "/panicThresholdPercentage",
	TargetBurstCapacityKey:           GroupName + "/targetBurstCapacity",
	ScaleToZeroPodRetentionPeriodKey: GroupName + "/scaleToZeroPodRetentionPeriod",
	MetricAggregationAlgorithmKey:    GroupName + "/metricAggregationAlgorithm",
}

// Annotations are the autoscaling annotations of a Revision. A nil pointer
// (or empty string) means the annotation is absent or invalid, so the
// config-autoscaler default applies.
type Annotations struct {
	Class             string // kpa.autoscaling.knative.dev or hpa.autoscaling.knative.dev, or a custom class
	Metric            string // concurrency or rps for the KPA
	MetricAggregation string // linear, weighted-exponential or weightedExponential

	Target                   *float64 // per-pod target, >= 0.01
	TargetUtilization        *float64 // target-utilization-percentage, 1..100 (a percentage, not a fraction)
	PanicWindowPercentage    *float64 // 1..100
	PanicThresholdPercentage *float64 // 110..1000
	TargetBurstCapacity      *float64 // >= 0, or -1 for unlimited

	MinScale, MaxScale, InitialScale, ActivationScale *int32

	ScaleDownDelay          *time.Duration // 0..1h, whole seconds
	Window                  *time.Duration // 6s..1h, whole seconds
	ScaleToZeroPodRetention *time.Duration // 0..1h

	// Unknown lists autoscaling.knative.dev/* keys that are none of the
	// above. Knative accepts them silently; callers may warn about likely
	// typos.
	Unknown []string
}

// Parse reads and checks the autoscaling annotations in ann, reporting
// problems under path (typically metadata.annotations). Checks that depend
// on config-autoscaler are in ValidateWith. An absent class is taken to be
// the KPA, Knative's default.
//
// Each rule is a check of checks.go; all of them run, in this order, which
// is the order of the errors.
func Parse(ann map[string]string, path *field.Path) (Annotations, field.ErrorList) {
	p := &parser{reader: reader{ann: ann, path: path}}
	for _, check := range []func(*parser){
		(*parser).class,
		(*parser).scaleBounds,
		(*parser).maxScaleAtLeastMinScale,
		(*parser).activationScale,
		(*parser).initialScale,
		(*parser).panicWindowPercentage,
		(*parser).panicThresholdPercentage,
		(*parser).target,
		(*parser).targetUtilizationPercentage,
		(*parser).targetBurstCapacity,
		(*parser).window,
		(*parser).scaleToZeroPodRetentionPeriod,
		(*parser).scaleDownDelay,
		(*parser).metric,
		(*parser).metricAggregationAlgorithm,
		(*parser).unknownKeys,
	} {
		check(p)
	}
	return p.a, p.errs
}

// ValidateWith checks what depends on config-autoscaler: initial-scale 0
// needs allow-zero-initial-scale, and max-scale and min-scale must respect
// max-scale-limit.
// ann and path are those given to Parse.
func (a Annotations) ValidateWith(cfg config.Autoscaler, ann map[string]string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if a.InitialScale != nil && *a.InitialScale == 0 && !cfg.AllowZeroInitialScale {
		k := spelled(ann, InitialScaleKey)
		errs = append(errs, fielderr.Invalid(path.Key(k), "0", "initial-scale=0 not allowed by cluster"))
	}
	// Not Knative's rule, which bounds only max-scale: a min-scale above
	// the limit would start more replicas than the limit allows (and
	// kgate local runs a process per replica).
	if k := spelled(ann, MinScaleKey); cfg.MaxScaleLimit > 0 && deref(a.MinScale) > cfg.MaxScaleLimit {
		errs = append(errs, fielderr.OutOfBounds(path.Key(k), deref(a.MinScale), 0, cfg.MaxScaleLimit))
	}
	if _, set := ann[spelled(ann, MaxScaleKey)]; set && cfg.MaxScaleLimit > 0 {
		k, max := spelled(ann, MaxScaleKey), deref(a.MaxScale)
		switch {
		case max > cfg.MaxScaleLimit:
			errs = append(errs, fielderr.OutOfBounds(path.Key(k), max, 1, cfg.MaxScaleLimit))
		case max == 0 && a.MaxScale != nil:
			errs = append(errs, fielderr.Generic(path.Key(k), max, fmt.Sprint("max-scale=0 (unlimited), must be less than ", cfg.MaxScaleLimit)))
		}
	}
	return errs
}

// Keys returns the autoscaling.knative.dev/* keys of ann, sorted. Knative
// rejects them on a Service's, Configuration's or Route's own metadata, where
// they would have no effect.
func Keys(ann map[string]string) []string {
	var keys []string
	for k := range ann {
		if strings.HasPrefix(k, GroupName+"/") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// spelled returns the spelling of key present in ann (the alias when only it is).
func spelled(ann map[string]string, key string) string {
	if _, ok := ann[key]; ok {
		return key
	}
	if alias, ok := aliases[key]; ok {
		if _, ok := ann[alias]; ok {
			return alias
		}
	}
	return key
}

func deref(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}
