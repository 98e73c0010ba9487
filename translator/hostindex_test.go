package translator

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kgate/kgate/translator/model"
)

func claimant(key string, day int, hosts ...string) model.Service {
	ns, name, _ := strings.Cut(key, "/")
	svc := model.Service{Namespace: ns, Name: name, Created: time.Date(2024, 5, day, 0, 0, 0, 0, time.UTC)}
	for _, h := range hosts {
		svc.VirtualHosts = append(svc.VirtualHosts, model.VirtualHost{Host: h, Visibility: model.External})
	}
	return svc
}

func TestHostIndex(t *testing.T) {
	type step struct {
		set       *model.Service
		del       string
		changed   []string
		conflicts []Conflict
	}
	set := func(s model.Service) *model.Service { return &s }
	tests := []struct {
		name  string
		steps []step
	}{{
		name: "distinct hosts never conflict",
		steps: []step{
			{set: set(claimant("a/one", 1, "one.example.com")), changed: nil},
			{set: set(claimant("a/two", 2, "two.example.com")), changed: nil},
		},
	}, {
		name: "the later claimant of a host is in conflict",
		steps: []step{
			{set: set(claimant("a/first", 1, "h.example.com"))},
			{set: set(claimant("b/later", 2, "h.example.com", "own.example.com")),
				changed:   []string{"b/later"},
				conflicts: []Conflict{{Service: "b/later", Host: "h.example.com", Owner: "a/first"}}},
		},
	}, {
		name: "an earlier claimant arriving later takes the host",
		steps: []step{
			{set: set(claimant("b/later", 2, "h.example.com"))},
			{set: set(claimant("a/first", 1, "h.example.com")),
				changed:   []string{"b/later"},
				conflicts: []Conflict{{Service: "b/later", Host: "h.example.com", Owner: "a/first"}}},
		},
	}, {
		name: "deleting the owner moves the host to the next claimant",
		steps: []step{
			{set: set(claimant("a/first", 1, "h.example.com"))},
			{set: set(claimant("b/second", 2, "h.example.com")),
				changed:   []string{"b/second"},
				conflicts: []Conflict{{Service: "b/second", Host: "h.example.com", Owner: "a/first"}}},
			{set: set(claimant("c/third", 3, "h.example.com")),
				changed: []string{"c/third"},
				conflicts: []Conflict{
					{Service: "b/second", Host: "h.example.com", Owner: "a/first"},
					{Service: "c/third", Host: "h.example.com", Owner: "a/first"},
				}},
			{del: "a/first",
				changed:   []string{"b/second", "c/third"}, // b is free, c's owner changed
				conflicts: []Conflict{{Service: "c/third", Host: "h.example.com", Owner: "b/second"}}},
			{del: "b/second", changed: []string{"c/third"}},
		},
	}, {
		name: "equal creation times: the smaller key wins",
		steps: []step{
			{set: set(claimant("ns/zeta", 1, "h.example.com"))},
			{set: set(claimant("ns/alpha", 1, "h.example.com")),
				changed:   []string{"ns/zeta"},
				conflicts: []Conflict{{Service: "ns/zeta", Host: "h.example.com", Owner: "ns/alpha"}}},
		},
	}, {
		name: "dropping the contested host resolves the conflict",
		steps: []step{
			{set: set(claimant("a/first", 1, "h.example.com"))},
			{set: set(claimant("b/later", 2, "h.example.com", "own.example.com")),
				changed:   []string{"b/later"},
				conflicts: []Conflict{{Service: "b/later", Host: "h.example.com", Owner: "a/first"}}},
			{set: set(claimant("b/later", 2, "own.example.com")), changed: []string{"b/later"}},
		},
	}, {
		name: "a service in conflict still owns its other hosts",
		steps: []step{
			{set: set(claimant("a/first", 1, "x.example.com"))},
			{set: set(claimant("b/second", 2, "x.example.com", "y.example.com")),
				changed:   []string{"b/second"},
				conflicts: []Conflict{{Service: "b/second", Host: "x.example.com", Owner: "a/first"}}},
			{set: set(claimant("c/third", 3, "y.example.com")),
				changed: []string{"c/third"},
				conflicts: []Conflict{
					{Service: "b/second", Host: "x.example.com", Owner: "a/first"},
					{Service: "c/third", Host: "y.example.com", Owner: "b/second"},
				}},
		},
	}, {
		name: "deleting an unknown or conflict-free service changes nothing",
		steps: []step{
			{del: "x/unknown"},
			{set: set(claimant("a/one", 1, "one.example.com"))},
			{del: "a/one"},
		},
	}, {
		name: "deleting a service in conflict reports it",
		steps: []step{
			{set: set(claimant("a/first", 1, "h.example.com"))},
			{set: set(claimant("b/later", 2, "h.example.com")),
				changed:   []string{"b/later"},
				conflicts: []Conflict{{Service: "b/later", Host: "h.example.com", Owner: "a/first"}}},
			{del: "b/later", changed: []string{"b/later"}},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := NewHostIndex()
			for i, s := range tt.steps {
				var changed []string
				if s.set != nil {
					changed = x.Set(*s.set)
				} else {
					changed = x.Delete(s.del)
				}
				if !slices.Equal(changed, s.changed) {
					t.Errorf("step %d: changed = %q, want %q", i, changed, s.changed)
				}
				if got := x.Conflicts(); !slices.Equal(got, s.conflicts) {
					t.Errorf("step %d: conflicts = %+v, want %+v", i, got, s.conflicts)
				}
				for _, c := range s.conflicts {
					if got, ok := x.Conflict(c.Service); !ok || got != c {
						t.Errorf("step %d: Conflict(%q) = %+v, %v; want %+v", i, c.Service, got, ok, c)
					}
				}
			}
		})
	}
}
