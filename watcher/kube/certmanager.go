package kube

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
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
// name; the Route owns it, so it goes with the Route, and the labels
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

// issuer reads config-certmanager's issuerRef: the issuer to use, nil for
// none. A value that does not parse is logged (once) and the last good one
// kept.
func (c *Controller) issuer(s *snapshot) *IssuerRef {
	var data map[string]string
	for _, cm := range s.configMaps {
		if cm.Name == ConfigCertManager {
			data = cm.Data
		}
	}
	v := strings.TrimSpace(data["issuerRef"])
	if v == "" {
		c.st.issuer, c.st.issuerBad = nil, ""
		return nil
	}
	r, err := ParseIssuerRef(v)
	if err != nil {
		if c.st.issuerBad != v {
			c.st.issuerBad = v
			c.log.Error("config-certmanager: a bad issuerRef, the last good one is kept", "key", "issuerRef", "error", err)
		}
		return c.st.issuer
	}
	c.st.issuer, c.st.issuerBad = &r, ""
	return c.st.issuer
}

// certificateName is the Certificate of a Route.
func certificateName(route string) string { return "route-" + route }

// routeTLSHosts are each Route's external hosts served over TLS, by Route
// key, sorted.
func routeTLSHosts(res *knative.Result) map[string][]string {
	routes := map[string]bool{}
	for _, rt := range res.Routes {
		routes[rt.Namespace+"/"+rt.Name] = true
	}
	out := map[string][]string{}
	for _, svc := range res.Model.Services {
		if !routes[svc.Key()] {
			continue // a DomainMapping's
		}
		for _, vh := range svc.VirtualHosts {
			if vh.TLS && vh.Visibility == model.External {
				out[svc.Key()] = append(out[svc.Key()], vh.Host)
			}
		}
	}
	for k := range out {
		slices.Sort(out[k])
		out[k] = slices.Compact(out[k])
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
// its Secret; provisioned says, by Route key, whether a Route with a
// Certificate has it Ready.
func certificateSecrets(s *snapshot, hosts map[string][]string) (secrets map[string]types.NamespacedName, provisioned map[string]bool) {
	secrets, provisioned = map[string]types.NamespacedName{}, map[string]bool{}
	for key, hs := range hosts {
		ns, name, _ := strings.Cut(key, "/")
		crt := s.certificates[ns+"/"+certificateName(name)]
		if crt == nil {
			continue
		}
		dns, _, _ := unstructured.NestedStringSlice(crt.Object, "spec", "dnsNames")
		secret, _, _ := unstructured.NestedString(crt.Object, "spec", "secretName")
		ok := certificateReady(crt) && secret != ""
		provisioned[key] = ok
		if !ok {
			continue
		}
		for _, h := range hs {
			if slices.Contains(dns, h) {
				secrets[h] = types.NamespacedName{Namespace: ns, Name: secret}
			}
		}
	}
	return secrets, provisioned
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

// publishCertificates makes every Route with external TLS hosts have its
// Certificate when an issuer is named, and deletes the Certificates kgate
// manages that no Route needs any more.
func (c *Controller) publishCertificates(s *snapshot, hosts map[string][]string, issuer *IssuerRef) {
	if !c.certManager {
		return
	}
	want := map[string]bool{}
	if issuer != nil {
		for _, key := range slices.Sorted(maps.Keys(hosts)) {
			rt := s.routes[key]
			if rt == nil {
				continue // not written yet: next round
			}
			name := certificateName(rt.Name)
			ckey := rt.Namespace + "/" + name
			want[ckey] = true
			spec := map[string]any{
				"dnsNames":   toAny(hosts[key]),
				"secretName": name,
				"issuerRef":  map[string]any{"name": issuer.Name, "kind": issuer.Kind, "group": issuer.Group},
			}
			have := s.certificates[ckey]
			if have == nil {
				o := &unstructured.Unstructured{}
				o.SetGroupVersionKind(CertificateGVK)
				o.SetNamespace(rt.Namespace)
				o.SetName(name)
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
			o := have.DeepCopy()
			for k, v := range spec {
				haveSpec[k] = v
			}
			o.Object["spec"] = haveSpec
			c.writes.put("Certificate/"+ckey, func(ctx context.Context) error { return c.client.Update(ctx, o) })
		}
	}
	for key, o := range s.certificates {
		if !want[key] {
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

// withCertificateCondition sets the Route's CertificateProvisioned
// condition, as Knative does with cert-manager: Unknown CertificateNotReady
// while issuing, True once Ready. The transition time is kept while the
// status does not change.
func withCertificateCondition(st servingv1.RouteStatus, have []servingv1.Condition, ready bool, now metav1.Time) servingv1.RouteStatus {
	cond := servingv1.Condition{Type: ConditionCertificateProvisioned, Status: corev1.ConditionTrue}
	if !ready {
		cond.Status, cond.Reason = corev1.ConditionUnknown, "CertificateNotReady"
		cond.Message = "The certificate is being issued by cert-manager"
	}
	cond.LastTransitionTime = now
	for _, h := range have {
		if h.Type == cond.Type && h.Status == cond.Status {
			cond.LastTransitionTime = h.LastTransitionTime
		}
	}
	conds := slices.Clone(st.Conditions)
	conds = slices.DeleteFunc(conds, func(c servingv1.Condition) bool { return c.Type == cond.Type })
	conds = append(conds, cond)
	slices.SortStableFunc(conds, func(a, b servingv1.Condition) int { return strings.Compare(string(a.Type), string(b.Type)) })
	st.Conditions = conds
	return st
}

// ConditionCertificateProvisioned is the Route condition of its
// cert-manager Certificate.
const ConditionCertificateProvisioned servingv1.ConditionType = "CertificateProvisioned"

// watchCertificates watches cert-manager's Certificates when its CRDs are
// installed: every change asks for a round.
func (c *Controller) watchCertificates(ctx context.Context, handler toolscache.ResourceEventHandler) {
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
