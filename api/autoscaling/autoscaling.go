// Package autoscaling reads the autoscaling.knative.dev/* annotations of a
// Revision template into typed values, checking each against Knative's rules
// and reporting violations with Knative's messages on the annotation's path.
package autoscaling

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
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

var known = map[string]bool{
	ClassKey: true, MetricKey: true, TargetKey: true, TargetUtilizationPercentageKey: true,
	MinScaleKey: true, MaxScaleKey: true, InitialScaleKey: true, ActivationScaleKey: true,
	ScaleDownDelayKey: true, WindowKey: true, PanicWindowPercentageKey: true,
	PanicThresholdPercentageKey: true, TargetBurstCapacityKey: true,
	ScaleToZeroPodRetentionPeriodKey: true, MetricAggregationAlgorithmKey: true,
}

func init() {
	for _, alias := range aliases {
		known[alias] = true
	}
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

// reader looks annotations up by key or alias, remembering problems.
type reader struct {
	ann  map[string]string
	path *field.Path
	errs field.ErrorList
}

// get returns the key actually used, its value and whether it was set; both
// spellings set at once is an error.
func (r *reader) get(key string) (string, string, bool) {
	v, ok := r.ann[key]
	alias, hasAlias := aliases[key]
	if !hasAlias {
		return key, v, ok
	}
	av, aok := r.ann[alias]
	switch {
	case ok && aok:
		r.errs = append(r.errs, fielderr.MultipleOneOf(r.path.Key(key), r.path.Key(alias))...)
		return key, v, true
	case aok:
		return alias, av, true
	}
	return key, v, ok
}

// int32GE0 reads a non-negative int32, as min-scale and max-scale are.
func (r *reader) int32GE0(key string) (string, *int32) {
	k, v, ok := r.get(key)
	if !ok {
		return k, nil
	}
	i, err := strconv.ParseInt(v, 10, 32)
	switch {
	case errors.Is(err, strconv.ErrRange) || err == nil && i < 0:
		r.errs = append(r.errs, fielderr.OutOfBounds(r.path.Key(k), v, 0, math.MaxInt32))
		return k, nil
	case err != nil:
		r.errs = append(r.errs, fielderr.Invalid(r.path.Key(k), v))
		return k, nil
	}
	n := int32(i)
	return k, &n
}

func (r *reader) float(key string) (string, string, *float64) {
	k, v, ok := r.get(key)
	if !ok {
		return k, v, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		r.errs = append(r.errs, fielderr.Invalid(r.path.Key(k), v))
		return k, v, nil
	}
	return k, v, &f
}

func (r *reader) duration(key string) (string, string, *time.Duration) {
	k, v, ok := r.get(key)
	if !ok {
		return k, v, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.errs = append(r.errs, fielderr.Invalid(r.path.Key(k), v))
		return k, v, nil
	}
	return k, v, &d
}

// Parse reads and checks the autoscaling annotations in ann, reporting
// problems under path (typically metadata.annotations). Checks that depend
// on config-autoscaler are in ValidateWith. An absent class is taken to be
// the KPA, Knative's default.
func Parse(ann map[string]string, path *field.Path) (Annotations, field.ErrorList) {
	r := &reader{ann: ann, path: path}
	var a Annotations

	// Class: a *.knative.dev class must be one of Knative's; others are
	// custom autoscalers and pass.
	if k, v, ok := r.get(ClassKey); ok {
		if strings.HasSuffix(v, ".knative.dev") && v != config.ClassKPA && v != config.ClassHPA {
			r.errs = append(r.errs, fielderr.Invalid(path.Key(k), v))
		} else {
			a.Class = v
		}
	}
	class := a.Class
	if _, set := ann[ClassKey]; !set {
		class = config.ClassKPA
	}

	// Scale bounds.
	minKey, minScale := r.int32GE0(MinScaleKey)
	maxKey, maxScale := r.int32GE0(MaxScaleKey)
	a.MinScale, a.MaxScale = minScale, maxScale
	minV, maxV := deref(minScale), deref(maxScale)
	if maxV != 0 && maxV < minV {
		msg := fmt.Sprintf("max-scale=%d is less than min-scale=%d", maxV, minV)
		r.errs = append(r.errs, fielderr.Generic(path.Key(maxKey), maxV, msg), fielderr.Generic(path.Key(minKey), minV, msg))
	}
	if k, v, ok := r.get(ActivationScaleKey); ok {
		n, err := strconv.ParseInt(v, 10, 32)
		p := path.Key(k)
		switch {
		case err != nil:
			r.errs = append(r.errs, fielderr.Invalid(p, v))
		case int64(minV) > n:
			r.errs = append(r.errs, fielderr.Generic(p, v, fmt.Sprintf("min-scale=%d is greater than activation-scale=%d", minV, n)))
		case maxV != 0 && int64(maxV) < n:
			r.errs = append(r.errs, fielderr.Generic(p, v, fmt.Sprintf("max-scale=%d is less than activation-scale=%d", maxV, n)))
		case n < 2:
			r.errs = append(r.errs, fielderr.Generic(p, v, fmt.Sprintf("activation-scale=%d must be greater than 1", n)))
		default:
			s := int32(n)
			a.ActivationScale = &s
		}
	}
	if k, v, ok := r.get(InitialScaleKey); ok {
		n, err := strconv.ParseInt(v, 10, 32)
		switch {
		case err != nil:
			r.errs = append(r.errs, fielderr.Invalid(path.Key(k), v))
		case n < 0:
			r.errs = append(r.errs, fielderr.Invalid(path.Key(k), v, "must be greater than 0"))
		default:
			s := int32(n)
			a.InitialScale = &s
		}
	}

	// Floats.
	if k, v, f := r.float(PanicWindowPercentageKey); f != nil {
		if *f < config.PanicWindowPercentageMin || *f > config.PanicWindowPercentageMax {
			r.errs = append(r.errs, fielderr.OutOfBounds(path.Key(k), v, config.PanicWindowPercentageMin, config.PanicWindowPercentageMax))
		} else {
			a.PanicWindowPercentage = f
		}
	}
	if k, v, f := r.float(PanicThresholdPercentageKey); f != nil {
		if *f < config.PanicThresholdPercentageMin || *f > config.PanicThresholdPercentageMax {
			r.errs = append(r.errs, fielderr.OutOfBounds(path.Key(k), v, config.PanicThresholdPercentageMin, config.PanicThresholdPercentageMax))
		} else {
			a.PanicThresholdPercentage = f
		}
	}
	if k, v, f := r.float(TargetKey); f != nil {
		if *f < config.TargetMin {
			r.errs = append(r.errs, fielderr.Generic(path.Key(k), v, fmt.Sprintf("target %s should be at least %g", v, config.TargetMin)))
		} else {
			a.Target = f
		}
	}
	if k, v, f := r.float(TargetUtilizationPercentageKey); f != nil {
		if *f < 1 || *f > 100 {
			r.errs = append(r.errs, fielderr.OutOfBounds(path.Key(k), v, 1, 100))
		} else {
			a.TargetUtilization = f
		}
	}
	if k, v, f := r.float(TargetBurstCapacityKey); f != nil {
		if *f < 0 && *f != -1 {
			r.errs = append(r.errs, fielderr.Invalid(path.Key(k), v))
		} else {
			a.TargetBurstCapacity = f
		}
	}

	// Durations.
	if k, v, d := r.duration(WindowKey); d != nil {
		switch {
		case *d < config.WindowMin || *d > config.WindowMax:
			r.errs = append(r.errs, fielderr.OutOfBounds(path.Key(k), v, config.WindowMin, config.WindowMax))
		case d.Truncate(time.Second) != *d:
			r.errs = append(r.errs, fielderr.Generic(path.Key(k), v, "must be specified with at most second precision"))
		default:
			a.Window = d
		}
	}
	if k, v, d := r.duration(ScaleToZeroPodRetentionPeriodKey); d != nil {
		if *d < 0 || *d > config.WindowMax {
			r.errs = append(r.errs, fielderr.OutOfBounds(path.Key(k), v, time.Duration(0), config.WindowMax))
		} else {
			a.ScaleToZeroPodRetention = d
		}
	}
	if k, v, d := r.duration(ScaleDownDelayKey); d != nil {
		switch {
		case *d < 0 || *d > config.WindowMax:
			r.errs = append(r.errs, fielderr.OutOfBounds(path.Key(k), v, time.Duration(0), config.WindowMax))
		case d.Round(time.Second) != *d:
			r.errs = append(r.errs, fielderr.Generic(path.Key(k), v, "must be specified with at most second precision"))
		default:
			a.ScaleDownDelay = d
		}
	}

	// Metric, by class: the KPA knows concurrency and rps; the HPA needs a
	// metric name; custom classes decide for themselves.
	if k, v, ok := r.get(MetricKey); ok {
		valid := true
		switch class {
		case config.ClassKPA:
			valid = v == MetricConcurrency || v == MetricRPS
		case config.ClassHPA:
			valid = v != ""
		}
		if valid {
			a.Metric = v
		} else {
			r.errs = append(r.errs, fielderr.Invalid(path.Key(k), v))
		}
	}
	// The aggregation algorithm is a KPA setting.
	if k, v, ok := r.get(MetricAggregationAlgorithmKey); ok && class == config.ClassKPA {
		switch v {
		case AggregationLinear, AggregationWeightedExponential, AggregationWeightedExponentialAlt:
			a.MetricAggregation = v
		default:
			r.errs = append(r.errs, fielderr.Invalid(path.Key(k), v))
		}
	}

	for k := range ann {
		if strings.HasPrefix(k, GroupName+"/") && !known[k] {
			a.Unknown = append(a.Unknown, k)
		}
	}
	sort.Strings(a.Unknown)
	return a, r.errs
}

// ValidateWith checks what depends on config-autoscaler: initial-scale 0
// needs allow-zero-initial-scale, and max-scale must respect max-scale-limit.
// ann and path are those given to Parse.
func (a Annotations) ValidateWith(cfg config.Autoscaler, ann map[string]string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if a.InitialScale != nil && *a.InitialScale == 0 && !cfg.AllowZeroInitialScale {
		k := spelled(ann, InitialScaleKey)
		errs = append(errs, fielderr.Invalid(path.Key(k), "0", "initial-scale=0 not allowed by cluster"))
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
