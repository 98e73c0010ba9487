package autoscaling

import (
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kgate/kgate/api/config"
)

// FuzzParse feeds Parse and ValidateWith annotations a user wrote (the
// template's metadata.annotations of any manifest) and checks what the
// autoscaler relies on: no panic, every error on an annotation that is
// there, and every accepted value within the bounds Annotations documents,
// so a value that reaches the decider is one Knative's rules allow.
//
// The input is one annotation per line, "key=value"; a key without a "/"
// is an autoscaling.knative.dev/ key, so mutations of a seed stay on the
// keys Parse reads. allowZero and limit are config-autoscaler's
// allow-zero-initial-scale and max-scale-limit.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, text string, allowZero bool, limit int32) {
		ann := annotationsOf(text)
		p := field.NewPath("metadata", "annotations")
		a, errs := Parse(ann, p)

		for _, e := range errs {
			checkOnAnnotation(t, ann, e)
		}
		checkBounds(t, ann, a)
		// The errors' order is the order of the checks, not of the map.
		if again, errsAgain := Parse(ann, p); !reflect.DeepEqual(a, again) || !reflect.DeepEqual(errs, errsAgain) {
			t.Fatalf("Parse is not deterministic: %v, then %v", errs, errsAgain)
		}
		if len(errs) == 0 && a.MaxScale != nil && *a.MaxScale != 0 && a.MinScale != nil && *a.MinScale > *a.MaxScale {
			t.Errorf("accepted min-scale %d above max-scale %d", *a.MinScale, *a.MaxScale)
		}

		cfg := config.DefaultAutoscaler()
		cfg.AllowZeroInitialScale, cfg.MaxScaleLimit = allowZero, limit
		cfgErrs := a.ValidateWith(cfg, ann, p)
		for _, e := range cfgErrs {
			checkOnAnnotation(t, ann, e)
		}
		if len(errs) != 0 || len(cfgErrs) != 0 {
			return
		}
		if a.InitialScale != nil && *a.InitialScale == 0 && !allowZero {
			t.Errorf("accepted initial-scale 0 where the cluster does not allow it")
		}
		if a.MaxScale != nil && limit > 0 && (*a.MaxScale < 1 || *a.MaxScale > limit) {
			t.Errorf("accepted max-scale %d outside [1, max-scale-limit %d]", *a.MaxScale, limit)
		}
	})
}

// annotationsOf reads FuzzParse's "key=value" lines.
func annotationsOf(text string) map[string]string {
	ann := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		k, v, _ := strings.Cut(line, "=")
		if !strings.Contains(k, "/") {
			k = GroupName + "/" + k
		}
		ann[k] = v
	}
	return ann
}

// checkOnAnnotation fails t unless e is on metadata.annotations[KEY] for a
// KEY of ann: the user must be able to find what the error is about.
func checkOnAnnotation(t *testing.T, ann map[string]string, e *field.Error) {
	t.Helper()
	const prefix = "metadata.annotations["
	key, ok := strings.CutPrefix(e.Field, prefix)
	if key, ok = strings.CutSuffix(key, "]"); !ok {
		t.Errorf("error %q is not on an annotation", e.Error())
		return
	}
	if _, set := ann[key]; !set {
		t.Errorf("error %q is on an annotation that is not there", e.Error())
	}
}

// checkBounds fails t for an accepted value outside what Annotations
// documents, or for a value whose annotation (in either spelling) is
// absent: nil means absent or invalid, so non-nil means given and valid.
func checkBounds(t *testing.T, ann map[string]string, a Annotations) {
	t.Helper()
	given := func(key string) bool {
		_, ok := ann[key]
		if alias, has := aliases[key]; has {
			_, aliasOK := ann[alias]
			ok = ok || aliasOK
		}
		return ok
	}
	floats := []struct {
		key      string
		v        *float64
		in       func(float64) bool
		document string
	}{
		{TargetKey, a.Target, func(v float64) bool { return v >= config.TargetMin }, ">= 0.01"},
		{TargetUtilizationPercentageKey, a.TargetUtilization, func(v float64) bool { return v >= 1 && v <= 100 }, "1..100"},
		{PanicWindowPercentageKey, a.PanicWindowPercentage, func(v float64) bool { return v >= 1 && v <= 100 }, "1..100"},
		{PanicThresholdPercentageKey, a.PanicThresholdPercentage, func(v float64) bool { return v >= 110 && v <= 1000 }, "110..1000"},
		{TargetBurstCapacityKey, a.TargetBurstCapacity, func(v float64) bool { return v >= 0 || v == -1 }, ">= 0 or -1"},
	}
	for _, f := range floats {
		switch {
		case f.v == nil:
		case !given(f.key):
			t.Errorf("%s = %v, but the annotation is absent", f.key, *f.v)
		case math.IsInf(*f.v, 0) || !f.in(*f.v):
			t.Errorf("accepted %s = %v; want a finite number, %s", f.key, *f.v, f.document)
		}
	}
	durations := []struct {
		key      string
		v        *time.Duration
		min, max time.Duration
		whole    bool
	}{
		{WindowKey, a.Window, config.WindowMin, config.WindowMax, true},
		{ScaleDownDelayKey, a.ScaleDownDelay, 0, config.WindowMax, true},
		{ScaleToZeroPodRetentionPeriodKey, a.ScaleToZeroPodRetention, 0, config.WindowMax, false},
	}
	for _, d := range durations {
		switch {
		case d.v == nil:
		case !given(d.key):
			t.Errorf("%s = %v, but the annotation is absent", d.key, *d.v)
		case *d.v < d.min || *d.v > d.max || d.whole && *d.v%time.Second != 0:
			t.Errorf("accepted %s = %v; want %v..%v (whole seconds: %t)", d.key, *d.v, d.min, d.max, d.whole)
		}
	}
	scales := []struct {
		key string
		v   *int32
		min int32
	}{
		{MinScaleKey, a.MinScale, 0},
		{MaxScaleKey, a.MaxScale, 0},
		{InitialScaleKey, a.InitialScale, 0},
		{ActivationScaleKey, a.ActivationScale, 2},
	}
	for _, s := range scales {
		switch {
		case s.v == nil:
		case !given(s.key):
			t.Errorf("%s = %d, but the annotation is absent", s.key, *s.v)
		case *s.v < s.min:
			t.Errorf("accepted %s = %d; want at least %d", s.key, *s.v, s.min)
		}
	}
	if act := a.ActivationScale; act != nil {
		if a.MinScale != nil && *act < *a.MinScale || a.MaxScale != nil && *a.MaxScale != 0 && *act > *a.MaxScale {
			t.Errorf("accepted activation-scale %d outside min-scale %v and max-scale %v", *act, deref(a.MinScale), deref(a.MaxScale))
		}
	}

	if a.Class != "" && strings.HasSuffix(a.Class, ".knative.dev") && a.Class != config.ClassKPA && a.Class != config.ClassHPA {
		t.Errorf("accepted class %q", a.Class)
	}
	if _, classSet := ann[ClassKey]; a.Metric != "" && (!classSet || a.Class == config.ClassKPA) &&
		a.Metric != MetricConcurrency && a.Metric != MetricRPS {
		t.Errorf("accepted metric %q for the KPA", a.Metric)
	}
	switch a.MetricAggregation {
	case "", AggregationLinear, AggregationWeightedExponential, AggregationWeightedExponentialAlt:
	default:
		t.Errorf("accepted metric-aggregation-algorithm %q", a.MetricAggregation)
	}
	if !slices.IsSorted(a.Unknown) {
		t.Errorf("Unknown %q is not sorted", a.Unknown)
	}
	for _, k := range a.Unknown {
		if _, ok := ann[k]; !ok || !strings.HasPrefix(k, GroupName+"/") || isKnown(k) {
			t.Errorf("Unknown lists %q, which is not an unknown autoscaling annotation of the input", k)
		}
	}
}
