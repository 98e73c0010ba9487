package watcher

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kgate/kgate/api/manifest"
	"github.com/kgate/kgate/translator/model"
)

// nopRouting takes a model and drops it.
type nopRouting struct{}

func (nopRouting) UpdateRouting([]model.Service, []model.Revision) error { return nil }
func (nopRouting) PatchRouting([]model.Service, []string, []model.Revision, []string) error {
	return nil
}

// BenchmarkPass is a pass of the pipeline over N Services that have not
// changed, as Kubernetes mode submits them (the whole set, Replace): the
// reconciler's incremental round and what the pipeline does around it.
func BenchmarkPass(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			docs := make([]string, n)
			ready := make([]string, n)
			for i := range docs {
				docs[i] = service(fmt.Sprintf("svc-%05d", i), "ghcr.io/knative/helloworld-go")
				ready[i] = fmt.Sprintf("default/svc-%05d-00001", i)
			}
			objs, errs := manifest.Decode("bench.yaml", []byte(strings.Join(docs, "\n---\n")))
			if len(errs) > 0 {
				b.Fatal(errs)
			}
			p := New(Options{Routing: nopRouting{}, Deployed: true})
			p.Apply(Change{Replace: true, Objects: objs, Ready: ready})
			for b.Loop() {
				p.Apply(Change{Replace: true, Objects: objs})
			}
		})
	}
}
