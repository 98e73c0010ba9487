package kube

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/api/serving/v1beta1"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/watcher/knative"
)

// Certificates from cert-manager, as Knative's net-certmanager makes them.
//
// When config-certmanager (in the system namespace) names an issuer in
// issuerRef, every Route with external hosts served over TLS gets a
// cert-manager.io/v1 Certificate in its namespace, route-<route name>,
// for those hosts (the main one and the tags'), whose Secret has the same
// name; with clusterLocalIssuerRef, its cluster-local hosts served over TLS
// (cluster-local-domain-tls) get local-route-<route name>; the Route owns it, so it goes with the Route, and the labels
// LabelManagedBy=kgate and LabelRoute say whose it is. Once cert-manager
// marks it Ready, its Secret is the certificate of those hosts (certs.go
// watches it); until then they have the default certificate, if any.
// Certificates are read and written as unstructured objects: kgate does not
// link cert-manager, and runs without it (its CRDs absent, no Certificates
// are watched).

// ConfigCertManager is the ConfigMap that names the issuer.
const ConfigCertManager = "config-certmanager"

// LabelManagedBy marks the Certificates kgate manages; only those are
// updated or deleted.
const LabelManagedBy = "app.kubernetes.io/managed-by"

// managedBy is LabelManagedBy's value.
const managedBy = "kgate"

// CertificateGVK is cert-manager's Certificate.
var CertificateGVK = schema.GroupVersionKind{Group: "cert-manager.io", Version: "v1", Kind: "Certificate"}

// IssuerRef is config-certmanager's issuerRef, as cert-manager takes it.
type IssuerRef struct {
	Name  string `json:"name"`
	Kind  string `json:"kind,omitempty"`
	Group string `json:"group,omitempty"`
}

// ParseIssuerRef parses config-certmanager's issuerRef: YAML with name,
// kind (Issuer, the default, or ClusterIssuer) and group (cert-manager.io,
// the default).
func ParseIssuerRef(s string) (IssuerRef, error) {
	var r IssuerRef
	if err := yaml.UnmarshalStrict([]byte(s), &r); err != nil {
		return IssuerRef{}, fmt.Errorf("not an issuer reference (name, kind, group): %w", err)
	}
	if r.Name == "" {
		return IssuerRef{}, fmt.Errorf("no name")
	}
	if r.Kind == "" {
		r.Kind = "Issuer"
	}
	if r.Group == "" {
		r.Group = CertificateGVK.Group
	}
	if r.Group == CertificateGVK.Group && r.Kind != "Issuer" && r.Kind != "ClusterIssuer" {
		return IssuerRef{}, fmt.Errorf("kind %q: want Issuer or ClusterIssuer", r.Kind)
	}
	return r, nil
}

// issuerKeys are config-certmanager's keys: the issuer of external hosts'
// Certificates, and of cluster-local hosts' (with cluster-local-domain-tls).
var issuerKeys = [2]string{"issuerRef", "clusterLocalIssuerRef"}

// issuers reads config-certmanager's issuerRef and clusterLocalIssuerRef:
// the issuers to use, nil for none. A value that does not parse is logged
// (once, naming its key) and the last good one kept.
func (c *Controller) issuers(s *snapshot) [2]*IssuerRef {
	var data map[string]string
	for _, cm := range s.configMaps {
		if cm.Name == ConfigCertManager {
			data = cm.Data
		}
	}
	for i, key := range issuerKeys {
		v := strings.TrimSpace(data[key])
		if v == "" {
			c.st.issuer[i], c.st.issuerBad[i] = nil, ""
			continue
		}
		r, err := ParseIssuerRef(v)
		if err != nil {
			if c.st.issuerBad[i] != v {
				c.st.issuerBad[i] = v
				c.log.Error("config-certmanager: a bad "+key+", the last good one is kept", "key", key, "error", err)
			}
			continue
		}
		c.st.issuer[i], c.st.issuerBad[i] = &r, ""
	}
	return c.st.issuer
}

// certificateName is the Certificate of a Route's external hosts, and
// (local) of its cluster-local hosts.
func certificateName(route string, local bool) string {
	if local {
		return "local-route-" + route // no Route's external name can be this
	}
	return "route-" + route
}

// LabelDomainMapping names the DomainMapping a Certificate is made for.
const LabelDomainMapping = "serving.knative.dev/domainMapping"

// The kinds of object a Certificate is made for (routeCert.kind).
const kindNamespace = "Namespace"

// routeCert is a Certificate an object needs: a Route's, a DomainMapping's
// or a selected Namespace's wildcard (namespaces.go).
type routeCert struct {
	kind  string // servingv1.KindRoute, v1beta1.KindDomainMapping or kindNamespace
	owner string // the owner's key: namespace/name, a Namespace's name
	ns    string
	name  string
	// hosts are the hosts the Certificate's Secret serves, sorted; dns its
	// spec.dnsNames (nil: hosts), which a wildcard Certificate's differ
	// from.
	hosts  []string
	dns    []string
	issuer *IssuerRef
}

// dnsNames are the Certificate's spec.dnsNames.
func (rc *routeCert) dnsNames() []string {
	if rc.dns != nil {
		return rc.dns
	}
	return rc.hosts
}

// wantedCertificates are the Certificates the Routes and DomainMappings
// need, by namespace/name: for each Route, one of its external hosts
// served over TLS when an external issuer is named, one of its
// cluster-local hosts served over TLS when a cluster-local issuer is; for
// each DomainMapping without spec.tls that holds its domain and serves it
// over TLS, one named after the domain (with the external issuer); and one
// wildcard Certificate per selected namespace (namespaces.go: selected are
// the Namespaces namespace-wildcard-cert-selector matches), which replaces
// the external Certificate of each Route in it whose external hosts it all
// covers. wildcard says which Routes those are (Route key → the wildcard
// Certificate's name).
func wantedCertificates(res *knative.Result, issuers [2]*IssuerRef, selected map[string]bool) (out map[string]*routeCert, wildcard map[string]string) {
	out = map[string]*routeCert{}
	if issuers[0] == nil && issuers[1] == nil {
		return out, nil // no issuer, no Certificate: not a walk over every host each round
	}
	routes := map[string]bool{}
	for _, rt := range res.Routes {
		routes[rt.Namespace+"/"+rt.Name] = true
	}
	mappings := map[string]*v1beta1.DomainMapping{}
	for _, dm := range res.DomainMappings {
		mappings[dm.Namespace+"/"+dm.Name] = dm
	}
	add := func(kind, owner, ns, name, host string, issuer *IssuerRef) {
		rc := out[ns+"/"+name]
		if rc == nil {
			rc = &routeCert{kind: kind, owner: owner, ns: ns, name: name, issuer: issuer}
			out[ns+"/"+name] = rc
		}
		rc.hosts = append(rc.hosts, host)
	}
	for _, svc := range res.Model.Services {
		if !routes[svc.Key()] {
			// A DomainMapping's: a Certificate of its domain unless it
			// brings its own (spec.tls) or lost the domain.
			dm := mappings[svc.Key()]
			if dm == nil || dm.Spec.TLS != nil || !claimed(dm) || issuers[0] == nil {
				continue
			}
			for _, vh := range svc.VirtualHosts {
				if vh.TLS && vh.Visibility == model.External {
					add(v1beta1.KindDomainMapping, svc.Key(), svc.Namespace, dm.Name, vh.Host, issuers[0])
				}
			}
			continue
		}
		for _, vh := range svc.VirtualHosts {
			local := vh.Visibility != model.External
			issuer := issuers[0]
			if local {
				issuer = issuers[1]
			}
			if !vh.TLS || issuer == nil {
				continue
			}
			add(servingv1.KindRoute, svc.Key(), svc.Namespace, certificateName(svc.Name, local), vh.Host, issuer)
		}
	}
	wildcard = wildcardCertificates(res, issuers[0], selected, out)
	for _, rc := range out {
		slices.Sort(rc.hosts)
		rc.hosts = slices.Compact(rc.hosts)
	}
	return out, wildcard
}

// readCertificates lists the Certificates kgate manages, by namespace/name.
func (c *Controller) readCertificates(ctx context.Context, s *snapshot) error {
	s.certificates = map[string]*unstructured.Unstructured{}
	if !c.certManager {
		return nil
	}
	var list unstructured.UnstructuredList
	list.SetGroupVersionKind(CertificateGVK.GroupVersion().WithKind("CertificateList"))
	if err := c.client.List(ctx, &list); err != nil {
		return fmt.Errorf("listing Certificates: %w", err)
	}
	for i := range list.Items {
		o := &list.Items[i]
		if o.GetLabels()[LabelManagedBy] == managedBy {
			s.certificates[o.GetNamespace()+"/"+o.GetName()] = o
		}
	}
	return nil
}

// certificateSecrets are the hosts whose kgate Certificate is Ready, and
// its Secret; pending the hosts whose Certificate is not Ready (being
// issued or re-issued), and its Secret.
func certificateSecrets(s *snapshot, wanted map[string]*routeCert) (secrets, pending map[string]types.NamespacedName) {
	secrets, pending = map[string]types.NamespacedName{}, map[string]types.NamespacedName{}
	for key, rc := range wanted {
		crt := s.certificates[key]
		if crt == nil {
			continue
		}
		dns, _, _ := unstructured.NestedStringSlice(crt.Object, "spec", "dnsNames")
		secret, _, _ := unstructured.NestedString(crt.Object, "spec", "secretName")
		if secret == "" {
			continue
		}
		ready := certificateReady(crt)
		for _, h := range rc.hosts {
			switch ref := (types.NamespacedName{Namespace: rc.ns, Name: secret}); {
			case ready && dnsCovers(dns, h):
				secrets[h] = ref
			case !ready:
				pending[h] = ref
			}
		}
	}
	return secrets, pending
}

// keepServing adds to issued the pending hosts that are served from a
// Secret already: a Certificate being re-issued (its hosts or issuer
// changed) keeps serving what it issued before until the new certificate
// is Ready, rather than none, and so does a host moving to another
// Certificate (a Route's hosts to its namespace's wildcard, or back).
func keepServing(issued, pending map[string]types.NamespacedName, servedFrom func(host string) types.NamespacedName) {
	for h := range pending {
		if from := servedFrom(h); from.Name != "" {
			issued[h] = from
		}
	}
}

// dnsCovers says whether a Certificate's dnsNames cover host: they name it,
// or the single-label wildcard of its parent domain.
func dnsCovers(dns []string, host string) bool {
	if slices.Contains(dns, host) {
		return true
	}
	_, parent, ok := strings.Cut(host, ".")
	return ok && slices.Contains(dns, "*."+parent)
}

// certificateReady says whether cert-manager's Ready condition is True for
// the Certificate's current generation.
func certificateReady(crt *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crt.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] != "Ready" {
			continue
		}
		if gen, ok := m["observedGeneration"].(int64); ok && gen < crt.GetGeneration() {
			return false
		}
		return m["status"] == "True"
	}
	return false
}

// publishCertificates gives every Route the Certificates it needs
// (wanted) and deletes the Certificates kgate manages that no Route needs
// any more.
func (c *Controller) publishCertificates(s *snapshot, wanted map[string]*routeCert) {
	if !c.certManager {
		return
	}
	for _, ckey := range slices.Sorted(maps.Keys(wanted)) {
		rc := wanted[ckey]
		labels, owner, ok := certificateOwner(s, rc)
		if !ok {
			continue // not written yet: next round
		}
		spec := map[string]any{
			"dnsNames":   toAny(rc.dnsNames()),
			"secretName": rc.name,
			"issuerRef":  map[string]any{"name": rc.issuer.Name, "kind": rc.issuer.Kind, "group": rc.issuer.Group},
		}
		have := s.certificates[ckey]
		if have == nil {
			o := &unstructured.Unstructured{}
			o.SetGroupVersionKind(CertificateGVK)
			o.SetNamespace(rc.ns)
			o.SetName(rc.name)
			o.SetLabels(labels)
			o.SetOwnerReferences([]metav1.OwnerReference{owner})
			o.Object["spec"] = spec
			c.writes.put("Certificate/"+ckey, func(ctx context.Context) error { return ignoreExists(c.client.Create(ctx, o)) })
			continue
		}
		haveSpec, _, _ := unstructured.NestedMap(have.Object, "spec")
		if specCovers(haveSpec, spec) {
			continue
		}
		if haveSpec == nil {
			haveSpec = map[string]any{}
		}
		maps.Copy(haveSpec, spec)
		o := have.DeepCopy()
		o.Object["spec"] = haveSpec
		c.writes.put("Certificate/"+ckey, func(ctx context.Context) error { return c.client.Update(ctx, o) })
	}
	for key, o := range s.certificates {
		if wanted[key] == nil {
			c.deleteLater("Certificate/"+key, o)
		}
	}
}

// certificateOwner is the labels and the owner reference of a Certificate
// kgate makes: the Route's, the DomainMapping's (as Knative's
// domain-mapping reconciler owns its certificate), or the Namespace's (as
// Knative's namespace-certificate reconciler owns the wildcard). ok is
// false while the owner is not in the snapshot.
func certificateOwner(s *snapshot, rc *routeCert) (map[string]string, metav1.OwnerReference, bool) {
	labels := map[string]string{LabelManagedBy: managedBy}
	switch rc.kind {
	case v1beta1.KindDomainMapping:
		dm := s.mappings[rc.owner]
		if dm == nil {
			return nil, metav1.OwnerReference{}, false
		}
		labels[LabelDomainMapping] = dm.Name
		ref := controllerRef(dm, v1beta1.KindDomainMapping)
		ref.APIVersion = v1beta1.APIVersion
		return labels, ref, true
	case kindNamespace:
		n := s.namespaces[rc.owner]
		if n == nil {
			return nil, metav1.OwnerReference{}, false
		}
		// No blockOwnerDeletion: a Namespace's deletion takes its
		// objects anyway, and setting it would need namespaces/finalizers.
		return labels, metav1.OwnerReference{APIVersion: "v1", Kind: kindNamespace, Name: n.Name, UID: n.UID, Controller: ptr.To(true)}, true
	default:
		rt := s.routes[rc.owner]
		if rt == nil {
			return nil, metav1.OwnerReference{}, false
		}
		labels[LabelRoute] = rt.Name
		return labels, controllerRef(rt, servingv1.KindRoute), true
	}
}

// specCovers says whether have holds every field of want (cert-manager
// may default others).
func specCovers(have, want map[string]any) bool {
	for k, v := range want {
		hv := have[k]
		if m, ok := v.(map[string]any); ok {
			hm, _ := hv.(map[string]any)
			if !specCovers(hm, m) {
				return false
			}
			continue
		}
		if !equality.Semantic.DeepEqual(hv, v) {
			return false
		}
	}
	return true
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// certificateState says how far the Certificate of a Route's external
// (or local) hosts, or of a DomainMapping's domain, has come, for the
// reconciler's CertificateProvisioned: unmanaged without an issuer for
// them, issuing until cert-manager marks the Certificate Ready for its
// generation, failed when cert-manager gave up on issuing it (Issuing
// False, reason Failed) and it is not Ready. A Route whose external hosts
// its namespace's wildcard Certificate covers reports that Certificate.
// It reads the round's snapshot (roundState.certificates) and which
// Routes the wildcards covered when the round began
// (roundState.wildcardRoutes).
func (c *Controller) certificateState(kind, ns, name string, local bool) knative.CertificateState {
	issuer := c.st.issuer[0]
	if local {
		issuer = c.st.issuer[1]
	}
	if !c.certManager || issuer == nil {
		return knative.CertificateState{}
	}
	var cname string
	switch kind {
	case servingv1.KindRoute:
		cname = certificateName(name, local)
		if w, ok := c.st.wildcardRoutes[ns+"/"+name]; ok && !local {
			cname = w
		}
	case v1beta1.KindDomainMapping:
		if local {
			return knative.CertificateState{}
		}
		cname = name // the domain
	default:
		return knative.CertificateState{}
	}
	crt := c.st.certificates[ns+"/"+cname]
	st := knative.CertificateState{Phase: knative.CertificateIssuing, Name: cname}
	switch {
	case crt == nil:
	case certificateReady(crt):
		st.Phase = knative.CertificateReady
	default:
		if msg, failed := certificateFailed(crt); failed {
			st.Phase, st.Message = knative.CertificateFailed, msg
		}
	}
	return st
}

// certificateFailed says whether cert-manager gave up issuing the
// Certificate for now (its Issuing condition False with reason Failed),
// and its message.
func certificateFailed(crt *unstructured.Unstructured) (string, bool) {
	conds, _, _ := unstructured.NestedSlice(crt.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Issuing" && m["status"] == "False" && m["reason"] == "Failed" {
			msg, _ := m["message"].(string)
			return msg, true
		}
	}
	return "", false
}

// watchCertificates watches cert-manager's Certificates when its CRDs are
// installed and the controller may list them: every change asks for a
// round. (An informer that may not list would never sync, and the caches
// with it: a live list first says whether it can.)
func (c *Controller) watchCertificates(ctx context.Context, handler toolscache.ResourceEventHandler) {
	var probe unstructured.UnstructuredList
	probe.SetGroupVersionKind(CertificateGVK.GroupVersion().WithKind("CertificateList"))
	if err := c.mgr.GetAPIReader().List(ctx, &probe, client.Limit(1)); err != nil {
		switch {
		case isNoMatch(err):
			c.log.Info("cert-manager's Certificate CRD is not installed: config-certmanager is not used")
		default:
			c.log.Warn("not watching cert-manager's Certificates (RBAC: certificates.cert-manager.io get/list/watch/create/update/delete): config-certmanager is not used", "error", err)
		}
		return
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(CertificateGVK)
	inf, err := c.mgr.GetCache().GetInformer(ctx, u)
	if err != nil {
		if !isNoMatch(err) {
			c.log.Warn("not watching cert-manager's Certificates", "error", err)
		} else {
			c.log.Info("cert-manager's Certificate CRD is not installed: config-certmanager is not used")
		}
		return
	}
	if _, err := inf.AddEventHandler(handler); err != nil {
		c.log.Warn("not watching cert-manager's Certificates", "error", err)
		return
	}
	c.certManager = true
}

func isNoMatch(err error) bool {
	return meta.IsNoMatchError(err) || strings.Contains(err.Error(), "no matches for kind") || apierrors.IsNotFound(err)
}
