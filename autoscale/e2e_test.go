package autoscale

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/kgate/kgate/translator/model"
)

// These tests replay the assertions of Knative's e2e autoscaling tests
// (test/e2e/autoscale_test.go, initial_scale_test.go and the minscale and
// scale-to-zero ones) against a simulated revision on a fake clock.

const (
	targetKey      = "autoscaling.knative.dev/target"
	utilizationKey = "autoscaling.knative.dev/target-utilization-percentage"
	metricKey      = "autoscaling.knative.dev/metric"
	aggregationKey = "autoscaling.knative.dev/metric-aggregation-algorithm"
	tbcKey         = "autoscaling.knative.dev/target-burst-capacity"
	windowKey      = "autoscaling.knative.dev/window"
)

var algorithms = []string{"linear", "weighted-exponential"}

// Knative's e2e target: concurrency 6 per pod (rps 10) at 70%.
func e2eAnnotations(metric, algorithm string) map[string]string {
	target := "6"
	if metric == "rps" {
		target = "10"
	}
	return map[string]string{metricKey: metric, targetKey: target, utilizationKey: "70", aggregationKey: algorithm}
}

// TestAutoscaleUpCountPods: with load for n pods (n targets' worth), the
// revision reaches n ready pods within 90 s, for n = 2, 3, 4 in turn, and
// never has more than ceil(ceil(n/0.7)*1.1) nor fewer than
// floor((n-1)/0.7)-1.
func TestAutoscaleUpCountPods(t *testing.T) {
	for _, metric := range []string{"concurrency", "rps"} {
		for _, algorithm := range algorithms {
			t.Run(metric+"/"+algorithm, func(t *testing.T) {
				s := newSim(t, nil, e2eAnnotations(metric, algorithm))
				s.settle()
				perPod := 6.0
				if metric == "rps" {
					perPod = 10
				}
				for n := 2.0; n <= 4; n++ {
					maxPods := math.Ceil(math.Ceil(n/0.7) * 1.1)
					minPods := math.Floor((n-1)/0.7) - 1
					s.concurrency, s.rps = n*perPod, n*perPod
					s.mustReach(90*time.Second, fmt.Sprintf("%v ready pods", n), func(Decision) bool {
						if got := float64(s.ready); got > maxPods || got < minPods {
							t.Fatalf("at %v: %v ready pods, want within [%v, %v]", s.elapsed(), got, minPods, maxPods)
						}
						return float64(s.ready) >= n
					})
				}
			})
		}
	}
}

// TestAutoscaleSustaining: load for 8 pods brings 8 within two minutes,
// and the count then holds between 7 and ceil(ceil(8/0.7)*1.1) = 14,
// ending at ceil(48/4.2) = 12.
func TestAutoscaleSustaining(t *testing.T) {
	for _, algorithm := range algorithms {
		t.Run(algorithm, func(t *testing.T) {
			s := newSim(t, nil, e2eAnnotations("concurrency", algorithm))
			s.settle()
			s.load(8 * 6)
			s.mustReach(2*time.Minute, "8 ready pods", func(Decision) bool { return s.ready >= 8 })
			s.until(2*time.Minute, func(Decision) bool {
				if s.ready < 7 || s.ready > 14 {
					t.Fatalf("at %v: %d ready pods, want within [7, 14]", s.elapsed(), s.ready)
				}
				return false
			})
			if s.last.Replicas != 12 {
				t.Errorf("settled at %d replicas, want 12", s.last.Replicas)
			}
		})
	}
}

// TestPanicOnBurst: a burst to twice what the ready pods can take enters
// panic and scales up within seconds rather than a stable window; while
// panicking the scale never goes down, even once the burst is over; a
// stable window after the last over-threshold tick the panic ends and the
// scale follows the stable average down.
func TestPanicOnBurst(t *testing.T) {
	s := newSim(t, nil, map[string]string{targetKey: "10", utilizationKey: "100"})
	s.settle()
	s.load(5)
	s.run(2 * time.Minute)
	if s.last.Panicking || s.last.Replicas != 1 {
		t.Fatalf("before the burst: %+v, want 1 replica, not panicking", s.last)
	}

	s.load(50)
	took := s.mustReach(10*time.Second, "panic", func(d Decision) bool { return d.Panicking })
	if took > 2*time.Second {
		t.Errorf("entered panic after %v, want at the first tick", took)
	}
	s.mustReach(10*time.Second, "5 replicas", func(d Decision) bool { return d.Replicas >= 5 })
	s.run(10 * time.Second)

	s.load(5) // the burst is over
	s.run(50 * time.Second)
	if !s.last.Panicking || s.last.Replicas < 5 {
		t.Errorf("50 s after the burst: %+v, want still panicking at 5 replicas", s.last)
	}
	s.mustReach(time.Minute, "panic to end", func(d Decision) bool { return !d.Panicking })
	if s.panicDrop {
		t.Error("the scale went down while panicking")
	}
	s.mustReach(2*time.Minute, "1 replica", func(d Decision) bool { return d.Replicas == 1 })
}

// TestScaleToZero: from the last request, the revision goes to zero about
// 90 s later in serve mode (a stable window to become inactive, then the
// scale-to-zero grace period behind the activator), and about 60 s later
// when it was in proxy mode already, as it is with the defaults at one pod
// (100 of capacity cannot cover the burst capacity of 211).
func TestScaleToZero(t *testing.T) {
	tests := []struct {
		name     string
		ann      map[string]string
		mode     model.Mode // while serving the load
		min, max time.Duration
	}{
		{name: "serve mode (target-burst-capacity 0)", ann: map[string]string{tbcKey: "0"}, mode: model.Serve, min: 90 * time.Second, max: 94 * time.Second},
		{name: "proxy mode (defaults)", mode: model.Proxy, min: 60 * time.Second, max: 64 * time.Second},
		{name: "activator always in path (target-burst-capacity -1)", ann: map[string]string{tbcKey: "-1"}, mode: model.Proxy, min: 60 * time.Second, max: 64 * time.Second},
		{name: "pod retention 2m", ann: map[string]string{"autoscaling.knative.dev/scale-to-zero-pod-retention-period": "2m"}, mode: model.Proxy, min: 180 * time.Second, max: 184 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, nil, tc.ann)
			s.settle()
			s.load(5)
			s.run(2 * time.Minute)
			if s.last.Mode != tc.mode || s.last.Replicas != 1 {
				t.Fatalf("under load: %+v, want 1 replica in %s mode", s.last, tc.mode)
			}
			s.load(0) // the last request was the second before
			took := s.mustReach(5*time.Minute, "zero replicas", func(d Decision) bool { return d.Replicas == 0 })
			if took < tc.min || took > tc.max {
				t.Errorf("scaled to zero %v after the last request, want within [%v, %v]", took, tc.min, tc.max)
			}
			if s.last.Mode != model.Proxy || s.last.State != Inactive {
				t.Errorf("at zero: %+v, want Inactive in Proxy mode", s.last)
			}
		})
	}
}

// TestFastScaleToZero: with the smallest window and the activator always
// in the path, a revision with no traffic has no pods within the grace
// period plus 15 s.
func TestFastScaleToZero(t *testing.T) {
	s := newSim(t, nil, map[string]string{tbcKey: "-1", windowKey: "6s"})
	s.mustReach(45*time.Second, "zero ready pods", func(d Decision) bool { return d.Replicas == 0 && s.ready == 0 })
}

// TestTargetBurstCapacity: -1 keeps the activator in the path whatever the
// load; 0 takes it out as soon as pods are ready; 7 (target 10 at 70%)
// keeps it while one pod serves concurrency 7 (10-7-7 < 0) and takes it
// out once two pods serve 12 (20-7-12 >= 0), then scales to zero within a
// minute with a 10 s window.
func TestTargetBurstCapacity(t *testing.T) {
	t.Run("-1", func(t *testing.T) {
		s := newSim(t, nil, map[string]string{targetKey: "10", utilizationKey: "70", tbcKey: "-1"})
		s.settle()
		s.load(50)
		s.until(3*time.Minute, func(d Decision) bool {
			if d.Mode != model.Proxy || d.ExcessBurstCapacity != -1 {
				t.Fatalf("at %v: %+v, want Proxy and excess burst capacity -1", s.elapsed(), d)
			}
			return false
		})
		if s.ready < 8 {
			t.Errorf("%d ready pods, want 8 for concurrency 50 at target 7", s.ready)
		}
	})
	t.Run("0", func(t *testing.T) {
		s := newSim(t, nil, map[string]string{targetKey: "10", utilizationKey: "70", tbcKey: "0", windowKey: "10s"})
		s.mustReach(time.Minute, "Serve", func(d Decision) bool { return d.Mode == model.Serve })
		if s.ready == 0 {
			t.Error("Serve mode with no ready pods")
		}
		s.mustReach(time.Minute, "zero ready pods", func(d Decision) bool { return s.ready == 0 })
	})
	t.Run("7", func(t *testing.T) {
		s := newSim(t, nil, map[string]string{targetKey: "10", utilizationKey: "70", tbcKey: "7", "autoscaling.knative.dev/panic-threshold-percentage": "200"})
		s.settle()
		s.load(7)
		s.run(2 * time.Minute)
		if s.last.Mode != model.Proxy || s.ready != 1 {
			t.Fatalf("at concurrency 7: %+v with %d ready, want Proxy with 1 pod", s.last, s.ready)
		}
		s.load(12)
		s.mustReach(2*time.Minute, "2 ready pods", func(Decision) bool { return s.ready == 2 })
		s.mustReach(2*time.Minute, "Serve", func(d Decision) bool { return d.Mode == model.Serve })
	})
}

// TestActivationScale: a revision at zero that gets a request scales
// straight to its activation scale, 5.
func TestActivationScale(t *testing.T) {
	s := newSim(t, nil, map[string]string{"autoscaling.knative.dev/activation-scale": "5"})
	s.mustReach(5*time.Minute, "zero replicas", func(d Decision) bool { return d.Replicas == 0 })
	s.load(1)
	took := s.mustReach(5*time.Minute, "desired scale 5", func(d Decision) bool { return d.DesiredScale == 5 })
	if took > time.Second || s.last.Replicas != 5 {
		t.Errorf("after %v: %+v, want 5 replicas at the request (a poke)", took, s.last)
	}
}

// TestInitialScale: a revision starts at its initial scale and, once that
// many pods were ready, scales below it without traffic; initial-scale 0
// (allowed by the cluster) starts with no pods and inactive, and scales
// from zero on the first request.
func TestInitialScale(t *testing.T) {
	t.Run("3", func(t *testing.T) {
		s := newSim(t, nil, map[string]string{"autoscaling.knative.dev/initial-scale": "3"})
		if s.last.Replicas != 3 {
			t.Fatalf("created with %d replicas, want 3", s.last.Replicas)
		}
		s.settle()
		if s.ready != 3 {
			t.Errorf("Active with %d ready pods, want the initial 3", s.ready)
		}
		s.mustReach(2*time.Minute, "fewer than 3 replicas", func(d Decision) bool { return d.Replicas < 3 })
	})
	t.Run("0", func(t *testing.T) {
		s := newSim(t, map[string]string{"allow-zero-initial-scale": "true"}, map[string]string{"autoscaling.knative.dev/initial-scale": "0"})
		if s.last.Replicas != 0 {
			t.Fatalf("created with %d replicas, want 0", s.last.Replicas)
		}
		s.run(10 * time.Second)
		if s.last.Replicas != 0 || s.last.State != Inactive || s.last.Mode != model.Proxy {
			t.Fatalf("without traffic: %+v, want 0 replicas, Inactive, Proxy", s.last)
		}
		s.load(1)
		s.mustReach(time.Second, "1 replica", func(d Decision) bool { return d.Replicas == 1 })
		s.mustReach(time.Minute, "Active", func(d Decision) bool { return d.State == Active })
	})
}

// TestMinScale: min-scale 4 brings 4 pods up at once and keeps them
// without traffic, for as long as the revision is reachable.
func TestMinScale(t *testing.T) {
	s := newSim(t, nil, map[string]string{"autoscaling.knative.dev/min-scale": "4"})
	s.run(TickInterval)
	if s.last.Replicas != 4 {
		t.Fatalf("at the first tick: %d replicas, want 4", s.last.Replicas)
	}
	s.settle()
	s.until(10*time.Minute, func(d Decision) bool {
		if d.Replicas != 4 || d.State != Active {
			t.Fatalf("at %v without traffic: %+v, want 4 replicas, Active", s.elapsed(), d)
		}
		return false
	})

	unreachable := s.rev.Settings()
	unreachable.Reachable = false
	s.rev.Update(s.now, unreachable)
	s.mustReach(2*time.Minute, "zero replicas once unreachable", func(d Decision) bool { return d.Replicas == 0 })
}

// TestMaxScale: max-scale caps the scale however high the load (seed 004:
// min 1, max 5, target 1, `hey -c 50` gives 5 pods).
func TestMaxScale(t *testing.T) {
	s := newSim(t, nil, map[string]string{"autoscaling.knative.dev/minScale": "1", "autoscaling.knative.dev/maxScale": "5", targetKey: "1"})
	s.settle()
	s.load(50)
	s.until(2*time.Minute, func(d Decision) bool {
		if d.Replicas > 5 {
			t.Fatalf("at %v: %d replicas, want at most 5", s.elapsed(), d.Replicas)
		}
		return false
	})
	if s.ready != 5 {
		t.Errorf("%d ready pods under load, want 5", s.ready)
	}
	s.load(0)
	s.run(5 * time.Minute)
	if s.last.Replicas != 1 {
		t.Errorf("%d replicas without traffic, want min-scale 1", s.last.Replicas)
	}
}

// TestScaleDownDelay: after the load drops, the scale holds for the
// scale-down delay before it follows.
func TestScaleDownDelay(t *testing.T) {
	for _, tc := range []struct {
		delay    string
		min, max time.Duration
	}{
		{delay: "0s", min: 0, max: 10 * time.Second},
		{delay: "20s", min: 20 * time.Second, max: 30 * time.Second},
	} {
		t.Run(tc.delay, func(t *testing.T) {
			s := newSim(t, nil, map[string]string{
				targetKey: "10", utilizationKey: "100", windowKey: "6s",
				"autoscaling.knative.dev/scale-down-delay": tc.delay,
				// No panic, whose hold would hide the delay.
				"autoscaling.knative.dev/panic-threshold-percentage": "1000",
			})
			s.settle()
			s.load(50)
			s.mustReach(time.Minute, "5 ready pods", func(Decision) bool { return s.ready == 5 })
			s.run(20 * time.Second)
			s.load(0)
			took := s.mustReach(time.Minute, "fewer than 5 replicas", func(d Decision) bool { return d.Replicas < 5 })
			if took < tc.min || took > tc.max {
				t.Errorf("scaled down %v after the load dropped, want within [%v, %v]", took, tc.min, tc.max)
			}
		})
	}
}

// TestSeedTargets: the steady-state pod counts the seeds' users expect.
func TestSeedTargets(t *testing.T) {
	tests := []struct {
		name        string
		ann         map[string]string
		concurrency float64
		want        int32
	}{
		{name: "target 10 at 100% with concurrency 50", ann: map[string]string{targetKey: "10", utilizationKey: "100"}, concurrency: 50, want: 5},
		{name: "target 1 at 100% with concurrency 4", ann: map[string]string{targetKey: "1", utilizationKey: "100"}, concurrency: 4, want: 4},
		// Knative's default utilization of 70% makes it ceil(4/0.7).
		{name: "target 1 (default 70%) with concurrency 4", ann: map[string]string{targetKey: "1"}, concurrency: 4, want: 6},
		{name: "target 10 at 70% with concurrency 50", ann: map[string]string{targetKey: "10", utilizationKey: "70"}, concurrency: 50, want: 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, nil, tc.ann)
			s.settle()
			s.load(tc.concurrency)
			s.run(3 * time.Minute)
			if s.last.Replicas != tc.want || s.ready != tc.want {
				t.Errorf("%d replicas, %d ready, want %d", s.last.Replicas, s.ready, tc.want)
			}
		})
	}
}

// TestScaleToZeroDisabled: with enable-scale-to-zero false an idle revision
// keeps one pod.
func TestScaleToZeroDisabled(t *testing.T) {
	s := newSim(t, map[string]string{"enable-scale-to-zero": "false"}, nil)
	s.settle()
	s.run(10 * time.Minute)
	if s.last.Replicas != 1 {
		t.Errorf("%d replicas after 10 idle minutes, want 1", s.last.Replicas)
	}
}

// TestActivationTimeout: pods that never become ready are given up after
// the progress deadline plus 30 s.
func TestActivationTimeout(t *testing.T) {
	s := newSimWith(t, settingsFor(t, nil, RevisionSpec{ProgressDeadline: 2 * time.Minute}))
	s.starting = nil // the pods never start
	s.startup = 24 * time.Hour
	took := s.mustReach(5*time.Minute, "zero replicas", func(d Decision) bool { return d.Replicas == 0 })
	if took <= 150*time.Second || took > 154*time.Second {
		t.Errorf("gave up after %v, want just after 150s", took)
	}
}
