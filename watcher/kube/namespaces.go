package kube

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	klabels "k8s.io/apimachinery/pkg/labels"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/watcher/knative"
)

// Namespace wildcard certificates, as Knative's namespace-certificate
// reconciler makes them (config-network's namespace-wildcard-cert-selector).
//
// For every Namespace whose labels the selector matches, with
// external-domain-tls on and config-certmanager's issuerRef set, kgate
// makes one cert-manager Certificate in that namespace, named as Knative
// names it: <namespace>.<default domain> (the wildcard's name without
// "*."), its Secret the same, owned by the Namespace. Its dnsNames are
// *.<namespace>.<domain> for the default domain (config-domain's entry
// without a selector), which Knative makes ahead of any Route, and for
// every other config-domain domain one of the namespace's Routes uses: a
// Route's external host h = <label>.<namespace>.<domain>. A Route in the
// namespace all of whose external hosts are so covered has no
// route-<name> Certificate: the wildcard's Secret serves its hosts and its
// CertificateProvisioned follows the wildcard. A host the single-label
// wildcard does not cover (a domain template that puts more labels before
// the namespace, or none) keeps the Route on its own Certificate. A
// DomainMapping keeps its own Certificate. A Namespace that stops matching
// loses its wildcard (kgate deletes only its own) and its Routes go back to
// theirs.

// readNamespaces lists the Namespaces.
func (c *Controller) readNamespaces(ctx context.Context, s *snapshot) error {
	var list corev1.NamespaceList
	if err := c.client.List(ctx, &list); err != nil {
		return fmt.Errorf("listing Namespaces: %w", err)
	}
	s.namespaces = make(map[string]*corev1.Namespace, len(list.Items))
	for i := range list.Items {
		s.namespaces[list.Items[i].Name] = &list.Items[i]
	}
	return nil
}

// selectedNamespaces are the Namespaces the selector matches (none for a
// nil selector), but those being deleted.
func selectedNamespaces(sel *metav1.LabelSelector, nss map[string]*corev1.Namespace) map[string]bool {
	if sel == nil {
		return nil
	}
	ls, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil // config-network's parser has refused it already
	}
	out := map[string]bool{}
	for name, n := range nss {
		if n.DeletionTimestamp == nil && ls.Matches(klabels.Set(n.Labels)) {
			out[name] = true
		}
	}
	return out
}

// wildcardName is the wildcard Certificate of a namespace: Knative's
// name, the wildcard DNS name without "*.".
func wildcardName(ns, domain string) string { return ns + "." + domain }

// wildcardCertificates adds to out (wantedCertificates') the wildcard
// Certificate of each selected namespace and takes out the external
// Certificates of the Routes it covers, which it returns (Route key → the
// wildcard's name).
func wildcardCertificates(res *knative.Result, issuer *IssuerRef, selected map[string]bool, out map[string]*routeCert) map[string]string {
	def := res.Config.Domain.For(nil)
	if issuer == nil || len(selected) == 0 || !res.Config.Network.ExternalTLS || def == "" {
		return nil
	}
	covered := map[string]string{}
	keys := slices.Sorted(maps.Keys(out))
	for _, ns := range slices.Sorted(maps.Keys(selected)) {
		name := wildcardName(ns, def)
		if out[ns+"/"+name] != nil {
			continue // a DomainMapping of that domain has the name: it keeps it, the Routes theirs
		}
		wc := &routeCert{kind: kindNamespace, owner: ns, ns: ns, name: name, issuer: issuer}
		dns := []string{"*." + name}
		for _, key := range keys {
			rc := out[key]
			if rc.kind != servingv1.KindRoute || rc.ns != ns || rc.name != certificateName(strings.TrimPrefix(rc.owner, ns+"/"), false) {
				continue
			}
			parents, ok := wildcardParents(rc.hosts, ns, res.Config.Domain.Domains)
			if !ok {
				continue
			}
			dns = append(dns, parents...)
			wc.hosts = append(wc.hosts, rc.hosts...)
			covered[rc.owner] = name
			delete(out, key)
		}
		slices.Sort(dns)
		wc.dns = slices.Compact(dns)
		out[ns+"/"+name] = wc
	}
	return covered
}

// wildcardParents are the wildcards covering hosts, when each is one label
// under <ns>.<a config-domain domain>.
func wildcardParents(hosts []string, ns string, domains map[string]map[string]string) ([]string, bool) {
	var out []string
	for _, h := range hosts {
		_, parent, ok := strings.Cut(h, ".")
		if !ok {
			return nil, false
		}
		d, ok := strings.CutPrefix(parent, ns+".")
		if _, known := domains[d]; !ok || !known {
			return nil, false
		}
		out = append(out, "*."+parent)
	}
	return out, len(out) > 0
}

// warnWildcard logs once per value why namespace-wildcard-cert-selector
// has no effect here, when it has none: cert-manager's Certificates are
// not watched, config-certmanager names no issuerRef, or external hosts are
// not served over TLS.
func (c *Controller) warnWildcard(cfg *knative.Result) {
	sel := cfg.Config.Network.NamespaceWildcardCertSelector
	var why string
	switch {
	case sel == nil:
	case !c.certManager:
		why = "cert-manager's Certificates are not watched (its CRDs are not installed, or RBAC forbids it)"
	case c.st.issuer[0] == nil:
		why = "config-certmanager names no issuerRef"
	case !cfg.Config.Network.ExternalTLS:
		why = "external-domain-tls is not Enabled"
	}
	if why == "" {
		c.st.wildcardWarned = ""
		return
	}
	if v := metav1.FormatLabelSelector(sel) + "\x00" + why; v != c.st.wildcardWarned {
		c.st.wildcardWarned = v
		c.log.Warn("config-network: namespace-wildcard-cert-selector has no effect: "+why, "configmap", "config-network", "key", "namespace-wildcard-cert-selector", "selector", metav1.FormatLabelSelector(sel))
	}
}
