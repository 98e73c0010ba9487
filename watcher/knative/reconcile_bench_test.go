package knative

import (
	"fmt"
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
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			docs := make([]string, n)
			ready := map[string]bool{}
			for i := range docs {
				docs[i] = service(fmt.Sprintf("svc-%05d", i), "ghcr.io/knative/helloworld-go")
				ready[fmt.Sprintf("default/svc-%05d-00001", i)] = true
			}
			objs := decode(b, strings.Join(docs, "\n---\n"))
			r := NewReconciler(time.Now)
			r.Reconcile(Input{Objects: objs, Ready: ready})
			for b.Loop() {
				r.Reconcile(Input{Objects: objs, Ready: ready})
			}
		})
	}
}
