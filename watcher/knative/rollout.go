package knative

import (
	"encoding/json"
	"math"
	"slices"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
)

// Gradual rollout, as Knative Serving's route reconciler does it
// (pkg/reconciler/route/traffic/rollout.go): when the latest ready revision
// of a latestRevision traffic target changes and a rollout duration is set
// (the serving.knative.dev/rollout-duration annotation on the Service or
// Route, else config-network's rollout-duration), the new revision first
// gets 1 % of the target's share, taken from the newest revision that had
// some. Once the gateways serve that split, the time it took (at least a
// second) sets the pace: the rest of the share moves in equal steps of at
// least 1 %, spaced so that the whole takes the duration. A revision that
// becomes the latest mid-rollout starts a rollout of its own from the
// split as it stands, draining the newest revisions first. The state lives
// in the Route's serving.knative.dev/rollout annotation (Knative keeps it
// on the Route's Ingress, which kgate has none of), so a restart resumes
// a rollout where it was; each result says when the next step is due
// (Result.NextStep) and the mode runs a pass then.

// AnnotationRollout is the annotation on a Route that records its rollouts
// while a rollout duration applies: Knative's JSON (configurations, their
// revisions' percents and step parameters, times in Unix nanoseconds).
const AnnotationRollout = "serving.knative.dev/rollout"

// ReasonRolloutInProgress is IngressReady's reason while traffic is still
// moving to a new revision, as Knative's.
const ReasonRolloutInProgress = "RolloutInProgress"

// messageRolloutInProgress is Knative's message for it.
const messageRolloutInProgress = "A gradual rollout of the latest revision(s) is in progress."

// rollout is the rollout state of one Route: one entry per latestRevision
// target with traffic, sorted by tag, then configuration.
type rollout struct {
	Configurations []*configRollout `json:"configurations,omitempty"`
}

// configRollout is the rollout of one latestRevision target (the untagged
// targets of one Configuration count as one, as Knative groups them).
type configRollout struct {
	ConfigurationName string `json:"configurationName"`
	Tag               string `json:"tag,omitempty"`
	// Percent is the target's share of the Route's traffic, which the
	// revisions' percents sum to.
	Percent int `json:"percent"`
	// Revisions are oldest first; the last is the latest ready revision,
	// the one traffic moves to. One revision: no rollout in progress.
	Revisions []revisionShare `json:"revisions,omitempty"`
	Step      stepParams      `json:"stepParams"`
}

// stepParams pace a rollout. Start is set when it begins; the rest once the
// gateways serve its first step (observeReady).
type stepParams struct {
	Start    int64 `json:"starttime,omitempty"`    // Unix ns
	Next     int64 `json:"nextStepTime,omitempty"` // Unix ns
	Duration int64 `json:"stepDuration,omitempty"` // ns between steps
	Size     int   `json:"stepSize,omitempty"`     // percent per step
}

// revisionShare is a revision's share of the Route's traffic.
type revisionShare struct {
	RevisionName string `json:"revisionName"`
	Percent      int    `json:"percent"`
}

// goalRollout is what the resolved targets ask for, with no rollout: each
// latestRevision target with traffic wholly on its latest ready revision.
// Targets restored from a status (no configurationName) take no part.
func goalRollout(targets []target) *rollout {
	ro := &rollout{}
	for _, t := range targets {
		p := int(percent(t.spec))
		if t.spec.RevisionName != "" || t.spec.ConfigurationName == "" || !latest(t.spec) || p == 0 {
			continue
		}
		if c := ro.find(t.spec.Tag, t.spec.ConfigurationName); c != nil {
			c.Percent += p
			c.Revisions[0].Percent += p
			continue
		}
		ro.Configurations = append(ro.Configurations, &configRollout{
			ConfigurationName: t.spec.ConfigurationName, Tag: t.spec.Tag, Percent: p,
			Revisions: []revisionShare{{RevisionName: t.revision, Percent: p}},
		})
	}
	sort.Slice(ro.Configurations, func(i, j int) bool {
		a, b := ro.Configurations[i], ro.Configurations[j]
		if a.Tag != b.Tag {
			return a.Tag < b.Tag
		}
		return a.ConfigurationName < b.ConfigurationName
	})
	return ro
}

func latest(t servingv1.TrafficTarget) bool { return t.LatestRevision != nil && *t.LatestRevision }

// find is the rollout of the target with this tag and Configuration.
func (ro *rollout) find(tag, cfg string) *configRollout {
	if ro == nil {
		return nil
	}
	for _, c := range ro.Configurations {
		if c.Tag == tag && c.ConfigurationName == cfg {
			return c
		}
	}
	return nil
}

// step moves from the previous state (prev; nil when there is none) towards
// goal at now: a target whose latest revision changed starts a rollout, one
// in progress takes its step when due. A target new to the Route, or with
// 1 %, gets its share at once. prev is left unchanged.
func (goal *rollout) step(prev *rollout, now time.Time) *rollout {
	if prev == nil {
		return goal
	}
	out := &rollout{}
	for _, g := range goal.Configurations {
		p := prev.find(g.Tag, g.ConfigurationName)
		if p == nil || g.Percent == 1 {
			out.Configurations = append(out.Configurations, g)
			continue
		}
		out.Configurations = append(out.Configurations, g.stepFrom(p.clone(), now))
	}
	return out
}

// stepFrom is the next state of one target from its previous one (a copy,
// which it changes).
func (goal *configRollout) stepFrom(prev *configRollout, now time.Time) *configRollout {
	prev.resize(goal.Percent)
	newest := goal.Revisions[0].RevisionName
	n := len(prev.Revisions)
	if n == 0 || prev.Revisions[n-1].RevisionName == newest {
		if n < 2 {
			return goal // no rollout
		}
		prev.ConfigurationName, prev.Tag = goal.ConfigurationName, goal.Tag
		if prev.Step.Size > 0 { // paced: observeReady has run
			prev.advance(now)
		}
		return prev
	}
	// A new latest revision: 1 % from the newest revision that has some.
	for i := n - 1; i >= 0; i-- {
		if prev.Revisions[i].Percent > 0 {
			prev.Revisions[i].Percent--
			break
		}
	}
	out := &configRollout{
		ConfigurationName: goal.ConfigurationName, Tag: goal.Tag, Percent: goal.Percent,
		Step: stepParams{Start: now.UnixNano()},
	}
	for _, r := range prev.Revisions {
		if r.Percent > 0 {
			out.Revisions = append(out.Revisions, r)
		}
	}
	out.Revisions = append(out.Revisions, revisionShare{RevisionName: newest, Percent: 1})
	return out
}

// resize follows a change of the target's percent: more goes to the newest
// revision, less comes from the oldest first.
func (c *configRollout) resize(goal int) {
	switch diff := goal - c.Percent; {
	case goal == 0:
		c.Revisions = nil
	case diff > 0 && len(c.Revisions) > 0:
		c.Revisions[len(c.Revisions)-1].Percent += diff
	case diff < 0:
		cut := -diff
		i := 0
		for cut > 0 && i < len(c.Revisions) {
			if c.Revisions[i].Percent > cut {
				c.Revisions[i].Percent -= cut
				break
			}
			cut -= c.Revisions[i].Percent
			i++
		}
		c.Revisions = c.Revisions[i:]
	}
	c.Percent = goal
}

// advance takes a step when one is due: Size percent moves to the newest
// revision from the ones before it, the newest of those first. The last
// step ends the rollout.
func (c *configRollout) advance(now time.Time) {
	n := len(c.Revisions)
	if n < 2 || now.UnixNano() < c.Step.Next {
		return
	}
	left, keep := c.Step.Size, n-1
	for i := n - 2; i >= 0 && left > 0; i-- {
		if c.Revisions[i].Percent > left {
			c.Revisions[i].Percent -= left
			break
		}
		left -= c.Revisions[i].Percent
		keep = i
	}
	newest := c.Revisions[n-1]
	newest.Percent = min(newest.Percent+c.Step.Size, c.Percent)
	c.Revisions = append(c.Revisions[:keep:keep], newest)
	if len(c.Revisions) > 1 {
		c.Step.Next = now.UnixNano() + c.Step.Duration
	} else {
		c.Step = stepParams{}
	}
}

// observeReady paces the rollouts whose first step the gateways now serve:
// the time that step took (at least a second, rounded up) is the shortest
// step; the rest of the duration is cut into equal steps of at least 1 %.
func (ro *rollout) observeReady(now time.Time, d time.Duration) {
	for _, c := range ro.Configurations {
		if c.Step.Duration != 0 || c.Step.Start == 0 || len(c.Revisions) < 2 {
			continue
		}
		took := math.Max(1, math.Ceil(time.Duration(now.UnixNano()-c.Step.Start).Seconds()))
		// What the first step took is spent already; at least one step.
		rest := math.Max(1, d.Seconds()-took)
		steps := math.Max(1, rest/took)
		// 1 % moved already; no step is smaller than 1 %.
		remaining := float64(c.Percent - 1)
		steps = math.Min(steps, remaining)
		every := time.Duration(rest / steps * float64(time.Second))
		c.Step.Size = int(math.Round(remaining / steps))
		c.Step.Duration = int64(every)
		c.Step.Next = now.UnixNano() + int64(every)
	}
}

// inProgress says whether traffic is still moving to a new revision.
func (ro *rollout) inProgress() bool {
	if ro == nil {
		return false
	}
	for _, c := range ro.Configurations {
		if len(c.Revisions) > 1 {
			return true
		}
	}
	return false
}

// next is when the earliest step is due; zero when none is.
func (ro *rollout) next() time.Time {
	var at int64
	for _, c := range ro.Configurations {
		if len(c.Revisions) > 1 && c.Step.Next > 0 && (at == 0 || c.Step.Next < at) {
			at = c.Step.Next
		}
	}
	if at == 0 {
		return time.Time{}
	}
	return time.Unix(0, at)
}

// split is how a resolved target's traffic goes: to its rollout's
// revisions while one is in progress (rolling), else to its own revision.
// done records the rollouts given out: the untagged targets of one
// Configuration share one, which the first of them carries (ok false for
// the others).
func (ro *rollout) split(t target, done map[*configRollout]bool) (shares []revisionShare, rolling, ok bool) {
	if t.spec.RevisionName == "" && t.spec.ConfigurationName != "" && latest(t.spec) {
		if c := ro.find(t.spec.Tag, t.spec.ConfigurationName); c != nil && len(c.Revisions) > 1 {
			if done[c] {
				return nil, true, false
			}
			done[c] = true
			return c.Revisions, true, true
		}
	}
	return []revisionShare{{RevisionName: t.revision, Percent: int(percent(t.spec))}}, false, true
}

func (c *configRollout) clone() *configRollout {
	out := *c
	out.Revisions = append([]revisionShare(nil), c.Revisions...)
	return &out
}

// String is the annotation's value.
func (ro *rollout) String() string {
	b, err := json.Marshal(ro)
	if err != nil {
		return "" // plain data always marshals
	}
	return string(b)
}

// parseRollout reads the annotation; nil when it is absent or does not add
// up (hand-edited, say): the Route then starts from what it serves.
func parseRollout(s string) *rollout {
	if s == "" {
		return nil
	}
	ro := &rollout{}
	if err := json.Unmarshal([]byte(s), ro); err != nil {
		return nil
	}
	for _, c := range ro.Configurations {
		if c == nil || c.Percent < 0 || c.Percent > 100 || c.Step.Size < 0 || c.Step.Size > c.Percent ||
			c.Step.Duration < 0 || c.Step.Start < 0 || c.Step.Next < 0 {
			return nil
		}
		sum := 0
		for _, r := range c.Revisions {
			// Each share is bounded first, so that the sum cannot wrap.
			if r.Percent < 0 || r.Percent > c.Percent {
				return nil
			}
			sum += r.Percent
		}
		if sum != c.Percent {
			return nil
		}
	}
	return ro
}

// rolloutDuration is the Route's rollout duration: its annotation (a
// Service's Route has the Service's), else config-network's.
func (rd *round) rolloutDuration(rt *servingv1.Route) time.Duration {
	if d := servingv1.RolloutDuration(rt.Annotations); d > 0 {
		return d
	}
	return rd.r.settings.Network.RolloutDuration
}

// rollout is the Route's rollout this round, from the resolved targets and
// the previous state. Unresolved traffic (resolved false: the targets are
// the last resolved ones) keeps the previous split as it stands. Without a
// rollout duration the goal applies at once; it is still remembered, so
// that a duration set later rolls from it.
func (rd *round) rollout(key string, rt *servingv1.Route, targets []target, resolved bool) *rollout {
	prev := rd.existing(rt.Namespace, rd.r.rollouts[key])
	if !resolved {
		if prev != nil {
			rd.r.rollouts[key] = prev
		}
		return prev
	}
	goal := goalRollout(targets)
	if rd.rolloutDuration(rt) <= 0 {
		rd.r.rollouts[key] = goal
		return goal
	}
	ro := goal.step(prev, rd.now)
	rd.r.rollouts[key] = ro
	return ro
}

// existing is ro without the rollouts that name a revision gone since
// (its Configuration deleted, say): those targets start afresh.
func (rd *round) existing(ns string, ro *rollout) *rollout {
	if ro == nil {
		return nil
	}
	out := &rollout{}
	for _, c := range ro.Configurations {
		if !slices.ContainsFunc(c.Revisions, func(r revisionShare) bool { return rd.r.revisions[ns+"/"+r.RevisionName] == nil }) {
			out.Configurations = append(out.Configurations, c)
		}
	}
	return out
}

// rolloutStatus finishes a served Route's rollout once the round knows
// whether the gateways serve it: a first step served paces the rollout,
// IngressReady is Unknown (RolloutInProgress) while traffic moves, the
// state goes into the Route's annotation, and the earliest next step into
// Result.NextStep.
func (rd *round) rolloutStatus(key string, e *routeEntry) {
	rt := e.out
	rt.Annotations = withoutKey(rt.Annotations, AnnotationRollout)
	ro := rd.r.rollouts[key]
	d := rd.rolloutDuration(rt)
	if ro == nil || d <= 0 {
		return
	}
	ingress, ok := e.cond[servingv1.ConditionIngressReady]
	if ok && ingress.status == corev1.ConditionTrue && e.model != nil && !e.lost {
		ro.observeReady(rd.now, d)
	}
	if ro.inProgress() && (!ok || ingress.status != corev1.ConditionFalse) {
		e.cond.set(condUnknown(servingv1.ConditionIngressReady, ReasonRolloutInProgress, messageRolloutInProgress))
	}
	rt.Annotations = withLabel(rt.Annotations, AnnotationRollout, ro.String())
	if c, ok := e.cond[servingv1.ConditionAllTrafficAssigned]; !ok || c.status != corev1.ConditionTrue {
		return // the split stands still until the traffic resolves again
	}
	if next := ro.next(); next.After(rd.now) && (rd.res.NextStep.IsZero() || next.Before(rd.res.NextStep)) {
		rd.res.NextStep = next
	}
}

// forgetRollouts drops the rollouts of Routes no longer served.
func (rd *round) forgetRollouts() {
	for k := range rd.r.rollouts {
		if e, ok := rd.routes[k]; !ok || !e.served {
			delete(rd.r.rollouts, k)
		}
	}
}

func int64Ptr(v int64) *int64 { return &v }
