package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/watcher/knative"
)

// Revision garbage collection (config-gc) is the reconciler's decision
// (watcher/knative/gc.go); here it reaches the API server. A collected
// Revision is deleted, and its Deployment and private Service follow: prune
// deletes what a Revision no longer owns, and Kubernetes' garbage collector
// does the same from the owner references. The routing state the collection
// reads goes onto each Revision as Knative's labeler puts it, so that a
// restarted controller counts the retain times from where they were.
//
// A Revision marked serving.knative.dev/no-gc is never deleted, whenever
// the mark was put on (kubectl annotate or label after the controller
// started included, which Restore did not see): should a collection name
// one, it is kept here. noGCMarks are the live marks, for the reconciler
// (knative.Input.NoGC), so that it does not collect such a Revision at all.

// collectedRevisions are the garbage-collected Revisions still to delete,
// by key, with the UID each had when collected.
type collectedRevisions map[string]types.UID

// noteCollected records the Revisions the round's pass collected, in every
// round, one that defers its writes included: a collected revision is gone
// from the reconciler at once, and no later result names it again. One
// marked no-gc is not deleted.
func (c *Controller) noteCollected(s *snapshot, res *knative.Result) {
	if c.st.collected == nil {
		c.st.collected = collectedRevisions{}
	}
	for _, key := range res.Collected {
		o := s.revisions[key]
		if o == nil {
			continue
		}
		if noGC(o) {
			c.keptNoGC(key)
			continue
		}
		c.log.Info("deleting a garbage-collected revision (config-gc)", "revision", key)
		c.st.collected[key] = o.UID
	}
}

// keptNoGC logs that a collected Revision is kept for its no-gc mark; a
// revision is collected (and so logged) once.
func (c *Controller) keptNoGC(key string) {
	c.log.Warn("not deleting a garbage-collected revision: it is marked "+knative.KeyNoGC+"; the controller reads it again at its next start",
		"revision", key)
}

// noGC says whether a Revision is marked no-gc (KeyNoGC "true" as an
// annotation, as Knative reads it, or a label).
func noGC(o *servingv1.Revision) bool {
	return knative.HasNoGC(o.Labels, o.Annotations)
}

// noGCMarks are the live Revisions marked no-gc, by key (nil: none), for
// the reconciler (knative.Input.NoGC): a mark put on with kubectl after the
// controller started is not in what it restored. The pipeline does not
// carry them to the reconciler yet (watcher.Change has no such field).
func noGCMarks(s *snapshot) map[string]bool {
	var marks map[string]bool
	for key, o := range s.revisions {
		if noGC(o) {
			if marks == nil {
				marks = map[string]bool{}
			}
			marks[key] = true
		}
	}
	return marks
}

// deleteCollected deletes each collected Revision until the cache no
// longer holds it, so that a failed deletion is retried by the rounds that
// follow (a restart forgets the list, but the Revision, restored, is
// collected again). It returns the Revisions still being deleted, whose
// routing state is not written (publishRoutingStates).
func (c *Controller) deleteCollected(s *snapshot) collectedRevisions {
	for _, key := range slices.Sorted(maps.Keys(c.st.collected)) {
		o := s.revisions[key]
		if o == nil || o.UID != c.st.collected[key] {
			// Gone, or a new Revision of that name: not the collected one.
			delete(c.st.collected, key)
			continue
		}
		if noGC(o) {
			// Marked since it was collected: kept.
			delete(c.st.collected, key)
			c.keptNoGC(key)
			continue
		}
		c.deleteLater("Revision/"+key, o)
	}
	return maps.Clone(c.st.collected)
}

// publishRoutingStates patches the routing state label and its
// modification time onto the Revisions whose state changed, with a merge
// patch as Knative's labeler does (the status writes of the same Revision
// are not affected).
func (c *Controller) publishRoutingStates(s *snapshot, res *knative.Result, collected collectedRevisions) {
	for _, want := range res.Revisions {
		key := want.Namespace + "/" + want.Name
		have := s.revisions[key]
		if have == nil || collected[key] != "" {
			continue // created with its labels, or being deleted
		}
		state, modified := want.Labels[knative.LabelRoutingState], want.Annotations[knative.AnnotationRoutingStateModified]
		if have.Labels[knative.LabelRoutingState] == state && have.Annotations[knative.AnnotationRoutingStateModified] == modified {
			continue
		}
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"labels":      map[string]any{knative.LabelRoutingState: orNull(state)},
			"annotations": map[string]any{knative.AnnotationRoutingStateModified: orNull(modified)},
		}})
		if err != nil {
			c.log.Error("encoding a revision's routing state", "revision", key, "error", err)
			continue
		}
		target := have.DeepCopy()
		c.writes.put("RevisionRouting/"+key, func(ctx context.Context) error {
			err := c.client.Patch(ctx, target, client.RawPatch(types.MergePatchType, patch))
			if apierrors.IsNotFound(err) {
				return nil // deleted meanwhile: nothing to label
			}
			if err != nil {
				return fmt.Errorf("patching the routing state of revision %s: %w", key, err)
			}
			return nil
		})
	}
}

// orNull is v, or JSON null (which a merge patch reads as "remove") when v
// is empty.
func orNull(v string) any {
	if v == "" {
		return nil
	}
	return v
}
