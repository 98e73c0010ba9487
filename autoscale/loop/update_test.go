package loop

import (
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/autoscale"
)

// TestUpdateIsConfigureForWhatChanged drives two loops through the same
// history of revision sets: one is handed every set whole (Configure),
// the other only what changed since the last (Update). Each step they
// must decide, route and scale alike, and report the same invalid
// settings. The history adds and removes revisions, changes settings,
// hands one to another autoscaler and back, breaks and mends one, and
// changes config-autoscaler.
func TestUpdateIsConfigureForWhatChanged(t *testing.T) {
	rev := func(key string, kv ...string) Revision {
		return Revision{Key: key, Spec: autoscale.RevisionSpec{Annotations: annotations(kv...)}}
	}
	external := func(r Revision) Revision { r.External = true; return r }
	unreachable := func(r Revision) Revision { r.Spec.Unreachable = true; return r }
	base := config.DefaultAutoscaler()
	other := base
	other.InitialScale = 2
	other.TargetBurstCapacity = 0 // pods serve: the modes change
	steps := []struct {
		name string
		cfg  config.Autoscaler
		revs []Revision
	}{
		{"first revisions", base, []Revision{rev("default/a-00001"), rev("default/b-00001", "min-scale", "1")}},
		{"nothing changed", base, []Revision{rev("default/a-00001"), rev("default/b-00001", "min-scale", "1")}},
		{"one new, one changed", base, []Revision{rev("default/a-00001", "min-scale", "2"), rev("default/b-00001", "min-scale", "1"), rev("default/c-00001")}},
		{"one gone", base, []Revision{rev("default/a-00001", "min-scale", "2"), rev("default/c-00001")}},
		{"invalid settings", base, []Revision{rev("default/a-00001", "min-scale", "lots"), rev("default/c-00001")}},
		{"still invalid", base, []Revision{rev("default/a-00001", "min-scale", "lots"), rev("default/c-00001")}},
		{"mended", base, []Revision{rev("default/a-00001", "min-scale", "1"), rev("default/c-00001")}},
		{"handed to another autoscaler", base, []Revision{external(rev("default/a-00001", "min-scale", "1")), rev("default/c-00001")}},
		{"back from it", base, []Revision{rev("default/a-00001", "min-scale", "1"), unreachable(rev("default/c-00001"))}},
		{"config-autoscaler changed", other, []Revision{rev("default/a-00001", "min-scale", "1"), unreachable(rev("default/c-00001")), rev("default/d-00001")}},
		{"all gone", other, nil},
	}
	whole, part := newRig(t, activators), newRig(t, activators)
	last := map[string]Revision{}
	partInvalid := map[string]string{}
	for _, step := range steps {
		wholeErrs := whole.loop.Configure(whole.ctx, whole.now, step.cfg, step.revs)
		var set []Revision
		now := map[string]Revision{}
		for _, r := range step.revs {
			now[r.Key] = r
			if o, ok := last[r.Key]; !ok || !o.same(r) {
				set = append(set, r)
			}
		}
		var gone []string
		for key := range last {
			if _, ok := now[key]; !ok {
				gone = append(gone, key)
				delete(partInvalid, key)
			}
		}
		last = now
		partErrs := part.loop.Update(part.ctx, part.now, step.cfg, set, gone)
		for _, r := range set {
			delete(partInvalid, r.Key)
		}
		for key, err := range partErrs {
			partInvalid[key] = err.Error()
		}
		if step.cfg != base { // every revision configured again
			clear(partInvalid)
			for key, err := range partErrs {
				partInvalid[key] = err.Error()
			}
		}
		wholeInvalid := map[string]string{}
		for key, err := range wholeErrs {
			wholeInvalid[key] = err.Error()
		}
		if !maps.Equal(wholeInvalid, partInvalid) {
			t.Errorf("%s: invalid %v by Configure, %v by Update", step.name, wholeInvalid, partInvalid)
		}
		for range 3 {
			whole.run(2 * time.Second)
			part.run(2 * time.Second)
		}
		if w, p := whole.loop.Decisions(), part.loop.Decisions(); !reflect.DeepEqual(w, p) {
			t.Errorf("%s: decisions\n Configure %v\n Update    %v", step.name, w, p)
		}
		if w, p := whole.loop.Modes(), part.loop.Modes(); !maps.Equal(w, p) {
			t.Errorf("%s: modes\n Configure %v\n Update    %v", step.name, w, p)
		}
		for _, key := range slices.Sorted(maps.Keys(now)) {
			if w, p := whole.replicas(key), part.replicas(key); w != p {
				t.Errorf("%s: %s runs %d pods by Configure, %d by Update", step.name, key, w, p)
			}
		}
	}
}
