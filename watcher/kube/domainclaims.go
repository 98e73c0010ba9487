package kube

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	networkingv1alpha1 "github.com/kgate/kgate/api/networking/v1alpha1"
	"github.com/kgate/kgate/watcher/knative"
)

// ClusterDomainClaims, as Knative's DomainMapping reconciler keeps them:
// the reconciler reads the claims in the cluster (a claim an administrator
// made delegates its domain), and with autocreate-cluster-domain-claims
// lists the claims its mappings hold that no ClusterDomainClaim makes yet
// (Result.DomainClaims). kgate creates those, labelled as its own, and
// deletes its own once no mapping holds them; an administrator's claims
// are never touched.

// publishDomainClaims creates the ClusterDomainClaims the mappings hold and
// deletes kgate's that none holds.
func (c *Controller) publishDomainClaims(s *snapshot, res *knative.Result) {
	wanted := make(map[string]string, len(res.DomainClaims))
	for _, dc := range res.DomainClaims {
		wanted[dc.Domain] = dc.Namespace
		if s.claims[dc.Domain] != nil {
			continue // a claim of another namespace: the mapping says DomainAlreadyClaimed
		}
		o := &networkingv1alpha1.ClusterDomainClaim{
			ObjectMeta: metav1.ObjectMeta{Name: dc.Domain, Labels: map[string]string{LabelManagedBy: managedBy}},
			Spec:       networkingv1alpha1.ClusterDomainClaimSpec{Namespace: dc.Namespace},
		}
		c.writes.put("ClusterDomainClaim/"+dc.Domain, func(ctx context.Context) error { return ignoreExists(c.client.Create(ctx, o)) })
	}
	for domain, o := range s.claims {
		if o.Labels[LabelManagedBy] != managedBy {
			continue
		}
		if ns, ok := wanted[domain]; !ok || ns != o.Spec.Namespace {
			c.deleteLater("ClusterDomainClaim/"+domain, o)
		}
	}
}
