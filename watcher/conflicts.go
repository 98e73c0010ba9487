package watcher

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/translator"
)

// MarkConflicts reports the translator's host conflicts on the losing Routes
// and their Services in res (the result of the latest Reconcile): the Route's
// IngressReady and Ready, and the Service's RoutesReady and Ready, become
// False with reason DomainConflict and a message naming the host and the
// Service that keeps it. The marks are part of the round's statuses, so a
// conflict that persists keeps its lastTransitionTime.
func (r *Reconciler) MarkConflicts(res *Result, conflicts []translator.Conflict) {
	msgs := map[string][]string{} // losing route key → messages
	for _, c := range conflicts {
		msgs[c.Service] = append(msgs[c.Service], fmt.Sprintf("host %q is already claimed by Service %q", c.Host, c.Owner))
	}
	joined := map[string]string{}
	for key, m := range msgs {
		sort.Strings(m)
		joined[key] = strings.Join(m, "; ")
	}
	r.markIngress(res, joined, corev1.ConditionFalse, ReasonDomainConflict, false)
}

// MarkNotApplied reports the Routes (by "namespace/name") that not every
// connected gateway has applied yet, with why: their IngressReady and Ready,
// and their Service's RoutesReady and Ready, become Unknown with reason
// IngressNotConfigured, as in Knative until every gateway serves a Route.
// A Route whose IngressReady is not True (a conflict, say) keeps its reason.
func (r *Reconciler) MarkNotApplied(res *Result, pending map[string]string) {
	r.markIngress(res, pending, corev1.ConditionUnknown, ReasonIngressNotConfigured, true)
}

// markIngress sets IngressReady of the Routes in msgs (and RoutesReady of
// their owning Services) to status with reason and the Route's message;
// onlyTrue leaves alone Routes whose IngressReady is not True.
func (r *Reconciler) markIngress(res *Result, msgs map[string]string, status corev1.ConditionStatus, reason string, onlyTrue bool) {
	if len(msgs) == 0 {
		return
	}
	now := r.roundTime
	if now.IsZero() {
		now = r.now()
	}
	owned := map[string]bool{}
	for _, rt := range res.Routes {
		key := rt.Namespace + "/" + rt.Name
		m, ok := msgs[key]
		if !ok {
			continue
		}
		c := unstamp(rt.Status.Conditions)
		if x, ok := c[servingv1.ConditionIngressReady]; onlyTrue && (!ok || x.status != corev1.ConditionTrue) {
			continue
		}
		if rt.Labels[LabelService] == rt.Name {
			owned[key] = true
		}
		c.set(cond{typ: servingv1.ConditionIngressReady, status: status, reason: reason, message: m})
		readyUnlessInvalid(c, servingv1.ConditionAllTrafficAssigned, servingv1.ConditionIngressReady)
		rt.Status.Conditions = c.stamp(r.prev[objectKey(servingv1.KindRoute, rt.Namespace, rt.Name)], now)
	}
	for _, svc := range res.Services {
		key := svc.Namespace + "/" + svc.Name
		m, ok := msgs[key]
		if !ok || !owned[key] {
			continue
		}
		c := unstamp(svc.Status.Conditions)
		c.set(cond{typ: servingv1.ConditionRoutesReady, status: status, reason: reason, message: m})
		readyUnlessInvalid(c, servingv1.ConditionConfigurationsReady, servingv1.ConditionRoutesReady)
		svc.Status.Conditions = c.stamp(r.prev[objectKey(servingv1.KindService, svc.Namespace, svc.Name)], now)
	}
}

// readyUnlessInvalid recomputes Ready, except that an invalid newest version
// keeps its own Ready reason.
func readyUnlessInvalid(c conds, deps ...servingv1.ConditionType) {
	if x, ok := c[servingv1.ConditionReady]; ok && x.status == corev1.ConditionFalse && x.reason == ReasonInvalidSpec {
		return
	}
	c.ready(deps...)
}
