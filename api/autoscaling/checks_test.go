package autoscaling

import (
	"reflect"
	"testing"
)

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
