package kube

import (
	"bytes"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kgate/kgate/api/config"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/watcher/knative"
)

var wildSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"wildcard": "yes"}}

func namespace(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, UID: types.UID(name + "-uid")}}
}

func TestSelectedNamespaces(t *testing.T) {
	gone := namespace("gone", map[string]string{"wildcard": "yes"})
	gone.DeletionTimestamp = &metav1.Time{}
	nss := map[string]*corev1.Namespace{
		"a": namespace("a", map[string]string{"wildcard": "yes"}), "b": namespace("b", map[string]string{"wildcard": "no"}),
		"c": namespace("c", nil), "gone": gone,
	}
	if got := selectedNamespaces(nil, nss); len(got) != 0 {
		t.Errorf("no selector: %v, want none", got)
	}
	if got := selectedNamespaces(wildSelector, nss); !maps.Equal(got, map[string]bool{"a": true}) {
		t.Errorf("got %v, want a (not b, c, or gone being deleted)", got)
	}
	all := selectedNamespaces(&metav1.LabelSelector{}, nss)
	if len(all) != 3 {
		t.Errorf("the empty selector: %v, want every namespace not being deleted", all)
	}
}

// wildResult has Routes hello (hello.<ns>.example.com and a tag), deep
// (a host two labels under the namespace) and other (in namespace other)
// served over TLS, with config-domain example.com and example.org (for
// labelled Routes).
func wildResult(ns string) *knative.Result {
	res := &knative.Result{Routes: []*servingv1.Route{kroute("hello"), kroute("deep"), kroute("org"), kroute("other")}}
	res.Routes[3].Namespace = "other"
	res.Config = config.Default()
	res.Config.Network.ExternalTLS = true
	res.Config.Domain = config.Domain{Domains: map[string]map[string]string{"example.com": {}, "example.org": {"org": "yes"}, "unused.net": {"x": "y"}}}
	ext := func(hosts ...string) []model.VirtualHost {
		var out []model.VirtualHost
		for _, h := range hosts {
			out = append(out, model.VirtualHost{Host: h, Visibility: model.External, TLS: true})
		}
		return out
	}
	res.Model.Services = []model.Service{
		{Namespace: ns, Name: "hello", VirtualHosts: append(ext("hello."+ns+".example.com", "v2-hello."+ns+".example.com"),
			model.VirtualHost{Host: "hello." + ns + ".svc.cluster.local", Visibility: model.ClusterLocal})},
		{Namespace: ns, Name: "deep", VirtualHosts: ext("deep.x."+ns+".example.com", "deep2."+ns+".example.com")},
		{Namespace: ns, Name: "org", VirtualHosts: ext("org." + ns + ".example.org")},
		{Namespace: "other", Name: "other", VirtualHosts: ext("other.other.example.com")},
	}
	return res
}

// A selected namespace gets one wildcard Certificate, named as Knative
// names it, for the default domain and every domain its Routes use; the
// Routes it covers lose their own; a host one label too deep keeps its
// Route on its own; other namespaces, and a namespace without TLS or
// issuer, are untouched.
func TestWildcardCertificates(t *testing.T) {
	ext := &IssuerRef{Name: "ca", Kind: "ClusterIssuer", Group: "cert-manager.io"}
	tests := []struct {
		name     string
		selected map[string]bool
		mod      func(*knative.Result)
		issuers  [2]*IssuerRef
		certs    []string          // the wanted Certificates in ns
		wildcard map[string]string // covered Routes
		dns      []string          // the wildcard's dnsNames
	}{
		{name: "not selected", selected: map[string]bool{"other": true}, issuers: [2]*IssuerRef{ext},
			certs: []string{"route-deep", "route-hello", "route-org"}, wildcard: map[string]string{"other/other": "other.example.com"}},
		{name: "selected", selected: map[string]bool{ns: true}, issuers: [2]*IssuerRef{ext},
			certs:    []string{"default.example.com", "route-deep"},
			wildcard: map[string]string{ns + "/hello": "default.example.com", ns + "/org": "default.example.com"},
			dns:      []string{"*.default.example.com", "*.default.example.org"}},
		{name: "no issuer", selected: map[string]bool{ns: true}, issuers: [2]*IssuerRef{nil, ext}},
		{name: "external-domain-tls off", selected: map[string]bool{ns: true}, issuers: [2]*IssuerRef{ext},
			mod:   func(res *knative.Result) { res.Config.Network.ExternalTLS = false },
			certs: []string{"route-deep", "route-hello", "route-org"}},
		{name: "a DomainMapping holds the name", selected: map[string]bool{ns: true}, issuers: [2]*IssuerRef{ext},
			mod: func(res *knative.Result) {
				dm := mapping(ns, "default.example.com", "", true)
				dm.Spec.TLS = nil
				res.DomainMappings = append(res.DomainMappings, dm)
				res.Model.Services = append(res.Model.Services, model.Service{Namespace: ns, Name: dm.Name,
					VirtualHosts: []model.VirtualHost{{Host: dm.Name, Visibility: model.External, TLS: true}}})
			},
			certs: []string{"default.example.com", "route-deep", "route-hello", "route-org"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := wildResult(ns)
			if tt.mod != nil {
				tt.mod(res)
			}
			got, wildcard := wantedCertificates(res, tt.issuers, tt.selected)
			var names []string
			for _, rc := range got {
				if rc.ns == ns {
					names = append(names, rc.name)
				}
			}
			slices.Sort(names)
			if !slices.Equal(names, tt.certs) {
				t.Errorf("Certificates in %s: %v, want %v", ns, names, tt.certs)
			}
			if !maps.Equal(wildcard, tt.wildcard) {
				t.Errorf("covered Routes %v, want %v", wildcard, tt.wildcard)
			}
			if tt.dns == nil {
				return
			}
			wc := got[ns+"/default.example.com"]
			if wc.kind != kindNamespace || wc.owner != ns || !slices.Equal(wc.dnsNames(), tt.dns) {
				t.Errorf("the wildcard %+v, want the namespace's with %v", wc, tt.dns)
			}
			wantHosts := []string{"hello.default.example.com", "org.default.example.org", "v2-hello.default.example.com"}
			if !slices.Equal(wc.hosts, wantHosts) {
				t.Errorf("the wildcard serves %v, want %v", wc.hosts, wantHosts)
			}
		})
	}
}

// The wildcard's Secret serves the hosts it covers once Ready; the
// Namespace owns it; the covered Routes report its state; a Route's own
// Certificate it replaces is deleted.
func TestWildcardCertificatePublished(t *testing.T) {
	c, _ := newTestController(t)
	c.certManager = true
	issuer := &IssuerRef{Name: "ca", Kind: "ClusterIssuer", Group: "cert-manager.io"}
	wanted, wildcard := wantedCertificates(wildResult(ns), [2]*IssuerRef{issuer}, map[string]bool{ns: true})
	s := &snapshot{
		routes:     map[string]*servingv1.Route{ns + "/hello": kroute("hello"), ns + "/deep": kroute("deep"), ns + "/org": kroute("org")},
		namespaces: map[string]*corev1.Namespace{ns: namespace(ns, map[string]string{"wildcard": "yes"})},
		certificates: map[string]*unstructured.Unstructured{
			ns + "/route-hello": certificate("route-hello", []string{"hello.default.example.com"}, "True"),
		},
	}
	// The wildcard created, route-deep too, route-hello deleted (the
	// wildcard covers it), route-org never made.
	c.publishCertificates(s, wanted)
	if got := queued(c); !slices.Equal(got, []string{"Certificate/default/default.example.com", "Certificate/default/route-deep", "Certificate/default/route-hello"}) {
		t.Fatalf("queued %v", got)
	}
	w, _ := c.writes.take("Certificate/default/default.example.com")
	if err := w(t.Context()); err != nil {
		t.Fatal(err)
	}
	var crt unstructured.Unstructured
	crt.SetGroupVersionKind(CertificateGVK)
	if err := c.client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: "default.example.com"}, &crt); err != nil {
		t.Fatal(err)
	}
	refs := crt.GetOwnerReferences()
	if len(refs) != 1 || refs[0].Kind != "Namespace" || refs[0].APIVersion != "v1" || refs[0].Name != ns || refs[0].UID != ns+"-uid" {
		t.Errorf("owners %+v, want the Namespace", refs)
	}
	if dns, _, _ := unstructured.NestedStringSlice(crt.Object, "spec", "dnsNames"); !slices.Equal(dns, []string{"*.default.example.com", "*.default.example.org"}) {
		t.Errorf("dnsNames %v", dns)
	}
	if crt.GetLabels()[LabelManagedBy] != managedBy {
		t.Errorf("labels %v", crt.GetLabels())
	}

	// Ready: the wildcard's Secret serves every host it covers, not the
	// deep one's.
	s.certificates[ns+"/default.example.com"] = certificate("default.example.com", []string{"*.default.example.com", "*.default.example.org"}, "True")
	issued, _ := certificateSecrets(s, wanted)
	ref := types.NamespacedName{Namespace: ns, Name: "default.example.com"}
	for _, h := range []string{"hello.default.example.com", "v2-hello.default.example.com", "org.default.example.org"} {
		if issued[h] != ref {
			t.Errorf("%s served from %v, want %s", h, issued[h], ref)
		}
	}
	if _, ok := issued["deep.x.default.example.com"]; ok {
		t.Errorf("a host two labels deep is served from the wildcard: %v", issued)
	}

	c.st.issuer[0] = issuer
	c.st.certificates = s.certificates
	c.st.wildcardRoutes = wildcard
	if st := c.certificateState(servingv1.KindRoute, ns, "hello", false); st.Phase != knative.CertificateReady || st.Name != "default.example.com" {
		t.Errorf("hello: %+v, want the wildcard Ready", st)
	}
	if st := c.certificateState(servingv1.KindRoute, ns, "deep", false); st.Phase != knative.CertificateIssuing || st.Name != "route-deep" {
		t.Errorf("deep: %+v, want its own route-deep issuing", st)
	}

	// The namespace no longer selected: the wildcard goes, the Routes get
	// theirs back.
	wanted, wildcard = wantedCertificates(wildResult(ns), [2]*IssuerRef{issuer}, nil)
	if len(wildcard) != 0 || wanted[ns+"/route-hello"] == nil || wanted[ns+"/default.example.com"] != nil {
		t.Errorf("unselected: %v %v", wanted, wildcard)
	}
	c.writes = newWriter(discard, 1, func() {})
	c.publishCertificates(s, wanted)
	if got := queued(c); !slices.Contains(got, "Certificate/default/default.example.com") {
		t.Errorf("queued %v, want the wildcard's deletion", got)
	}
}

// A pending host keeps the Secret it is served from while its new
// Certificate is issued (a Route moving onto the wildcard).
func TestKeepServingAcrossCertificates(t *testing.T) {
	old := types.NamespacedName{Namespace: ns, Name: "route-hello"}
	issued := map[string]types.NamespacedName{}
	keepServing(issued, map[string]types.NamespacedName{"a": {Namespace: ns, Name: "default.example.com"}, "b": {Namespace: ns, Name: "default.example.com"}},
		func(h string) types.NamespacedName {
			if h == "a" {
				return old
			}
			return types.NamespacedName{}
		})
	if !maps.Equal(issued, map[string]types.NamespacedName{"a": old}) {
		t.Errorf("issued %v, want a kept on %s", issued, old)
	}
}

// namespace-wildcard-cert-selector with no effect is logged once per value
// and reason, naming the key and config-network.
func TestWarnWildcard(t *testing.T) {
	c, _ := newTestController(t)
	var logs bytes.Buffer
	c.log = slog.New(slog.NewTextHandler(&logs, nil))
	res := &knative.Result{Config: config.Default()}
	res.Config.Network.ExternalTLS = true
	c.warnWildcard(res)
	res.Config.Network.NamespaceWildcardCertSelector = wildSelector
	for range 3 {
		c.warnWildcard(res)
	}
	if n := strings.Count(logs.String(), "key=namespace-wildcard-cert-selector"); n != 1 || !strings.Contains(logs.String(), "configmap=config-network") {
		t.Fatalf("logged %d times, want once naming the key and config-network: %s", n, logs.String())
	}
	res.Config.Network.NamespaceWildcardCertSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"other": "x"}}
	c.warnWildcard(res)
	if n := strings.Count(logs.String(), "key=namespace-wildcard-cert-selector"); n != 2 {
		t.Errorf("a new value: logged %d times, want twice", n)
	}
	logs.Reset()
	c.certManager = true
	c.st.issuer[0] = &IssuerRef{Name: "ca"}
	c.warnWildcard(res)
	if logs.Len() != 0 {
		t.Errorf("with cert-manager and an issuer: %s, want nothing", logs.String())
	}
}
