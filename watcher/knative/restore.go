package knative

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/api/serving/v1beta1"
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
	DomainMappings []*v1beta1.DomainMapping
	// Declared, when kept (kgate local), is what Reconciler.Declared
	// listed.
	Declared []Declared
}

// Restore loads a fresh Reconciler with the state the API server stores,
// before its first Reconcile: the revision history (names, generations,
// templates' digests, frozen specs), each Configuration's latest created
// and ready revisions, every condition's lastTransitionTime, and each
// Route's gradual rollout (its AnnotationRollout). A restarted controller
// then derives the same revisions and statuses, the next revision of a
// Configuration gets the next number, and a rollout goes on where it was.
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
		st.restoreRouting()
		r.revisions[st.key()] = st
		r.revsMoved = true
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
	// Each Route serves its last traffic until its own resolves again (a
	// pinned revision not ready yet after the restart, say).
	for _, rt := range s.Routes {
		// A rollout in progress goes on from where it was.
		if ro := parseRollout(rt.Annotations[AnnotationRollout]); ro != nil {
			r.rollouts[rt.Namespace+"/"+rt.Name] = ro
		}
		if rt.Status.Traffic == nil {
			continue
		}
		ts := make([]target, 0, len(rt.Status.Traffic))
		for _, t := range rt.Status.Traffic {
			ts = append(ts, target{spec: t, revision: t.RevisionName})
		}
		r.routed[rt.Namespace+"/"+rt.Name] = ts
	}
	r.restoreDeclared(s.Declared)
	// The stored conditions stand for the previous round's: unchanged ones
	// keep their lastTransitionTime.
	r.last = &Result{Services: s.Services, Configurations: s.Configurations, Routes: s.Routes, Revisions: s.Revisions, DomainMappings: s.DomainMappings}
}

// Declared is what a Reconciler remembers of one declared object beyond its
// Result: when it was first seen, the spec its generation counts changes
// of, and its last valid declared version. In Kubernetes mode the API
// server keeps all three (creationTimestamp, metadata.generation, and the
// object, which never holds an invalid version for long); kgate local has
// no API server and keeps them in its state store, so that a restart keeps
// generations, creation times and the version served while the file holds
// an invalid one.
type Declared struct {
	Kind, Namespace, Name string
	// Seen is when the object was first seen (zero: it had its own
	// creationTimestamp).
	Seen time.Time `json:",omitzero"`
	// Generation and Spec: the object's generation and the JSON of the
	// spec it was counted on (0 and "" when never served).
	Generation int64  `json:",omitempty"`
	Spec       string `json:",omitempty"`
	// Good is the last valid declared version, as JSON; nil when there is
	// none.
	Good json.RawMessage `json:",omitempty"`
}

// Declared lists what the Reconciler remembers of the declared objects, by
// key, for Stored.Declared.
func (r *Reconciler) Declared() []Declared {
	keys := map[string]bool{}
	for k := range r.seen {
		keys[k] = true
	}
	for k := range r.gens {
		keys[k] = true
	}
	for k := range r.good {
		keys[k] = true
	}
	out := make([]Declared, 0, len(keys))
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		kind, ns, name, ok := splitObjectKey(k)
		if !ok {
			continue
		}
		d := Declared{Kind: kind, Namespace: ns, Name: name, Seen: r.seen[k]}
		if g := r.gens[k]; g != nil {
			d.Generation, d.Spec = g.n, g.spec
		}
		if g, ok := r.good[k]; ok {
			if b, err := json.Marshal(g); err == nil {
				d.Good = b
			}
		}
		out = append(out, d)
	}
	return out
}

// restoreDeclared loads what Declared listed. A last valid version that no
// longer decodes (a kind kgate stopped reading) is dropped.
func (r *Reconciler) restoreDeclared(ds []Declared) {
	for _, d := range ds {
		k := objectKey(d.Kind, d.Namespace, d.Name)
		if !d.Seen.IsZero() {
			r.seen[k] = d.Seen
		}
		if d.Generation > 0 {
			r.gens[k] = &generation{n: d.Generation, spec: d.Spec}
		}
		if len(d.Good) == 0 {
			continue
		}
		var good any
		switch d.Kind {
		case servingv1.KindService:
			good = decodeAs[servingv1.Service](d.Good)
		case servingv1.KindConfiguration:
			good = decodeAs[servingv1.Configuration](d.Good)
		case servingv1.KindRoute:
			good = decodeAs[servingv1.Route](d.Good)
		case v1beta1.KindDomainMapping:
			good = decodeAs[v1beta1.DomainMapping](d.Good)
		}
		if good != nil {
			r.good[k] = good
		}
	}
}

// decodeAs decodes data as a *T, nil when it does not decode.
func decodeAs[T any](data []byte) any {
	v := new(T)
	if err := json.Unmarshal(data, v); err != nil {
		return nil
	}
	return v
}

// splitObjectKey undoes objectKey.
func splitObjectKey(k string) (kind, ns, name string, ok bool) {
	parts := strings.SplitN(k, "/", 3)
	if len(parts) != 3 {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}
