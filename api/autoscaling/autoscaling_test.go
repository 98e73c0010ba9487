package autoscaling

import (
	"reflect"
	"sort"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/api/fielderr"
)

var path = field.NewPath("metadata", "annotations")

func f(v float64) *float64             { return &v }
func i(v int32) *int32                 { return &v }
func d(v time.Duration) *time.Duration { return &v }

func TestParse(t *testing.T) {
	const p = "metadata.annotations"
	tests := []struct {
		name string
		ann  map[string]string
		want Annotations
		errs []string
	}{
		{name: "none", ann: nil},
		{name: "every key, kebab-case",
			ann: map[string]string{
				"autoscaling.knative.dev/class":                              "kpa.autoscaling.knative.dev",
				"autoscaling.knative.dev/metric":                             "rps",
				"autoscaling.knative.dev/target":                             "10",
				"autoscaling.knative.dev/target-utilization-percentage":      "70",
				"autoscaling.knative.dev/min-scale":                          "1",
				"autoscaling.knative.dev/max-scale":                          "5",
				"autoscaling.knative.dev/initial-scale":                      "2",
				"autoscaling.knative.dev/activation-scale":                   "3",
				"autoscaling.knative.dev/scale-down-delay":                   "15m",
				"autoscaling.knative.dev/window":                             "40s",
				"autoscaling.knative.dev/panic-window-percentage":            "20",
				"autoscaling.knative.dev/panic-threshold-percentage":         "150",
				"autoscaling.knative.dev/target-burst-capacity":              "-1",
				"autoscaling.knative.dev/scale-to-zero-pod-retention-period": "1m5s",
				"autoscaling.knative.dev/metric-aggregation-algorithm":       "weighted-exponential",
			},
			want: Annotations{Class: config.ClassKPA, Metric: "rps", MetricAggregation: "weighted-exponential",
				Target: f(10), TargetUtilization: f(70), PanicWindowPercentage: f(20), PanicThresholdPercentage: f(150),
				TargetBurstCapacity: f(-1), MinScale: i(1), MaxScale: i(5), InitialScale: i(2), ActivationScale: i(3),
				ScaleDownDelay: d(15 * time.Minute), Window: d(40 * time.Second), ScaleToZeroPodRetention: d(65 * time.Second)},
		},
		{name: "older camelCase spellings (seed 004)",
			ann: map[string]string{
				"autoscaling.knative.dev/minScale":                    "1",
				"autoscaling.knative.dev/maxScale":                    "5",
				"autoscaling.knative.dev/target":                      "1",
				"autoscaling.knative.dev/targetUtilizationPercentage": "80",
				"autoscaling.knative.dev/targetBurstCapacity":         "0",
				"autoscaling.knative.dev/scaleDownDelay":              "0s",
			},
			want: Annotations{Target: f(1), TargetUtilization: f(80), TargetBurstCapacity: f(0), MinScale: i(1), MaxScale: i(5), ScaleDownDelay: d(0)},
		},
		{name: "both spellings of one key",
			ann:  map[string]string{"autoscaling.knative.dev/min-scale": "1", "autoscaling.knative.dev/minScale": "2"},
			want: Annotations{MinScale: i(1)},
			errs: []string{"expected exactly one, got both: " + p + "[autoscaling.knative.dev/min-scale], " + p + "[autoscaling.knative.dev/minScale]"}},
		{name: "unknown keys are kept for a warning",
			ann:  map[string]string{"autoscaling.knative.dev/minscale": "1", "other.dev/x": "y"},
			want: Annotations{Unknown: []string{"autoscaling.knative.dev/minscale"}}},
		{name: "target utilization out of range",
			ann:  map[string]string{"autoscaling.knative.dev/target-utilization-percentage": "101"},
			errs: []string{"expected 1 <= 101 <= 100: " + p + "[autoscaling.knative.dev/target-utilization-percentage]"}},
		{name: "target too small",
			ann:  map[string]string{"autoscaling.knative.dev/target": "0.001"},
			errs: []string{"target 0.001 should be at least 0.01: " + p + "[autoscaling.knative.dev/target]"}},
		{name: "not numbers",
			ann:  map[string]string{"autoscaling.knative.dev/target": "ten", "autoscaling.knative.dev/max-scale": "many"},
			errs: []string{"invalid value: many: " + p + "[autoscaling.knative.dev/max-scale]", "invalid value: ten: " + p + "[autoscaling.knative.dev/target]"}},
		{name: "negative and oversized scales",
			ann:  map[string]string{"autoscaling.knative.dev/min-scale": "-1", "autoscaling.knative.dev/max-scale": "3000000000"},
			errs: []string{"expected 0 <= -1 <= 2147483647: " + p + "[autoscaling.knative.dev/min-scale]", "expected 0 <= 3000000000 <= 2147483647: " + p + "[autoscaling.knative.dev/max-scale]"}},
		{name: "max below min",
			ann:  map[string]string{"autoscaling.knative.dev/min-scale": "5", "autoscaling.knative.dev/max-scale": "2"},
			want: Annotations{MinScale: i(5), MaxScale: i(2)},
			errs: []string{"max-scale=2 is less than min-scale=5: " + p + "[autoscaling.knative.dev/max-scale], " + p + "[autoscaling.knative.dev/min-scale]"}},
		{name: "max 0 is unlimited",
			ann:  map[string]string{"autoscaling.knative.dev/min-scale": "5", "autoscaling.knative.dev/max-scale": "0"},
			want: Annotations{MinScale: i(5), MaxScale: i(0)}},
		{name: "activation scale below 2",
			ann:  map[string]string{"autoscaling.knative.dev/activation-scale": "1"},
			errs: []string{"activation-scale=1 must be greater than 1: " + p + "[autoscaling.knative.dev/activation-scale]"}},
		{name: "activation scale below min",
			ann:  map[string]string{"autoscaling.knative.dev/activation-scale": "2", "autoscaling.knative.dev/min-scale": "3"},
			want: Annotations{MinScale: i(3)},
			errs: []string{"min-scale=3 is greater than activation-scale=2: " + p + "[autoscaling.knative.dev/activation-scale]"}},
		{name: "activation scale above max",
			ann:  map[string]string{"autoscaling.knative.dev/activation-scale": "4", "autoscaling.knative.dev/max-scale": "3"},
			want: Annotations{MaxScale: i(3)},
			errs: []string{"max-scale=3 is less than activation-scale=4: " + p + "[autoscaling.knative.dev/activation-scale]"}},
		{name: "window out of range and imprecise",
			ann:  map[string]string{"autoscaling.knative.dev/window": "5s", "autoscaling.knative.dev/scale-down-delay": "1.5s"},
			errs: []string{"expected 6s <= 5s <= 1h0m0s: " + p + "[autoscaling.knative.dev/window]", "must be specified with at most second precision: " + p + "[autoscaling.knative.dev/scale-down-delay]"}},
		{name: "durations too long or unreadable",
			ann:  map[string]string{"autoscaling.knative.dev/scale-to-zero-pod-retention-period": "2h", "autoscaling.knative.dev/scale-down-delay": "soon"},
			errs: []string{"expected 0s <= 2h <= 1h0m0s: " + p + "[autoscaling.knative.dev/scale-to-zero-pod-retention-period]", "invalid value: soon: " + p + "[autoscaling.knative.dev/scale-down-delay]"}},
		{name: "panic percentages out of range",
			ann:  map[string]string{"autoscaling.knative.dev/panic-window-percentage": "0", "autoscaling.knative.dev/panic-threshold-percentage": "100"},
			errs: []string{"expected 1 <= 0 <= 100: " + p + "[autoscaling.knative.dev/panic-window-percentage]", "expected 110 <= 100 <= 1000: " + p + "[autoscaling.knative.dev/panic-threshold-percentage]"}},
		{name: "burst capacity below -1",
			ann:  map[string]string{"autoscaling.knative.dev/target-burst-capacity": "-2"},
			errs: []string{"invalid value: -2: " + p + "[autoscaling.knative.dev/target-burst-capacity]"}},
		{name: "unknown knative class",
			ann:  map[string]string{"autoscaling.knative.dev/class": "xpa.autoscaling.knative.dev"},
			errs: []string{"invalid value: xpa.autoscaling.knative.dev: " + p + "[autoscaling.knative.dev/class]"}},
		{name: "custom class takes any metric",
			ann:  map[string]string{"autoscaling.knative.dev/class": "custom.example.com", "autoscaling.knative.dev/metric": "queue-depth"},
			want: Annotations{Class: "custom.example.com", Metric: "queue-depth"}},
		{name: "HPA metric cpu",
			ann:  map[string]string{"autoscaling.knative.dev/class": "hpa.autoscaling.knative.dev", "autoscaling.knative.dev/metric": "cpu"},
			want: Annotations{Class: config.ClassHPA, Metric: "cpu"}},
		{name: "KPA (the default class) metric cpu",
			ann:  map[string]string{"autoscaling.knative.dev/metric": "cpu"},
			errs: []string{"invalid value: cpu: " + p + "[autoscaling.knative.dev/metric]"}},
		{name: "unknown aggregation",
			ann:  map[string]string{"autoscaling.knative.dev/metricAggregationAlgorithm": "median"},
			errs: []string{"invalid value: median: " + p + "[autoscaling.knative.dev/metricAggregationAlgorithm]"}},
		{name: "negative initial scale",
			ann:  map[string]string{"autoscaling.knative.dev/initialScale": "-1"},
			errs: []string{"invalid value: -1: " + p + "[autoscaling.knative.dev/initialScale]\nmust be greater than 0"}},
		// The checks of Parse (checks.go), one rule each.
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
			var want []string
			if tt.errs != nil {
				want = append(want, tt.errs...)
				sort.Strings(want)
			}
			if !reflect.DeepEqual(msgs, want) {
				t.Errorf("errors %q\nwant   %q", msgs, want)
			}
		})
	}
}

func TestValidateWith(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(*config.Autoscaler)
		ann  map[string]string
		errs []string
	}{
		{name: "initial scale 0 refused by default",
			ann:  map[string]string{"autoscaling.knative.dev/initial-scale": "0"},
			errs: []string{"invalid value: 0: metadata.annotations[autoscaling.knative.dev/initial-scale]\ninitial-scale=0 not allowed by cluster"}},
		{name: "initial scale 0 allowed by the cluster",
			cfg: func(a *config.Autoscaler) { a.AllowZeroInitialScale = true },
			ann: map[string]string{"autoscaling.knative.dev/initialScale": "0"}},
		{name: "max scale above the limit",
			cfg:  func(a *config.Autoscaler) { a.MaxScaleLimit = 10 },
			ann:  map[string]string{"autoscaling.knative.dev/maxScale": "11"},
			errs: []string{"expected 1 <= 11 <= 10: metadata.annotations[autoscaling.knative.dev/maxScale]"}},
		{name: "unlimited max scale under a limit",
			cfg:  func(a *config.Autoscaler) { a.MaxScaleLimit = 10 },
			ann:  map[string]string{"autoscaling.knative.dev/max-scale": "0"},
			errs: []string{"max-scale=0 (unlimited), must be less than 10: metadata.annotations[autoscaling.knative.dev/max-scale]"}},
		{name: "no max scale under a limit is Knative's business, not the annotation's",
			cfg: func(a *config.Autoscaler) { a.MaxScaleLimit = 10 },
			ann: map[string]string{}},
		{name: "min scale above the limit",
			cfg:  func(a *config.Autoscaler) { a.MaxScaleLimit = 8 },
			ann:  map[string]string{"autoscaling.knative.dev/min-scale": "1000000000"},
			errs: []string{"expected 0 <= 1000000000 <= 8: metadata.annotations[autoscaling.knative.dev/min-scale]"}},
		{name: "min scale at the limit",
			cfg: func(a *config.Autoscaler) { a.MaxScaleLimit = 8 },
			ann: map[string]string{"autoscaling.knative.dev/minScale": "8"}},
		{name: "any min scale without a limit",
			ann: map[string]string{"autoscaling.knative.dev/min-scale": "1000000000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.DefaultAutoscaler()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			a, errs := Parse(tt.ann, path)
			if len(errs) != 0 {
				t.Fatalf("Parse: %v", errs)
			}
			msgs := fielderr.Messages(a.ValidateWith(cfg, tt.ann, path))
			if len(msgs) == 0 {
				msgs = nil
			}
			if !reflect.DeepEqual(msgs, tt.errs) {
				t.Errorf("errors %q\nwant   %q", msgs, tt.errs)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	got := Keys(map[string]string{"autoscaling.knative.dev/min-scale": "1", "a": "b", "autoscaling.knative.dev/class": "x"})
	want := []string{"autoscaling.knative.dev/class", "autoscaling.knative.dev/min-scale"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Keys = %q, want %q", got, want)
	}
}
