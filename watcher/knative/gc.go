package knative

import (
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kgate/kgate/api/config"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/translator/model"
)

// Knative's routing state of a Revision, which its labeler keeps and its
// garbage collector reads: pending from creation until a Route first
// sends it traffic, active while one does (or names it, or follows its
// Configuration while it is the latest created), reserve once none does;
// the annotation says when the state last changed.
const (
	LabelRoutingState              = "serving.knative.dev/routingState"
	AnnotationRoutingStateModified = "serving.knative.dev/routingStateModified"

	RoutingStatePending = "pending"
	RoutingStateActive  = "active"
	RoutingStateReserve = "reserve"
)

// KeyNoGC set to "true" keeps a revision from garbage collection. Knative
// reads it as an annotation; kgate reads the label of that name too.
const KeyNoGC = "serving.knative.dev/no-gc"

// collect updates every revision's routing state and garbage-collects, per
// Configuration, the revisions config-gc lets go, as Knative's collector
// does: they leave the reconciler's memory (and so the Result, the model,
// kgate local's state store) and are listed in Result.Collected for the
// API server. It runs once the round's Routes and DomainMappings have
// their models.
//
// An incremental round (incremental.go) looks only at the Configurations
// of its units and of the revisions whose routing state moved, unless a
// revision has turned stale since the last round (NextCollection).
func (rd *round) collect() {
	r := rd.r
	moved := rd.routingStates()
	g := r.settings.GC
	if g.Off() {
		return
	}
	all := rd.dirty == nil || (!r.nextGC.IsZero() && !rd.now.Before(r.nextGC))
	if !all {
		for _, e := range rd.freshConfigs {
			moved[e.key] = true
		}
	}
	byConfig := map[string][]*revisionState{}
	for _, rev := range r.revisions {
		key := rev.namespace + "/" + rev.config
		if all || moved[key] {
			byConfig[key] = append(byConfig[key], rev)
		}
	}
	for key, revs := range byConfig {
		cs := r.configs[key]
		if e := rd.configs[key]; cs == nil || e == nil || !e.served {
			// Its Configuration is gone or not served this round: forget
			// decides, and a collection waits for a Configuration that
			// serves again.
			continue
		}
		for _, rev := range collectable(g, rd.now, cs, revs, rd.in.NoGC) {
			delete(r.revisions, rev.key())
			r.revsMoved = true
			rd.gone = append(rd.gone, goneRevision{namespace: rev.namespace, name: rev.name, config: rev.config})
			rd.res.Collected = append(rd.res.Collected, rev.key())
		}
		// No event marks a revision turning stale: a pass must run then.
		cs.nextGC = time.Time{}
		for _, rev := range revs {
			if r.revisions[rev.key()] == nil || rev.exempt(cs, rd.in.NoGC) {
				continue
			}
			if at, ok := staleAt(g, rev); ok && at.After(rd.now) && (cs.nextGC.IsZero() || at.Before(cs.nextGC)) {
				cs.nextGC = at
			}
		}
	}
	for _, cs := range r.configs {
		if at := cs.nextGC; at.After(rd.now) && (rd.res.NextCollection.IsZero() || at.Before(rd.res.NextCollection)) {
			rd.res.NextCollection = at
		}
	}
	r.nextGC = rd.res.NextCollection
	sort.Strings(rd.res.Collected)
}

// routingStates moves each revision's routing state with this round's
// traffic: active when routed, reserve when it was active and is routed no
// more; a pending revision stays pending until first routed. A revision
// with no state yet (restored from before kgate kept one) is active when
// routed now (a Route's traffic or status names it) and pending otherwise:
// as in Knative, a revision without the label is never collected, and only
// traffic leaving it makes it reserve. Each change stamps the time, from
// which retain-since-last-active-time counts.
//
// Which revisions are routed is counted per Route (activeOf, kept in
// Reconciler.active): an incremental round recounts its units' Routes and
// looks only at the revisions they and the DomainMappings name, now or
// before. It returns the Configurations ("namespace/name") of the
// revisions whose state moved.
func (rd *round) routingStates() (moved map[string]bool) {
	r := rd.r
	moved = map[string]bool{}
	mapped := map[string]bool{}
	for _, e := range rd.mappings {
		splitRevisions(e.model, mapped)
	}
	var look map[string]bool // nil: every revision
	if rd.dirty == nil {
		r.active = map[string]int{}
		for key, e := range rd.routes {
			e.active = rd.activeOf(key, e)
			for _, k := range e.active {
				r.active[k]++
			}
		}
	} else {
		look = maps.Clone(mapped)
		for k := range rd.prior.mapped {
			look[k] = true
		}
		for _, e := range rd.replaced {
			for _, k := range e.active {
				look[k] = true
				if r.active[k]--; r.active[k] <= 0 {
					delete(r.active, k)
				}
			}
		}
		for _, e := range rd.freshRoutes {
			e.active = rd.activeOf(e.key, e)
			for _, k := range e.active {
				look[k] = true
				r.active[k]++
			}
		}
	}
	rd.mapped = mapped
	move := func(key string, rev *revisionState) {
		want := rev.routing
		switch {
		case r.active[key] > 0 || mapped[key]:
			want = RoutingStateActive
		case rev.routing == RoutingStateActive:
			want = RoutingStateReserve
		case rev.routing == "":
			want = RoutingStatePending
		}
		if want != rev.routing {
			rev.routing, rev.routingModified = want, rd.now
			rev.fresh = true // its labels say it
			moved[rev.namespace+"/"+rev.config] = true
		}
	}
	if look == nil {
		for key, rev := range r.revisions {
			move(key, rev)
		}
		return moved
	}
	for key := range look {
		if rev := r.revisions[key]; rev != nil {
			move(key, rev)
		}
	}
	return moved
}

// activeOf are the revisions ("namespace/name") a Route refers to this
// round, as Knative's labeler counts them: every split of its model (0 %
// targets and a Route that lost its host included), the last traffic it
// serves while its own does not resolve, each revision its spec or status
// names, and the latest created and ready revisions of each Configuration
// it follows.
func (rd *round) activeOf(key string, e *routeEntry) []string {
	act := map[string]bool{}
	add := func(ns, name string) {
		if name != "" {
			act[ns+"/"+name] = true
		}
	}
	splitRevisions(e.model, act)
	ns := e.out.Namespace
	for _, ts := range [][]servingv1.TrafficTarget{e.out.Spec.Traffic, e.out.Status.Traffic} {
		for _, t := range ts {
			add(ns, t.RevisionName)
			if t.RevisionName == "" && t.ConfigurationName != "" {
				if cs := rd.r.configs[ns+"/"+t.ConfigurationName]; cs != nil {
					add(ns, cs.latestCreated)
					add(ns, cs.latestReady)
				}
			}
		}
	}
	for _, t := range rd.r.routed[key] {
		add(ns, t.revision)
		add(ns, t.upcoming)
	}
	return slices.Sorted(maps.Keys(act))
}

// splitRevisions adds the revision of every split of a model (nil: none).
func splitRevisions(svc *model.Service, to map[string]bool) {
	if svc == nil {
		return
	}
	for _, vh := range svc.VirtualHosts {
		for _, rt := range vh.Routes {
			for _, s := range rt.Splits {
				to[s.Revision] = true
			}
		}
	}
}

// collectable picks, among one Configuration's revisions, those config-gc
// lets go, as Knative's collector does. Nothing is collected while the
// Configuration has min-non-active-revisions revisions or fewer. The
// non-active ones (reserve, neither the latest created nor the latest
// ready, not marked no-gc, as held or live: noGC) are taken oldest
// last-active first: each stale one (older than both retain times that are
// not disabled) is collected while more than min-non-active-revisions
// remain; then, of those left, the oldest go until at most
// max-non-active-revisions remain.
func collectable(g config.GC, now time.Time, cs *configState, revs []*revisionState, noGC map[string]bool) []*revisionState {
	minKeep := g.MinNonActiveRevisions
	if int64(len(revs)) <= minKeep {
		return nil
	}
	var candidates []*revisionState
	for _, rev := range revs {
		if !rev.exempt(cs, noGC) {
			candidates = append(candidates, rev)
		}
	}
	if int64(len(candidates)) <= minKeep {
		return nil
	}
	sort.Slice(candidates, func(i, j int) bool {
		a, b := candidates[i], candidates[j]
		if ta, tb := a.lastActive(), b.lastActive(); !ta.Equal(tb) {
			return ta.Before(tb)
		}
		if !a.created.Equal(b.created) {
			return a.created.Before(b.created)
		}
		return a.name < b.name
	})
	canGo := len(candidates) - int(minKeep)
	var out, left []*revisionState
	for _, rev := range candidates {
		if len(out) < canGo && stale(g, now, rev) {
			out = append(out, rev)
			continue
		}
		left = append(left, rev)
	}
	if g.MaxNonActiveRevisions != config.GCDisabled && int64(len(left)) > g.MaxNonActiveRevisions {
		out = append(out, left[:int64(len(left))-g.MaxNonActiveRevisions]...)
	}
	return out
}

// exempt says whether a revision is never collected: routed or never
// routed yet, the latest created or ready of its Configuration, or marked
// no-gc: on what the reconciler holds of it, or on the live Revision
// (noGC, Input.NoGC: a mark put on after the revision was made or
// restored).
func (rev *revisionState) exempt(cs *configState, noGC map[string]bool) bool {
	return rev.routing != RoutingStateReserve || rev.name == cs.latestCreated || rev.name == cs.latestReady ||
		noGC[rev.key()] || HasNoGC(rev.labels, rev.annotations)
}

// HasNoGC says whether a Revision's labels or annotations mark it no-gc
// (KeyNoGC "true", in any case).
func HasNoGC(labels, annotations map[string]string) bool {
	return strings.EqualFold(annotations[KeyNoGC], "true") || strings.EqualFold(labels[KeyNoGC], "true")
}

// lastActive is when a Route last stopped sending the revision traffic
// (its routing state's last change), else its creation.
func (rev *revisionState) lastActive() time.Time {
	if !rev.routingModified.IsZero() {
		return rev.routingModified
	}
	return rev.created
}

// stale says whether a revision is older than both retain times that are
// not disabled; with both disabled, none is.
func stale(g config.GC, now time.Time, rev *revisionState) bool {
	create, active := g.RetainSinceCreateTime, g.RetainSinceLastActiveTime
	if create == config.GCDisabled && active == config.GCDisabled {
		return false
	}
	if create != config.GCDisabled && now.Sub(rev.created) < create {
		return false
	}
	if active != config.GCDisabled && now.Sub(rev.lastActive()) < active {
		return false
	}
	return true
}

// staleAt is when a revision turns stale, false when it never does (both
// retain times disabled).
func staleAt(g config.GC, rev *revisionState) (time.Time, bool) {
	create, active := g.RetainSinceCreateTime, g.RetainSinceLastActiveTime
	if create == config.GCDisabled && active == config.GCDisabled {
		return time.Time{}, false
	}
	var at time.Time
	if create != config.GCDisabled {
		at = rev.created.Add(create)
	}
	if active != config.GCDisabled {
		if t := rev.lastActive().Add(active); t.After(at) {
			at = t
		}
	}
	return at, true
}

// routingMeta puts the routing state on a Revision's labels and
// annotations, as Knative's labeler does.
func (rev *revisionState) routingMeta(labels, annotations map[string]string) {
	if rev.routing != "" {
		labels[LabelRoutingState] = rev.routing
	}
	if !rev.routingModified.IsZero() {
		annotations[AnnotationRoutingStateModified] = rev.routingModified.UTC().Format(time.RFC3339)
	}
}

// restoreRouting takes a stored Revision's routing state out of its labels
// and annotations (they are stamped again on output).
func (rev *revisionState) restoreRouting() {
	rev.routing = rev.labels[LabelRoutingState]
	if t, err := time.Parse(time.RFC3339, rev.annotations[AnnotationRoutingStateModified]); err == nil {
		rev.routingModified = t
	}
	rev.labels = withoutKey(rev.labels, LabelRoutingState)
	rev.annotations = withoutKey(rev.annotations, AnnotationRoutingStateModified)
}
