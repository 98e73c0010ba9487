package knative

import (
	"strconv"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
)

// AnnotationTemplateDigest is the annotation on every Revision kgate makes
// holding the digest of the declared template it was made from: the API
// server then keeps what a restarted controller needs to tell an unchanged
// template (same revision) from a changed one (a new revision).
const AnnotationTemplateDigest = "kgate.dev/template-digest"

// Stored is what the API server holds of the objects a Reconciler derives
// and reports on, as a restarted controller finds them.
type Stored struct {
	Services       []*servingv1.Service
	Configurations []*servingv1.Configuration
	Routes         []*servingv1.Route
	Revisions      []*servingv1.Revision
}

// Restore loads a fresh Reconciler with the state the API server stores,
// before its first Reconcile: the revision history (names, generations,
// templates' digests, frozen specs), each Configuration's latest created
// and ready revisions, and every condition's lastTransitionTime. A
// restarted controller then derives the same revisions and statuses, and
// the next revision of a Configuration gets the next number.
//
// A Revision not made by kgate (no AnnotationTemplateDigest) is kept, but
// no template is ever taken as its own.
func (r *Reconciler) Restore(s Stored) {
	for _, rev := range s.Revisions {
		cfg := rev.Labels[LabelConfiguration]
		if cfg == "" {
			continue // not a Configuration's: nothing derives it
		}
		gen, _ := strconv.ParseInt(rev.Labels[LabelConfigurationGeneration], 10, 64)
		st := &revisionState{
			namespace: rev.Namespace, name: rev.Name, config: cfg, service: rev.Labels[LabelService],
			digest: rev.Annotations[AnnotationTemplateDigest], generation: gen,
			created: rev.CreationTimestamp.Time,
			labels:  copyMap(rev.Labels), annotations: withoutKey(copyMap(rev.Annotations), AnnotationTemplateDigest),
			spec: clone(rev.Spec),
		}
		r.revisions[st.key()] = st
		key := rev.Namespace + "/" + cfg
		cs := r.configs[key]
		if cs == nil {
			cs = &configState{}
			r.configs[key] = cs
		}
		if gen >= cs.gen {
			cs.gen, cs.template, cs.latestCreated = gen, st.digest, st.name
		}
	}
	for _, c := range s.Configurations {
		cs := r.configs[c.Namespace+"/"+c.Name]
		if cs == nil {
			continue
		}
		if ready := c.Status.LatestReadyRevisionName; ready != "" && r.revisions[c.Namespace+"/"+ready] != nil {
			cs.latestReady = ready
		}
	}
	// The stored conditions stand for the previous round's: unchanged ones
	// keep their lastTransitionTime.
	r.last = &Result{Services: s.Services, Configurations: s.Configurations, Routes: s.Routes, Revisions: s.Revisions}
}
