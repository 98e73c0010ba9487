package knative

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkReconcile is one round over N Services that have not changed:
// the steady cost of a round in Kubernetes mode, where every change of any
// object brings one. BenchmarkReconcile/services=1000 was
// BenchmarkReconcile1k.
func BenchmarkReconcile(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		docs := make([]string, n)
		ready := map[string]bool{}
		for i := range docs {
			docs[i] = service(fmt.Sprintf("svc-%05d", i), "ghcr.io/knative/helloworld-go")
			ready[fmt.Sprintf("default/svc-%05d-00001", i)] = true
		}
		objs := decode(b, strings.Join(docs, "\n---\n"))
		// The round a change of one Service brings: a declaration that
		// alternates between two versions, a new revision each time.
		alt := decode(b, service("svc-00000", "ghcr.io/knative/helloworld-go:2"))[0]
		for _, c := range []struct {
			name   string
			change func(i int) Input
		}{
			{"full", func(int) Input { return Input{Objects: objs, Ready: ready, Full: true} }},
			{"unchanged", func(int) Input { return Input{Objects: objs, Ready: ready} }},
			{"one-change", func(i int) Input {
				in := Input{Objects: slices.Clone(objs), Ready: ready}
				if i%2 == 0 {
					in.Objects[0] = alt
				}
				return in
			}},
		} {
			b.Run(fmt.Sprintf("services=%d/%s", n, c.name), func(b *testing.B) {
				r := NewReconciler(time.Now)
				r.Reconcile(Input{Objects: objs, Ready: ready})
				i := 0
				for b.Loop() {
					r.Reconcile(c.change(i))
					i++
				}
			})
		}
	}
}
