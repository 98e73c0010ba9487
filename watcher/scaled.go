package watcher

import (
	servingv1 "github.com/kgate/kgate/api/serving/v1"
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
		out = append(out, ScaledRevision(res, key, rev))
	}
	return out
}

// ScaledRevision is one of Scaled's: a result's revision rev, of key
// "namespace/name", as the autoscaler takes it.
func ScaledRevision(res *knative.Result, key string, rev *servingv1.Revision) loop.Revision {
	var cc int64
	if rev.Spec.ContainerConcurrency != nil {
		cc = *rev.Spec.ContainerConcurrency
	}
	return loop.Revision{Key: key, Spec: autoscale.RevisionSpec{
		Annotations:          rev.Annotations,
		ContainerConcurrency: cc,
		Unreachable:          !res.Routed[key],
	}, Service: rev.Labels[knative.LabelService], Configuration: rev.Labels[knative.LabelConfiguration]}
}
