package kube

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/watcher/knative"
)

// ACME HTTP-01 challenges from cert-manager, served as Knative's
// net-certmanager serves them.
//
// For each HTTP-01 challenge it solves, cert-manager creates an
// acme.cert-manager.io/v1 Challenge (spec.type HTTP-01, spec.dnsName,
// spec.token) and a solver Pod behind a Service it owns (controller owner
// reference to the Challenge, label LabelHTTP01Solver) that answers GET
// /.well-known/acme-challenge/<token>. Each round reads the HTTP-01
// Challenges and their solver Services from the caches (every Service is
// cached already: watch.go watches them all) and hands them to the
// reconciler (knative.Input.Challenges), which routes the token's path on
// the challenge's host to the Service's cluster IP, first, over plain HTTP
// whatever http-protocol says. A challenge whose host no Route or
// DomainMapping serves is logged once. Challenges are read as unstructured
// objects, and only when their CRD is installed when the controller starts.

// ChallengeGVK is cert-manager's ACME Challenge.
var ChallengeGVK = schema.GroupVersionKind{Group: "acme.cert-manager.io", Version: "v1", Kind: "Challenge"}

// LabelHTTP01Solver marks cert-manager's HTTP-01 solver Pods and Services.
const LabelHTTP01Solver = "acme.cert-manager.io/http01-solver"

// acmeState is what the controller knows of ACME challenges.
type acmeState struct {
	// watched says Challenges are watched (their CRD is installed and kgate
	// may list them); set before the caches start.
	watched bool
	// logged are the solvers (namespace/name) logged, with why: for a host
	// nothing serves, or without an address; each shows once.
	logged map[string]string
}

// readChallenges reads the HTTP-01 Challenges that have a solver Service
// with a cluster IP and a port, sorted by namespace and name; the others
// are logged once each (noSolver).
func (c *Controller) readChallenges(ctx context.Context, s *snapshot) error {
	out := []knative.Challenge{} // not nil: replaces the last round's
	s.challenges = out
	if !c.acme.watched {
		return nil
	}
	var list unstructured.UnstructuredList
	list.SetGroupVersionKind(ChallengeGVK.GroupVersion().WithKind("ChallengeList"))
	if err := c.client.List(ctx, &list); err != nil {
		return fmt.Errorf("listing ACME Challenges: %w", err)
	}
	var solvers corev1.ServiceList
	if len(list.Items) > 0 {
		if err := c.client.List(ctx, &solvers, client.HasLabels{LabelHTTP01Solver}); err != nil {
			return fmt.Errorf("listing the ACME solvers' Services: %w", err)
		}
	}
	byOwner := map[types.UID]*corev1.Service{}
	for i := range solvers.Items {
		s := &solvers.Items[i]
		for _, r := range s.OwnerReferences {
			if r.Controller != nil && *r.Controller && r.Kind == ChallengeGVK.Kind && strings.HasPrefix(r.APIVersion, ChallengeGVK.Group+"/") {
				byOwner[r.UID] = s
			}
		}
	}
	live := map[string]bool{}
	for i := range list.Items {
		ch := &list.Items[i]
		typ, _, _ := unstructured.NestedString(ch.Object, "spec", "type")
		if typ != "HTTP-01" || ch.GetDeletionTimestamp() != nil {
			continue
		}
		host, _, _ := unstructured.NestedString(ch.Object, "spec", "dnsName")
		token, _, _ := unstructured.NestedString(ch.Object, "spec", "token")
		if host == "" || token == "" {
			continue
		}
		svc := byOwner[ch.GetUID()]
		if svc == nil || svc.Namespace != ch.GetNamespace() {
			continue // not presented yet: cert-manager creates the Service next
		}
		live[svc.Namespace+"/"+svc.Name] = true
		ip := svc.Spec.ClusterIP
		if ip == "" || ip == corev1.ClusterIPNone || len(svc.Spec.Ports) == 0 {
			c.acmeOnce(svc.Namespace+"/"+svc.Name, "no address", "an ACME HTTP-01 solver Service without a cluster IP and port: not routed",
				"challenge", ch.GetNamespace()+"/"+ch.GetName(), "service", svc.Name)
			continue
		}
		out = append(out, knative.Challenge{
			Host: strings.ToLower(host), Path: translator.ACMEChallengePrefix + token,
			Namespace: svc.Namespace, Service: svc.Name,
			Port: uint32(svc.Spec.Ports[0].Port), Address: ip,
		})
	}
	for key := range c.acme.logged {
		if !live[key] {
			delete(c.acme.logged, key)
		}
	}
	slices.SortFunc(out, func(a, b knative.Challenge) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Service, b.Service))
	})
	s.challenges = out
	return nil
}

// acmeOnce logs msg once for a solver, while why stays the same.
func (c *Controller) acmeOnce(solver, why, msg string, args ...any) {
	if c.acme.logged == nil {
		c.acme.logged = map[string]string{}
	}
	if c.acme.logged[solver] == why {
		return
	}
	c.acme.logged[solver] = why
	c.log.Warn(msg, args...)
}

// unservedChallenges logs, once each, the challenges whose host no Route
// or DomainMapping serves this round: the reconciler leaves them out, and
// the ACME server's request for the token will not reach the solver.
func (c *Controller) unservedChallenges(challenges []knative.Challenge, res *knative.Result) {
	if len(challenges) == 0 {
		return
	}
	served := map[string]bool{}
	for _, svc := range res.Model.Services {
		for _, vh := range svc.VirtualHosts {
			served[vh.Host] = true
		}
	}
	for _, ch := range challenges {
		if served[ch.Host] {
			continue
		}
		c.acmeOnce(ch.Namespace+"/"+ch.Service, "unserved", "an ACME HTTP-01 challenge for a host no Route or DomainMapping serves: not routed",
			"host", ch.Host, "solver", ch.Namespace+"/"+ch.Service)
	}
}

// watchChallenges watches cert-manager's ACME Challenges when their CRD is
// installed and the controller may list them: every change asks for a
// round. (An informer that may not list would never sync, and the caches
// with it: a live list first says whether it can.)
func (c *Controller) watchChallenges(ctx context.Context, handler toolscache.ResourceEventHandler) {
	var probe unstructured.UnstructuredList
	probe.SetGroupVersionKind(ChallengeGVK.GroupVersion().WithKind("ChallengeList"))
	if err := c.mgr.GetAPIReader().List(ctx, &probe, client.Limit(1)); err != nil {
		switch {
		case isNoMatch(err):
			c.log.Info("cert-manager's ACME Challenge CRD is not installed: HTTP-01 challenges are not routed")
		default:
			c.log.Warn("not watching cert-manager's ACME Challenges (RBAC: challenges.acme.cert-manager.io get/list/watch): HTTP-01 challenges are not routed", "error", err)
		}
		return
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(ChallengeGVK)
	inf, err := c.mgr.GetCache().GetInformer(ctx, u)
	if err != nil {
		c.log.Warn("not watching cert-manager's ACME Challenges: HTTP-01 challenges are not routed", "error", err)
		return
	}
	if _, err := inf.AddEventHandler(handler); err != nil {
		c.log.Warn("not watching cert-manager's ACME Challenges: HTTP-01 challenges are not routed", "error", err)
		return
	}
	c.acme.watched = true
}
