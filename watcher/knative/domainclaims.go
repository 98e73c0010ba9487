package knative

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/kgate/kgate/api/manifest"
	networkingv1alpha1 "github.com/kgate/kgate/api/networking/v1alpha1"
	"github.com/kgate/kgate/api/serving/v1beta1"
)

// Who may map a domain, as Knative decides it: a ClusterDomainClaim (named
// after the domain, cluster-scoped) delegates the domain to one namespace,
// whose DomainMapping of it holds the domain. With
// autocreate-cluster-domain-claims a mapping of a domain no claim
// delegates claims it itself (Result.DomainClaims: Kubernetes mode creates
// the ClusterDomainClaim); when mappings in several namespaces want one
// such domain, the earliest created gets it, as the first of them
// reconciled would in Knative. Without autocreate, a mapping needs a claim.

// domainClaims reads the declared ClusterDomainClaims.
func (rd *round) domainClaims(objs []manifest.Object) {
	rd.claims = make(map[string]string, len(objs))
	for _, o := range objs {
		c := o.Obj.(*networkingv1alpha1.ClusterDomainClaim)
		if strings.TrimSpace(c.Spec.Namespace) == "" {
			rd.problem(o, "spec.namespace", "missing field(s): spec.namespace (the namespace whose DomainMappings may map "+o.Name+")")
			continue
		}
		rd.claims[o.Name] = c.Spec.Namespace
	}
}

// claimDomains decides which mappings hold their domains: a mapping that
// does not is marked unclaimed (DomainClaimed False) and not served.
func (rd *round) claimDomains() {
	autocreate := rd.r.settings.Network.Autocreate(rd.r.autocreate)
	wanting := map[string][]*dmEntry{} // undeclared domains, by domain
	for _, e := range rd.mappings {
		if !e.served {
			continue
		}
		dm := e.out
		switch ns, declared := rd.claims[dm.Name]; {
		case declared && ns != dm.Namespace:
			e.unclaimed = new(condFalse(v1beta1.ConditionDomainClaimed, v1beta1.ReasonDomainAlreadyClaimed, v1beta1.MessageDomainAlreadyClaimed))
		case declared:
		case !autocreate:
			e.unclaimed = new(condFalse(v1beta1.ConditionDomainClaimed, v1beta1.ReasonDomainClaimFailed, fmt.Sprintf(
				"no ClusterDomainClaim %s delegates the domain to namespace %s, and config-network's autocreate-cluster-domain-claims is false: a cluster administrator creates it",
				dm.Name, dm.Namespace)))
		default:
			wanting[dm.Name] = append(wanting[dm.Name], e)
		}
	}
	for _, domain := range slices.Sorted(maps.Keys(wanting)) {
		es := wanting[domain]
		slices.SortFunc(es, func(a, b *dmEntry) int {
			return cmp.Or(a.out.CreationTimestamp.Time.Compare(b.out.CreationTimestamp.Time), strings.Compare(a.out.Namespace, b.out.Namespace))
		})
		rd.res.DomainClaims = append(rd.res.DomainClaims, DomainClaim{Domain: domain, Namespace: es[0].out.Namespace})
		for _, e := range es[1:] {
			e.unclaimed = new(condFalse(v1beta1.ConditionDomainClaimed, v1beta1.ReasonDomainAlreadyClaimed, v1beta1.MessageDomainAlreadyClaimed))
		}
	}
}
