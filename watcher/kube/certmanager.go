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
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
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

// routeCert is a Certificate a Route needs.
type routeCert struct {
	route  string // the Route's key
	ns     string
	name   string
	hosts  []string // sorted
	issuer *IssuerRef
}

// wantedCertificates are the Certificates the Routes need, by
// namespace/name: for each Route, one of its external hosts served over
// TLS when an external issuer is named, one of its cluster-local hosts
// served over TLS when a cluster-local issuer is.
func wantedCertificates(res *knative.Result, issuers [2]*IssuerRef) map[string]*routeCert {
	routes := map[string]bool{}
	for _, rt := range res.Routes {
		routes[rt.Namespace+"/"+rt.Name] = true
	}
	out := map[string]*routeCert{}
	for _, svc := range res.Model.Services {
		if !routes[svc.Key()] {
			continue // a DomainMapping's
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
			name := certificateName(svc.Name, local)
			rc := out[svc.Namespace+"/"+name]
			if rc == nil {
				rc = &routeCert{route: svc.Key(), ns: svc.Namespace, name: name, issuer: issuer}
				out[svc.Namespace+"/"+name] = rc
			}
			rc.hosts = append(rc.hosts, vh.Host)
		}
	}
	for _, rc := range out {
		slices.Sort(rc.hosts)
		rc.hosts = slices.Compact(rc.hosts)
	}
	return out
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
			case ready && slices.Contains(dns, h):
				secrets[h] = ref
			case !ready:
				pending[h] = ref
			}
		}
	}
	return secrets, pending
}

// keepServing adds to issued the pending hosts that are served from their
// Certificate's Secret already: a Certificate being re-issued (its
// hosts or issuer changed) keeps serving what it issued before until the
// new certificate is Ready, rather than none.
func keepServing(issued, pending map[string]types.NamespacedName, servedFrom func(host string) types.NamespacedName) {
	for h, ref := range pending {
		if servedFrom(h) == ref {
			issued[h] = ref
		}
	}
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
		rt := s.routes[rc.route]
		if rt == nil {
			continue // not written yet: next round
		}
		spec := map[string]any{
			"dnsNames":   toAny(rc.hosts),
			"secretName": rc.name,
			"issuerRef":  map[string]any{"name": rc.issuer.Name, "kind": rc.issuer.Kind, "group": rc.issuer.Group},
		}
		have := s.certificates[ckey]
		if have == nil {
			o := &unstructured.Unstructured{}
			o.SetGroupVersionKind(CertificateGVK)
			o.SetNamespace(rc.ns)
			o.SetName(rc.name)
			o.SetLabels(map[string]string{LabelManagedBy: managedBy, LabelRoute: rt.Name})
			o.SetOwnerReferences([]metav1.OwnerReference{controllerRef(rt, servingv1.KindRoute)})
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
// (or local) hosts has come, for the reconciler's CertificateProvisioned:
// unmanaged without an issuer for them, issuing until cert-manager marks
// the Certificate Ready for its generation, failed when cert-manager gave
// up on issuing it (Issuing False, reason Failed) and it is not Ready.
// It reads the round's snapshot (roundState.certificates).
func (c *Controller) certificateState(kind, ns, name string, local bool) knative.CertificateState {
	issuer := c.st.issuer[0]
	if local {
		issuer = c.st.issuer[1]
	}
	if !c.certManager || issuer == nil || kind != servingv1.KindRoute {
		return knative.CertificateState{}
	}
	cname := certificateName(name, local)
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
