package knative

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkReconcile1k is one round over 1,000 Services that have not
// changed: the steady cost of a round in Kubernetes mode, where every
// change of any object brings one.
func BenchmarkReconcile1k(b *testing.B) {
	docs := make([]string, 1000)
	ready := map[string]bool{}
	for i := range docs {
		docs[i] = service(fmt.Sprintf("svc-%04d", i), "ghcr.io/knative/helloworld-go")
		ready[fmt.Sprintf("default/svc-%04d-00001", i)] = true
	}
	objs := decode(b, strings.Join(docs, "\n---\n"))
	r := NewReconciler(time.Now)
	r.Reconcile(Input{Objects: objs, Ready: ready})
	b.ResetTimer()
	for b.Loop() {
		r.Reconcile(Input{Objects: objs, Ready: ready})
	}
}
