package loop

import (
	"testing"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/autoscale"
)

// StartsAtZero foretells Configure's first decision for a new revision,
// case by case: the controller counts a revision Ready on its word, so it
// must never say zero where the loop then starts pods.
func TestStartsAtZeroForetellsTheFirstDecision(t *testing.T) {
	allowZero := config.DefaultAutoscaler()
	allowZero.AllowZeroInitialScale = true
	zeroByDefault := allowZero
	zeroByDefault.InitialScale = 0
	for _, tc := range []struct {
		name     string
		cfg      config.Autoscaler
		ann      map[string]string
		cc       int64
		external bool
		want     bool
	}{
		{"Knative's defaults: one pod", config.DefaultAutoscaler(), nil, 0, false, false},
		{"initial-scale 0, allowed", allowZero, annotations("initial-scale", "0"), 0, false, true},
		{"initial-scale 0 by config-autoscaler", zeroByDefault, nil, 0, false, true},
		{"initial-scale 0, containerConcurrency 1", allowZero, annotations("initial-scale", "0"), 1, false, true},
		{"initial-scale 0 with min-scale 2", allowZero, annotations("initial-scale", "0", "min-scale", "2"), 0, false, false},
		{"initial-scale 0, not allowed", config.DefaultAutoscaler(), annotations("initial-scale", "0"), 0, false, false},
		{"initial-scale 3", allowZero, annotations("initial-scale", "3"), 0, false, false},
		{"invalid settings", allowZero, annotations("initial-scale", "-1"), 0, false, false},
		{"another autoscaler's (HPA class)", allowZero, annotations("initial-scale", "0"), 0, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rev := Revision{Key: "default/hello-00001", Service: "hello", Configuration: "hello", External: tc.external,
				Spec: autoscale.RevisionSpec{Annotations: tc.ann, ContainerConcurrency: tc.cc}}
			r := newRig(t, activators)
			got := StartsAtZero(r.now, tc.cfg, rev)
			if got != tc.want {
				t.Errorf("StartsAtZero = %v, want %v", got, tc.want)
			}
			r.configure(tc.cfg, rev)
			d, decided := r.loop.Decisions()[rev.Key]
			if atZero := decided && d.Replicas == 0; got && !atZero {
				t.Errorf("StartsAtZero said zero, the loop decided %+v (decided: %v)", d, decided)
			}
			if decided && d.Replicas == 0 && !got {
				t.Errorf("the loop started it at zero, StartsAtZero said otherwise")
			}
		})
	}
}
