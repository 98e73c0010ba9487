package autoscaling

import (
	"reflect"
	"sort"
	"testing"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/api/fielderr"
)

// TestChecks covers branches of the checks that TestParse does not.
func TestChecks(t *testing.T) {
	const p = "metadata.annotations"
	tests := []struct {
		name string
		ann  map[string]string
		want Annotations
		errs []string
	}{
		{name: "activationScale: not a number",
			ann:  map[string]string{"autoscaling.knative.dev/activation-scale": "many"},
			errs: []string{"invalid value: many: " + p + "[autoscaling.knative.dev/activation-scale]"}},
		{name: "activationScale: within min and max",
			ann:  map[string]string{"autoscaling.knative.dev/activation-scale": "3", "autoscaling.knative.dev/minScale": "3", "autoscaling.knative.dev/maxScale": "3"},
			want: Annotations{MinScale: i(3), MaxScale: i(3), ActivationScale: i(3)}},
		{name: "initialScale: not a number",
			ann:  map[string]string{"autoscaling.knative.dev/initial-scale": "two"},
			errs: []string{"invalid value: two: " + p + "[autoscaling.knative.dev/initial-scale]"}},
		{name: "window: whole seconds",
			ann:  map[string]string{"autoscaling.knative.dev/window": "6500ms"},
			errs: []string{"must be specified with at most second precision: " + p + "[autoscaling.knative.dev/window]"}},
		{name: "scaleDownDelay: 0 to 1h",
			ann:  map[string]string{"autoscaling.knative.dev/scale-down-delay": "2h"},
			errs: []string{"expected 0s <= 2h <= 1h0m0s: " + p + "[autoscaling.knative.dev/scale-down-delay]"}},
		{name: "scaleDownDelay: not negative",
			ann:  map[string]string{"autoscaling.knative.dev/scaleDownDelay": "-1s"},
			errs: []string{"expected 0s <= -1s <= 1h0m0s: " + p + "[autoscaling.knative.dev/scaleDownDelay]"}},
		{name: "metric: the HPA needs a name",
			ann:  map[string]string{"autoscaling.knative.dev/class": config.ClassHPA, "autoscaling.knative.dev/metric": ""},
			want: Annotations{Class: config.ClassHPA},
			errs: []string{"invalid value: : " + p + "[autoscaling.knative.dev/metric]"}},
		{name: "metric: an invalid class checks no metric",
			ann:  map[string]string{"autoscaling.knative.dev/class": "xpa.autoscaling.knative.dev", "autoscaling.knative.dev/metric": "cpu"},
			want: Annotations{Metric: "cpu"},
			errs: []string{"invalid value: xpa.autoscaling.knative.dev: " + p + "[autoscaling.knative.dev/class]"}},
		{name: "metricAggregationAlgorithm: ignored by the HPA",
			ann:  map[string]string{"autoscaling.knative.dev/class": config.ClassHPA, "autoscaling.knative.dev/metric-aggregation-algorithm": "median"},
			want: Annotations{Class: config.ClassHPA}},
		{name: "metricAggregationAlgorithm: both spellings are an error even for the HPA",
			ann: map[string]string{"autoscaling.knative.dev/class": config.ClassHPA,
				"autoscaling.knative.dev/metric-aggregation-algorithm": "linear", "autoscaling.knative.dev/metricAggregationAlgorithm": "linear"},
			want: Annotations{Class: config.ClassHPA},
			errs: []string{"expected exactly one, got both: " + p + "[autoscaling.knative.dev/metric-aggregation-algorithm], " + p + "[autoscaling.knative.dev/metricAggregationAlgorithm]"}},
		{name: "metricAggregationAlgorithm: the older camelCase value",
			ann:  map[string]string{"autoscaling.knative.dev/metric-aggregation-algorithm": "weightedExponential"},
			want: Annotations{MetricAggregation: "weightedExponential"}},
		{name: "unknownKeys: sorted, aliases known",
			ann:  map[string]string{"autoscaling.knative.dev/z": "1", "autoscaling.knative.dev/a": "1", "autoscaling.knative.dev/windowSize": "1", "autoscaling.knative.dev/panicWindowPercentage": "10"},
			want: Annotations{PanicWindowPercentage: f(10), Unknown: []string{"autoscaling.knative.dev/a", "autoscaling.knative.dev/windowSize", "autoscaling.knative.dev/z"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := Parse(tt.ann, path)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse = %+v\nwant    %+v", got, tt.want)
			}
			msgs := fielderr.Messages(errs)
			if len(msgs) == 0 {
				msgs = nil
			}
			want := append([]string(nil), tt.errs...)
			sort.Strings(want)
			if !reflect.DeepEqual(msgs, want) {
				t.Errorf("errors %q\nwant   %q", msgs, want)
			}
		})
	}
}

// TestChecksOrder pins that every check runs and that errors come in the
// order of Parse's chain, whatever the order of the map.
func TestChecksOrder(t *testing.T) {
	ann := map[string]string{
		"autoscaling.knative.dev/metric":              "cpu",
		"autoscaling.knative.dev/window":              "1s",
		"autoscaling.knative.dev/targetBurstCapacity": "-5",
		"autoscaling.knative.dev/target":              "0",
		"autoscaling.knative.dev/activation-scale":    "1",
		"autoscaling.knative.dev/min-scale":           "x",
		"autoscaling.knative.dev/typo":                "1",
	}
	want := []string{"min-scale", "activation-scale", "target", "targetBurstCapacity", "window", "metric"}
	for range 10 {
		a, errs := Parse(ann, path)
		var got []string
		for _, e := range errs {
			got = append(got, e.Field[len("metadata.annotations[autoscaling.knative.dev/"):len(e.Field)-1])
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("error fields %q, want %q", got, want)
		}
		if !reflect.DeepEqual(a.Unknown, []string{"autoscaling.knative.dev/typo"}) {
			t.Fatalf("Unknown = %q", a.Unknown)
		}
	}
}
