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
	if len(msgs) == 0 {
		return
	}
	now := r.roundTime
	if now.IsZero() {
		now = r.now()
	}
	for key, m := range msgs {
		sort.Strings(m)
		msgs[key] = m
	}
	owned := map[string]bool{}
	for _, rt := range res.Routes {
		key := rt.Namespace + "/" + rt.Name
		m, ok := msgs[key]
		if !ok {
			continue
		}
		if rt.Labels[LabelService] == rt.Name {
			owned[key] = true
		}
		c := unstamp(rt.Status.Conditions)
		c.set(condFalse(servingv1.ConditionIngressReady, ReasonDomainConflict, strings.Join(m, "; ")))
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
		c.set(condFalse(servingv1.ConditionRoutesReady, ReasonDomainConflict, strings.Join(m, "; ")))
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
