package watcher

import (
	"github.com/kgate/kgate/autoscale"
	"github.com/kgate/kgate/autoscale/loop"
	"github.com/kgate/kgate/watcher/knative"
)

// Scaled are a result's revisions as the autoscaler takes them
// (loop.Configure), without those that cannot run: what each revision's
// annotations and containerConcurrency ask, and whether any Route sends it
// traffic.
func Scaled(res *knative.Result, cannotRun map[string]knative.Failure) []loop.Revision {
	out := make([]loop.Revision, 0, len(res.Revisions))
	for _, rev := range res.Revisions {
		key := rev.Namespace + "/" + rev.Name
		if _, failed := cannotRun[key]; failed {
			continue
		}
		var cc int64
		if rev.Spec.ContainerConcurrency != nil {
			cc = *rev.Spec.ContainerConcurrency
		}
		out = append(out, loop.Revision{Key: key, Spec: autoscale.RevisionSpec{
			Annotations:          rev.Annotations,
			ContainerConcurrency: cc,
			Unreachable:          !res.Routed[key],
		}, Service: rev.Labels[knative.LabelService], Configuration: rev.Labels[knative.LabelConfiguration]})
	}
	return out
}
