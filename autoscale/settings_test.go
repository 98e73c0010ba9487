package autoscale

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/autoscale/metrics"
)

func TestNewSettingsDefaults(t *testing.T) {
	got := settingsFor(t, nil, RevisionSpec{})
	want := Settings{
		Metric:                 "concurrency",
		Aggregation:            metrics.Linear,
		TargetValue:            70,
		TotalValue:             100,
		TargetBurstCapacity:    211,
		ActivatorCapacity:      100,
		PanicThreshold:         2,
		StableWindow:           60 * time.Second,
		PanicWindow:            6 * time.Second,
		MaxScaleUpRate:         1000,
		MaxScaleDownRate:       2,
		InitialScale:           1,
		Reachable:              true,
		EnableScaleToZero:      true,
		ScaleToZeroGracePeriod: 30 * time.Second,
		ActivationTimeout:      630 * time.Second,
	}
	if got != want {
		t.Errorf("NewSettings with defaults =\n%+v\nwant\n%+v", got, want)
	}
}

// TestNewSettingsPrecedence: an annotation, in either spelling, wins over
// config-autoscaler.
func TestNewSettingsPrecedence(t *testing.T) {
	cm := map[string]string{
		"target-burst-capacity": "100", "stable-window": "30s", "panic-window-percentage": "20",
		"panic-threshold-percentage": "300", "scale-down-delay": "10s", "initial-scale": "2",
		"min-scale": "1", "max-scale": "10", "scale-to-zero-pod-retention-period": "1m",
	}
	fromConfig := settingsFor(t, cm, RevisionSpec{})
	if fromConfig.TargetBurstCapacity != 100 || fromConfig.StableWindow != 30*time.Second || fromConfig.PanicWindow != 6*time.Second ||
		fromConfig.PanicThreshold != 3 || fromConfig.ScaleDownDelay != 10*time.Second || fromConfig.InitialScale != 2 ||
		fromConfig.MinScale != 1 || fromConfig.MaxScale != 10 || fromConfig.ScaleToZeroPodRetention != time.Minute {
		t.Errorf("from config-autoscaler: %+v", fromConfig)
	}
	fromAnnotations := settingsFor(t, cm, RevisionSpec{Annotations: map[string]string{
		"autoscaling.knative.dev/targetBurstCapacity":                "0",
		"autoscaling.knative.dev/window":                             "10s",
		"autoscaling.knative.dev/panic-window-percentage":            "15",
		"autoscaling.knative.dev/panicThresholdPercentage":           "150",
		"autoscaling.knative.dev/scale-down-delay":                   "0s",
		"autoscaling.knative.dev/initialScale":                       "3",
		"autoscaling.knative.dev/minScale":                           "2",
		"autoscaling.knative.dev/max-scale":                          "4",
		"autoscaling.knative.dev/scale-to-zero-pod-retention-period": "5s",
		"autoscaling.knative.dev/activation-scale":                   "3",
		"autoscaling.knative.dev/metricAggregationAlgorithm":         "weightedExponential",
	}})
	want := fromConfig
	want.TargetBurstCapacity, want.StableWindow, want.PanicWindow, want.PanicThreshold = 0, 10*time.Second, 2*time.Second, 1.5
	want.ScaleDownDelay, want.InitialScale, want.MinScale, want.MaxScale = 0, 3, 2, 4
	want.ScaleToZeroPodRetention, want.ActivationScale, want.Aggregation = 5*time.Second, 3, metrics.WeightedExponential
	if fromAnnotations != want {
		t.Errorf("from annotations =\n%+v\nwant\n%+v", fromAnnotations, want)
	}
}

// TestResolveTarget follows Knative's resources/target.go.
func TestResolveTarget(t *testing.T) {
	tests := []struct {
		name                string
		cm, ann             map[string]string
		cc                  int64
		wantTarget, wantTot float64
	}{
		{name: "unlimited concurrency: the default 100 at 70%", wantTarget: 70, wantTot: 100},
		{name: "containerConcurrency 10 at 70%", cc: 10, wantTarget: 7, wantTot: 10},
		{name: "the target annotation", ann: map[string]string{targetKey: "10"}, wantTarget: 7, wantTot: 10},
		{name: "the target annotation capped by containerConcurrency", cc: 5, ann: map[string]string{targetKey: "10"}, wantTarget: 3.5, wantTot: 5},
		{name: "containerConcurrency does not cap an rps target", cc: 5, ann: map[string]string{metricKey: "rps", targetKey: "10"}, wantTarget: 7, wantTot: 10},
		{name: "rps: the default 200 at 70%", ann: map[string]string{metricKey: "rps"}, wantTarget: 140, wantTot: 200},
		{name: "the utilization annotation", ann: map[string]string{targetKey: "10", utilizationKey: "100"}, wantTarget: 10, wantTot: 10},
		{name: "config-autoscaler's defaults", cm: map[string]string{"container-concurrency-target-default": "50", "container-concurrency-target-percentage": "80"}, wantTarget: 40, wantTot: 50},
		{name: "never below 0.01", ann: map[string]string{targetKey: "0.01", utilizationKey: "1"}, wantTarget: 0.01, wantTot: 0.01},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := settingsFor(t, tc.cm, RevisionSpec{Annotations: tc.ann, ContainerConcurrency: tc.cc})
			if s.TargetValue != tc.wantTarget || s.TotalValue != tc.wantTot {
				t.Errorf("target, total = %v, %v, want %v, %v", s.TargetValue, s.TotalValue, tc.wantTarget, tc.wantTot)
			}
		})
	}
}

// TestPanicWindow: a percentage of the stable window, in whole seconds,
// at least one.
func TestPanicWindow(t *testing.T) {
	for _, tc := range []struct {
		stable  time.Duration
		percent float64
		want    time.Duration
	}{
		{60 * time.Second, 10, 6 * time.Second},
		{10 * time.Second, 15, 2 * time.Second},
		{6 * time.Second, 10, time.Second},
		{6 * time.Second, 1, time.Second},
		{time.Hour, 100, time.Hour},
	} {
		if got := panicWindow(tc.stable, tc.percent); got != tc.want {
			t.Errorf("panicWindow(%v, %v%%) = %v, want %v", tc.stable, tc.percent, got, tc.want)
		}
	}
}

// TestNewSettingsInvalid: an invalid annotation is an error naming its
// key, so that the caller can mark that revision not Ready.
func TestNewSettingsInvalid(t *testing.T) {
	tests := []struct {
		name string
		cm   map[string]string
		ann  map[string]string
		key  string
	}{
		{name: "not a number", ann: map[string]string{targetKey: "ten"}, key: targetKey},
		{name: "below the least target", ann: map[string]string{targetKey: "0.001"}, key: targetKey},
		{name: "window out of range", ann: map[string]string{windowKey: "1s"}, key: windowKey},
		{name: "negative min-scale, old spelling", ann: map[string]string{"autoscaling.knative.dev/minScale": "-1"}, key: "autoscaling.knative.dev/minScale"},
		{name: "max below min", ann: map[string]string{"autoscaling.knative.dev/min-scale": "3", "autoscaling.knative.dev/max-scale": "2"}, key: "autoscaling.knative.dev/max-scale"},
		{name: "both spellings", ann: map[string]string{tbcKey: "1", "autoscaling.knative.dev/targetBurstCapacity": "2"}, key: "autoscaling.knative.dev/targetBurstCapacity"},
		{name: "activation-scale of 1", ann: map[string]string{"autoscaling.knative.dev/activation-scale": "1"}, key: "autoscaling.knative.dev/activation-scale"},
		{name: "unknown metric", ann: map[string]string{metricKey: "cpu"}, key: metricKey},
		{name: "initial-scale 0 not allowed by the cluster", ann: map[string]string{"autoscaling.knative.dev/initial-scale": "0"}, key: "autoscaling.knative.dev/initial-scale"},
		{name: "max-scale above max-scale-limit", cm: map[string]string{"max-scale-limit": "10", "max-scale": "5"}, ann: map[string]string{"autoscaling.knative.dev/max-scale": "11"}, key: "autoscaling.knative.dev/max-scale"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := resolve(t, tc.cm, RevisionSpec{Annotations: tc.ann})
			if err == nil || !strings.Contains(err.Error(), "["+tc.key+"]") {
				t.Errorf("error %v, want one naming %s", err, tc.key)
			}
		})
	}
}

func TestNewSettingsClass(t *testing.T) {
	hpa := map[string]string{"pod-autoscaler-class": config.ClassHPA}
	tests := []struct {
		name    string
		cm, ann map[string]string
		notKPA  bool
	}{
		{name: "the KPA by default"},
		{name: "the HPA by annotation", ann: map[string]string{"autoscaling.knative.dev/class": config.ClassHPA}, notKPA: true},
		{name: "the HPA by config-autoscaler", cm: hpa, notKPA: true},
		{name: "the KPA by annotation over the config", cm: hpa, ann: map[string]string{"autoscaling.knative.dev/class": config.ClassKPA}},
		{name: "a custom class", ann: map[string]string{"autoscaling.knative.dev/class": "example.com/mine"}, notKPA: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := resolve(t, tc.cm, RevisionSpec{Annotations: tc.ann})
			if got := errors.Is(err, ErrNotKPA); got != tc.notKPA || (err != nil && !got) {
				t.Errorf("error %v, want ErrNotKPA: %v", err, tc.notKPA)
			}
		})
	}
}

// TestUnreachable: an unreachable revision drops its min-scale and pod
// retention.
func TestUnreachable(t *testing.T) {
	ann := map[string]string{"autoscaling.knative.dev/min-scale": "2", "autoscaling.knative.dev/scale-to-zero-pod-retention-period": "1m"}
	reachable := settingsFor(t, nil, RevisionSpec{Annotations: ann})
	unreachable := settingsFor(t, nil, RevisionSpec{Annotations: ann, Unreachable: true})
	if reachable.minScale() != 2 || reachable.podRetention() != time.Minute {
		t.Errorf("reachable: min %d, retention %v, want 2, 1m", reachable.minScale(), reachable.podRetention())
	}
	if unreachable.minScale() != 0 || unreachable.podRetention() != 0 {
		t.Errorf("unreachable: min %d, retention %v, want 0, 0", unreachable.minScale(), unreachable.podRetention())
	}
}
