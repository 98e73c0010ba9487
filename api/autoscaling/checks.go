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

// The checks of Parse, one rule each, in the order Parse runs them. A check
// reads its annotation (in either spelling), sets its field of Annotations
// when the value is valid and otherwise adds an error on the spelling used.

// parser is the state Parse threads through its checks.
type parser struct {
	reader
	a Annotations // what the checks so far accepted
}

// class: a *.knative.dev class must be the KPA or HPA; any other names a custom autoscaler and passes.
func (p *parser) class() {
	k, v, ok := p.get(ClassKey)
	if !ok {
		return
	}
	if strings.HasSuffix(v, ".knative.dev") && v != config.ClassKPA && v != config.ClassHPA {
		p.errs = append(p.errs, fielderr.Invalid(p.path.Key(k), v))
		return
	}
	p.a.Class = v
}

// scaleBounds: min-scale and max-scale are replica counts, whole numbers from 0 to MaxInt32.
func (p *parser) scaleBounds() {
	p.a.MinScale = p.int32GE0(MinScaleKey)
	p.a.MaxScale = p.int32GE0(MaxScaleKey)
}

// maxScaleAtLeastMinScale: max-scale below min-scale can never hold, unless 0 (no maximum).
func (p *parser) maxScaleAtLeastMinScale() {
	minV, maxV := deref(p.a.MinScale), deref(p.a.MaxScale)
	if maxV == 0 || maxV >= minV {
		return
	}
	msg := fmt.Sprintf("max-scale=%d is less than min-scale=%d", maxV, minV)
	p.errs = append(p.errs,
		fielderr.Generic(p.path.Key(spelled(p.ann, MaxScaleKey)), maxV, msg),
		fielderr.Generic(p.path.Key(spelled(p.ann, MinScaleKey)), minV, msg))
}

// activationScale: the scale to wake up to is above 1 (the default) and within min- and max-scale.
func (p *parser) activationScale() {
	k, v, ok := p.get(ActivationScaleKey)
	if !ok {
		return
	}
	minV, maxV := deref(p.a.MinScale), deref(p.a.MaxScale)
	n, err := strconv.ParseInt(v, 10, 32)
	at := p.path.Key(k)
	switch {
	case err != nil:
		p.errs = append(p.errs, fielderr.Invalid(at, v))
	case int64(minV) > n:
		p.errs = append(p.errs, fielderr.Generic(at, v, fmt.Sprintf("min-scale=%d is greater than activation-scale=%d", minV, n)))
	case maxV != 0 && int64(maxV) < n:
		p.errs = append(p.errs, fielderr.Generic(at, v, fmt.Sprintf("max-scale=%d is less than activation-scale=%d", maxV, n)))
	case n < 2:
		p.errs = append(p.errs, fielderr.Generic(at, v, fmt.Sprintf("activation-scale=%d must be greater than 1", n)))
	default:
		s := int32(n)
		p.a.ActivationScale = &s
	}
}

// initialScale: the first scale is a whole number >= 0 (whether 0 is allowed: ValidateWith).
func (p *parser) initialScale() {
	k, v, ok := p.get(InitialScaleKey)
	if !ok {
		return
	}
	n, err := strconv.ParseInt(v, 10, 32)
	switch {
	case err != nil:
		p.errs = append(p.errs, fielderr.Invalid(p.path.Key(k), v))
	case n < 0:
		p.errs = append(p.errs, fielderr.Invalid(p.path.Key(k), v, "must be greater than 0"))
	default:
		s := int32(n)
		p.a.InitialScale = &s
	}
}

// panicWindowPercentage: the panic window is 1 to 100 percent of the stable window.
func (p *parser) panicWindowPercentage() {
	k, v, f := p.float(PanicWindowPercentageKey)
	switch {
	case f == nil:
	case *f < config.PanicWindowPercentageMin || *f > config.PanicWindowPercentageMax:
		p.errs = append(p.errs, fielderr.OutOfBounds(p.path.Key(k), v, config.PanicWindowPercentageMin, config.PanicWindowPercentageMax))
	default:
		p.a.PanicWindowPercentage = f
	}
}

// panicThresholdPercentage: panic starts above the target, at 110 to 1000 percent of it.
func (p *parser) panicThresholdPercentage() {
	k, v, f := p.float(PanicThresholdPercentageKey)
	switch {
	case f == nil:
	case *f < config.PanicThresholdPercentageMin || *f > config.PanicThresholdPercentageMax:
		p.errs = append(p.errs, fielderr.OutOfBounds(p.path.Key(k), v, config.PanicThresholdPercentageMin, config.PanicThresholdPercentageMax))
	default:
		p.a.PanicThresholdPercentage = f
	}
}

// target: the per-pod target is at least 0.01; a smaller one would ask for unbounded pods.
func (p *parser) target() {
	k, v, f := p.float(TargetKey)
	switch {
	case f == nil:
	case *f < config.TargetMin:
		p.errs = append(p.errs, fielderr.Generic(p.path.Key(k), v, fmt.Sprintf("target %s should be at least %g", v, config.TargetMin)))
	default:
		p.a.Target = f
	}
}

// targetUtilizationPercentage: the share of the target to aim for is 1 to 100 percent.
func (p *parser) targetUtilizationPercentage() {
	k, v, f := p.float(TargetUtilizationPercentageKey)
	switch {
	case f == nil:
	case *f < 1 || *f > 100:
		p.errs = append(p.errs, fielderr.OutOfBounds(p.path.Key(k), v, 1, 100))
	default:
		p.a.TargetUtilization = f
	}
}

// targetBurstCapacity: the spare capacity to keep is >= 0, or -1 for unlimited.
func (p *parser) targetBurstCapacity() {
	k, v, f := p.float(TargetBurstCapacityKey)
	switch {
	case f == nil:
	case *f < 0 && *f != -1:
		p.errs = append(p.errs, fielderr.Invalid(p.path.Key(k), v))
	default:
		p.a.TargetBurstCapacity = f
	}
}

// window: the stable window is 6s to 1h, in whole seconds (the autoscaler's tick).
func (p *parser) window() {
	k, v, d := p.duration(WindowKey)
	switch {
	case d == nil:
	case *d < config.WindowMin || *d > config.WindowMax:
		p.errs = append(p.errs, fielderr.OutOfBounds(p.path.Key(k), v, config.WindowMin, config.WindowMax))
	case d.Truncate(time.Second) != *d:
		p.errs = append(p.errs, fielderr.Generic(p.path.Key(k), v, "must be specified with at most second precision"))
	default:
		p.a.Window = d
	}
}

// scaleToZeroPodRetentionPeriod: the last pod outlives scale to zero by 0 to 1h.
func (p *parser) scaleToZeroPodRetentionPeriod() {
	k, v, d := p.duration(ScaleToZeroPodRetentionPeriodKey)
	switch {
	case d == nil:
	case *d < 0 || *d > config.WindowMax:
		p.errs = append(p.errs, fielderr.OutOfBounds(p.path.Key(k), v, time.Duration(0), config.WindowMax))
	default:
		p.a.ScaleToZeroPodRetention = d
	}
}

// scaleDownDelay: a lower scale must hold 0 to 1h, in whole seconds, before it applies.
func (p *parser) scaleDownDelay() {
	k, v, d := p.duration(ScaleDownDelayKey)
	switch {
	case d == nil:
	case *d < 0 || *d > config.WindowMax:
		p.errs = append(p.errs, fielderr.OutOfBounds(p.path.Key(k), v, time.Duration(0), config.WindowMax))
	case d.Round(time.Second) != *d:
		p.errs = append(p.errs, fielderr.Generic(p.path.Key(k), v, "must be specified with at most second precision"))
	default:
		p.a.ScaleDownDelay = d
	}
}

// metric: the KPA knows concurrency and rps, the HPA needs a name, other classes decide.
func (p *parser) metric() {
	k, v, ok := p.get(MetricKey)
	if !ok {
		return
	}
	valid := true
	switch p.effectiveClass() {
	case config.ClassKPA:
		valid = v == MetricConcurrency || v == MetricRPS
	case config.ClassHPA:
		valid = v != ""
	}
	if !valid {
		p.errs = append(p.errs, fielderr.Invalid(p.path.Key(k), v))
		return
	}
	p.a.Metric = v
}

// metricAggregationAlgorithm: a KPA setting (others ignore it), linear or weighted-exponential.
func (p *parser) metricAggregationAlgorithm() {
	k, v, ok := p.get(MetricAggregationAlgorithmKey)
	if !ok || p.effectiveClass() != config.ClassKPA {
		return
	}
	switch v {
	case AggregationLinear, AggregationWeightedExponential, AggregationWeightedExponentialAlt:
		p.a.MetricAggregation = v
	default:
		p.errs = append(p.errs, fielderr.Invalid(p.path.Key(k), v))
	}
}

// unknownKeys: other autoscaling.knative.dev/* keys pass, as in Knative, kept sorted for a typo warning.
func (p *parser) unknownKeys() {
	for k := range p.ann {
		if strings.HasPrefix(k, GroupName+"/") && !isKnown(k) {
			p.a.Unknown = append(p.a.Unknown, k)
		}
	}
	sort.Strings(p.a.Unknown)
}

// effectiveClass is the class that class-dependent checks go by: the KPA
// when the class annotation is absent, "" when it was invalid.
func (p *parser) effectiveClass() string {
	if _, set := p.ann[ClassKey]; !set {
		return config.ClassKPA
	}
	return p.a.Class
}

// isKnown reports whether k is one of the annotation keys, in either
// spelling.
func isKnown(k string) bool {
	switch k {
	case ClassKey, MetricKey, TargetKey, TargetUtilizationPercentageKey,
		MinScaleKey, MaxScaleKey, InitialScaleKey, ActivationScaleKey,
		ScaleDownDelayKey, WindowKey, PanicWindowPercentageKey,
		PanicThresholdPercentageKey, TargetBurstCapacityKey,
		ScaleToZeroPodRetentionPeriodKey, MetricAggregationAlgorithmKey:
		return true
	}
	for _, alias := range aliases {
		if k == alias {
			return true
		}
	}
	return false
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
func (r *reader) int32GE0(key string) *int32 {
	k, v, ok := r.get(key)
	if !ok {
		return nil
	}
	i, err := strconv.ParseInt(v, 10, 32)
	switch {
	case errors.Is(err, strconv.ErrRange) || err == nil && i < 0:
		r.errs = append(r.errs, fielderr.OutOfBounds(r.path.Key(k), v, 0, math.MaxInt32))
		return nil
	case err != nil:
		r.errs = append(r.errs, fielderr.Invalid(r.path.Key(k), v))
		return nil
	}
	n := int32(i)
	return &n
}

// float reads a finite number, returning the key used, its text and its
// value (nil when absent or not a number). ParseFloat also reads "NaN" and
// "Inf": NaN passes every bound check, since every comparison with it is
// false, and no target or percentage is infinite.
func (r *reader) float(key string) (string, string, *float64) {
	k, v, ok := r.get(key)
	if !ok {
		return k, v, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		r.errs = append(r.errs, fielderr.Invalid(r.path.Key(k), v))
		return k, v, nil
	}
	return k, v, &f
}

// duration reads a Go duration, returning the key used, its text and its
// value (nil when absent or unreadable).
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
