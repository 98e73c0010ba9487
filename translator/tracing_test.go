package translator

import (
	"math"
	"testing"
)

func TestTracingOff(t *testing.T) {
	for _, tr := range []Tracing{{}, {CollectorHost: "c"}, {CollectorPort: 4317, SampleRate: 1}} {
		out := Listeners(Options{Tracing: tr})
		if len(out.Clusters) != 0 {
			t.Errorf("%+v: clusters %v, want none", tr, out.Clusters)
		}
		if connManagerTracing(tr) != nil {
			t.Errorf("%+v: connection manager traces", tr)
		}
	}
}

func TestSamplePercent(t *testing.T) {
	for rate, want := range map[float64]float64{0: 0, 0.1: 10, 0.123456: 12.3456, 1: 100, 2: 100, -1: 0, math.NaN(): 0} {
		if got := samplePercent(rate); got != want {
			t.Errorf("samplePercent(%v) = %v, want %v", rate, got, want)
		}
	}
}

func TestTracingValid(t *testing.T) {
	for _, rate := range []float64{0, 0.5, 1} {
		out := Listeners(Options{Tracing: Tracing{CollectorHost: "10.0.0.1", CollectorPort: 4317, SampleRate: rate, ServiceName: "gw"}})
		if len(out.Clusters) != 1 || out.Clusters[0].GetName() != TracingCluster {
			t.Fatalf("clusters %v, want %s", out.Clusters, TracingCluster)
		}
		assertValid(t, out)
	}
}
