package knative

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kgate/kgate/api/manifest"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
)

// Incremental rounds. At 10,000 Services a round over everything costs
// about a second, and a Kubernetes controller runs one per burst of
// events: a new Service would wait seconds for its host. So a round
// recomputes only the units something they read changed for, and carries
// the others over from the previous round, entries, outputs and problems
// as they were.
//
// A unit is what the round computes in one go: a Service with the
// Configuration and Route it derives, a standalone Configuration, or a
// standalone Route. A unit is dirty when
//   - its declaration changed (another object, file or line), appeared or
//     went;
//   - a revision it reads changed readiness or failure, or went: its
//     Configuration's unit, and the units whose Route names the revision or
//     Configuration (Reconciler.refs);
//   - its Route asked to be looked at again (routeEntry.recheck): a gateway
//     yet to apply it, a rollout in progress, a certificate being issued;
//   - a unit it reads is dirty: a Configuration's Routes, and the Service
//     of the name of a standalone Configuration or Route (NotOwned).
//
// What every unit reads makes the round a full one: the ConfigMaps, the
// ClusterDomainClaims, ACME challenges, the no-gc marks, a duplicate
// declaration, the base configuration, a restore, and Input.Full (the
// pipeline's periodic full round, the safety net). DomainMappings, few
// and reading Routes across the board, are recomputed in every round, and
// so are revision routing states and garbage collection, which are cheap.
// A unit carried over that a recomputed one takes a host from, or gives
// one back to, makes the round start again with that unit dirty too.

// unitOf is the unit key of a declared object: its object key.
func unitOf(o manifest.Object) string { return objectKey(o.Kind, o.Namespace, o.Name) }

// goneRevision is a revision a round removed, and its Configuration.
type goneRevision struct {
	namespace, name, config string
}

// declRef identifies a declaration: the object, and where it is declared.
type declRef struct {
	obj  any
	file string
	line int
}

// globalInputs are the inputs every unit reads.
type globalInputs struct {
	configMaps, claims []declRef
	noGC               map[string]bool
	// challenges and dups make a round full, and the round after too:
	// their effects span units.
	challenges, dups bool
}

func refsOf(objs []manifest.Object) []declRef {
	out := make([]declRef, 0, len(objs))
	for _, o := range objs {
		out = append(out, declRef{obj: o.Obj, file: o.File, line: o.Line})
	}
	return out
}

// fullRoundNeeded says whether a round with these global inputs must
// recompute every unit, given the last round's.
func (g globalInputs) fullRoundNeeded(last globalInputs) bool {
	return g.challenges || last.challenges || g.dups || last.dups ||
		!slices.Equal(g.configMaps, last.configMaps) || !slices.Equal(g.claims, last.claims) ||
		!maps.Equal(g.noGC, last.noGC)
}

// dirtyUnits decides which units this round recomputes (rd.dirty; nil:
// all), among the declared units (rd.units, which group fills). extra
// are units a previous attempt found must be (Reconcile); a third attempt
// is a full round.
func (rd *round) dirtyUnits(cms, claims []manifest.Object, extra map[string]bool, attempt int) {
	r := rd.r
	rd.prior = r.prior
	g := globalInputs{
		configMaps: refsOf(cms), claims: refsOf(claims), noGC: rd.in.NoGC,
		challenges: len(rd.in.Challenges) > 0, dups: len(rd.dups) > 0,
	}
	last := r.global
	r.global = g
	if rd.prior == nil || rd.in.Full || attempt >= 2 || g.fullRoundNeeded(last) {
		rd.dirty = nil
		return
	}
	dirty := map[string]bool{}
	var work []string
	mark := func(u string) {
		if !dirty[u] {
			dirty[u] = true
			work = append(work, u)
		}
	}
	for u, i := range rd.units {
		o := &rd.in.Objects[i]
		if at, ok := rd.prior.units[u]; !ok {
			mark(u)
		} else if p := &rd.prior.in.Objects[at]; p.Obj != o.Obj || p.File != o.File || p.Line != o.Line {
			mark(u)
		}
	}
	for u := range rd.prior.units {
		if _, ok := rd.units[u]; !ok {
			mark(u)
		}
	}
	for u := range extra {
		mark(u)
	}
	for _, e := range rd.prior.routes {
		if e.recheck {
			mark(e.unit)
		}
	}
	revision := func(ns, name, cfg string) {
		for u := range r.refs[objectKey(servingv1.KindRevision, ns, name)] {
			mark(u)
		}
		if e := rd.prior.configs[ns+"/"+cfg]; e != nil {
			mark(e.unit)
		}
	}
	for key, rev := range r.revisions {
		if rev.cond == nil || rev.inputsChanged(rd.in, key) {
			revision(rev.namespace, rev.name, rev.config)
		}
	}
	for _, g := range r.gone {
		revision(g.namespace, g.name, g.config)
	}
	for len(work) > 0 {
		u := work[len(work)-1]
		work = work[:len(work)-1]
		kind, ns, name, ok := splitObjectKey(u)
		if !ok {
			continue
		}
		if kind == servingv1.KindService || kind == servingv1.KindConfiguration {
			for v := range r.refs[objectKey(servingv1.KindConfiguration, ns, name)] {
				mark(v)
			}
		}
		if kind != servingv1.KindService {
			mark(objectKey(servingv1.KindService, ns, name)) // NotOwned
		}
	}
	rd.dirty = dirty
	rd.replaced = map[string]*routeEntry{}
	for u := range dirty {
		if _, ns, name, ok := splitObjectKey(u); ok {
			if e := rd.prior.routes[ns+"/"+name]; e != nil && e.unit == u {
				rd.replaced[e.key] = e
			}
		}
	}
}

// inputsChanged says whether what the round's input says of the revision
// (ready, failed and why) differs from what its conditions were set from.
func (rev *revisionState) inputsChanged(in Input, key string) bool {
	failure, failed := in.Failed[key]
	ready := !failed && (in.Ready == nil || in.Ready[key] || rev.atZero)
	return ready != rev.ready || failed != rev.failed || failure != rev.failure
}

// recompute says whether this round computes the unit (else it is
// carried over).
func (rd *round) recompute(unit string) bool { return rd.dirty == nil || rd.dirty[unit] }

// carry takes a clean unit's entries from the previous round, with its
// problems, and says whether it did; a dirty unit is left to compute.
func (rd *round) carry(d decl) bool {
	u := d.key
	if rd.recompute(u) {
		return false
	}
	p := rd.prior
	key := u[len(d.Kind)+1:] // "namespace/name"
	switch d.Kind {
	case servingv1.KindService:
		e := p.svcIdx[key]
		if e == nil {
			return false
		}
		rd.services = append(rd.services, e)
		rd.svcIdx[key] = e
		if c := p.configs[key]; c != nil && c.unit == u {
			rd.configs[key] = c
			rd.cfgOrder = append(rd.cfgOrder, c)
		}
		if rt := p.routes[key]; rt != nil && rt.unit == u {
			rd.routes[key] = rt
			rd.routeOrder = append(rd.routeOrder, rt)
		}
	case servingv1.KindConfiguration:
		c := p.configs[key]
		if c == nil || c.unit != u {
			return false
		}
		rd.configs[key] = c
		rd.cfgOrder = append(rd.cfgOrder, c)
	case servingv1.KindRoute:
		rt := p.routes[key]
		if rt == nil || rt.unit != u {
			return false
		}
		rd.routes[key] = rt
		rd.routeOrder = append(rd.routeOrder, rt)
	default:
		return false
	}
	rd.res.Problems = append(rd.res.Problems, p.problemsBy[u]...)
	return true
}

// remember keeps what the next round needs: the problems by unit, and
// which units read each Configuration and Revision.
func (rd *round) remember() {
	r := rd.r
	rd.problemsBy = map[string][]Problem{}
	for _, p := range rd.res.Problems {
		switch p.Kind {
		case servingv1.KindService, servingv1.KindConfiguration, servingv1.KindRoute:
			k := objectKey(p.Kind, p.Namespace, p.Name)
			rd.problemsBy[k] = append(rd.problemsBy[k], p)
		}
	}
	if rd.dirty == nil {
		r.refs = map[string]map[string]bool{}
	} else {
		for _, e := range rd.replaced {
			r.unref(e)
		}
	}
	for _, e := range rd.freshRoutes {
		e.refs = rd.refsOf(e.key, e)
		r.ref(e)
	}
	r.gone = rd.gone
}

func (r *Reconciler) ref(e *routeEntry) {
	for _, k := range e.refs {
		if r.refs[k] == nil {
			r.refs[k] = map[string]bool{}
		}
		r.refs[k][e.unit] = true
	}
}

func (r *Reconciler) unref(e *routeEntry) {
	for _, k := range e.refs {
		delete(r.refs[k], e.unit)
		if len(r.refs[k]) == 0 {
			delete(r.refs, k)
		}
	}
}

// refsOf lists the Configurations and Revisions (object keys) a Route
// reads: those its traffic names, and every revision it serves or last
// resolved, rolls out, or splits to.
func (rd *round) refsOf(key string, e *routeEntry) []string {
	ns := e.out.Namespace
	seen := map[string]bool{}
	var out []string
	add := func(kind, name string) {
		if name == "" {
			return
		}
		k := objectKey(kind, ns, name)
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for _, t := range e.out.Spec.Traffic {
		add(servingv1.KindConfiguration, t.ConfigurationName)
		add(servingv1.KindRevision, t.RevisionName)
	}
	for _, t := range rd.r.routed[key] {
		add(servingv1.KindRevision, t.revision)
		add(servingv1.KindRevision, t.upcoming)
	}
	if ro := rd.r.rollouts[key]; ro != nil {
		for _, c := range ro.Configurations {
			for _, s := range c.Revisions {
				add(servingv1.KindRevision, s.RevisionName)
			}
		}
	}
	if e.model != nil {
		for _, vh := range e.model.VirtualHosts {
			for _, rt := range vh.Routes {
				for _, s := range rt.Splits {
					if sns, name, ok := strings.Cut(s.Revision, "/"); ok && sns == ns {
						add(servingv1.KindRevision, name)
					}
				}
			}
		}
	}
	return out
}

// CompareKeys orders two objects as their "namespace/name" keys sort,
// without building the keys: the order of a Result's objects.
func CompareKeys(ans, aname, bns, bname string) int {
	if ans == bns {
		return strings.Compare(aname, bname)
	}
	// Different namespaces decide, as their first differing byte, or, when
	// one is a prefix of the other, as the '/' after the shorter one
	// against the longer one's next byte.
	n := min(len(ans), len(bns))
	if c := strings.Compare(ans[:n], bns[:n]); c != 0 {
		return c
	}
	if len(ans) < len(bns) {
		return cmp.Compare('/', bns[n])
	}
	return cmp.Compare(ans[n], '/')
}

// HasKey says whether objs, in a Result's order (CompareKeys), hold the
// object of key ("namespace/name").
func HasKey[T metav1.Object](objs []T, key string) bool {
	ns, name, _ := strings.Cut(key, "/")
	_, found := slices.BinarySearchFunc(objs, key, func(o T, _ string) int {
		return CompareKeys(o.GetNamespace(), o.GetName(), ns, name)
	})
	return found
}
