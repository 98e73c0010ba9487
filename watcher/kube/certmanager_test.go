package kube

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/api/serving/v1beta1"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/watcher/knative"
)

func TestParseIssuerRef(t *testing.T) {
	for in, want := range map[string]IssuerRef{
		"name: ca":                                                     {Name: "ca", Kind: "Issuer", Group: "cert-manager.io"},
		"kind: ClusterIssuer\nname: letsencrypt":                       {Name: "letsencrypt", Kind: "ClusterIssuer", Group: "cert-manager.io"},
		"kind: Issuer\nname: x\ngroup: cert-manager.io":                {Name: "x", Kind: "Issuer", Group: "cert-manager.io"},
		"kind: AWSPCAIssuer\nname: pca\ngroup: awspca.cert-manager.io": {Name: "pca", Kind: "AWSPCAIssuer", Group: "awspca.cert-manager.io"},
	} {
		got, err := ParseIssuerRef(in)
		if err != nil || got != want {
			t.Errorf("ParseIssuerRef(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"kind: Issuer", "name: [", "kind: Secret\nname: x", "name: x\nnamespace: y"} {
		if got, err := ParseIssuerRef(in); err == nil {
			t.Errorf("ParseIssuerRef(%q) = %+v, want an error", in, got)
		}
	}
}

// A bad issuerRef is logged once, naming the key, and the last good one
// is kept; removing it names no issuer.
func TestIssuerKeepsTheLastGood(t *testing.T) {
	c, _ := newTestController(t)
	var logs bytes.Buffer
	c.log = slog.New(slog.NewTextHandler(&logs, nil))
	snapWith := func(v string) *snapshot {
		return &snapshot{configMaps: []*corev1.ConfigMap{{ObjectMeta: metav1.ObjectMeta{Name: ConfigCertManager}, Data: map[string]string{"issuerRef": v}}}}
	}
	if got := c.issuers(snapWith("kind: ClusterIssuer\nname: ca"))[0]; got == nil || got.Name != "ca" {
		t.Fatalf("issuer %+v, want ca", got)
	}
	for range 2 {
		if got := c.issuers(snapWith("kind: Nope\nname: other"))[0]; got == nil || got.Name != "ca" {
			t.Fatalf("after a bad value: issuer %+v, want ca kept", got)
		}
	}
	if n := strings.Count(logs.String(), "key=issuerRef"); n != 1 {
		t.Errorf("the bad value logged %d times, want once naming issuerRef: %s", n, logs.String())
	}
	if got := c.issuers(&snapshot{}); got[0] != nil || got[1] != nil {
		t.Errorf("without config-certmanager: issuer %+v, want none", got)
	}
}

func tlsRouteResult() *knative.Result {
	res := &knative.Result{Routes: []*servingv1.Route{kroute("hello")}}
	res.Model.Services = []model.Service{{Namespace: ns, Name: "hello", VirtualHosts: []model.VirtualHost{
		{Host: "hello.default.example.com", Visibility: model.External, TLS: true},
		{Host: "v2-hello.default.example.com", Visibility: model.External, TLS: true},
		{Host: "hello.default.svc.cluster.local", Visibility: model.ClusterLocal},
	}}}
	return res
}

func certificate(name string, hosts []string, ready string) *unstructured.Unstructured {
	o := &unstructured.Unstructured{}
	o.SetGroupVersionKind(CertificateGVK)
	o.SetNamespace(ns)
	o.SetName(name)
	o.SetGeneration(1)
	o.SetLabels(map[string]string{LabelManagedBy: managedBy})
	o.Object["spec"] = map[string]any{"dnsNames": toAny(hosts), "secretName": name,
		"issuerRef": map[string]any{"name": "ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}}
	if ready != "" {
		o.Object["status"] = map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": ready, "observedGeneration": int64(1)}}}
	}
	return o
}

// The Certificates a Route needs: its external TLS hosts' with issuerRef,
// its cluster-local TLS hosts' with clusterLocalIssuerRef.
func TestWantedCertificates(t *testing.T) {
	res := tlsRouteResult()
	res.Model.Services[0].VirtualHosts[2].TLS = true
	ext := &IssuerRef{Name: "ca", Kind: "ClusterIssuer", Group: "cert-manager.io"}
	local := &IssuerRef{Name: "local", Kind: "Issuer", Group: "cert-manager.io"}
	if got, _ := wantedCertificates(res, [2]*IssuerRef{}, nil); len(got) != 0 {
		t.Errorf("no issuer: %v, want none", got)
	}
	got, _ := wantedCertificates(res, [2]*IssuerRef{ext, nil}, nil)
	if len(got) != 1 || got[ns+"/route-hello"] == nil || !slices.Equal(got[ns+"/route-hello"].hosts, []string{"hello.default.example.com", "v2-hello.default.example.com"}) {
		t.Errorf("external issuer: %+v", got)
	}
	got, _ = wantedCertificates(res, [2]*IssuerRef{ext, local}, nil)
	if rc := got[ns+"/local-route-hello"]; len(got) != 2 || rc == nil || rc.issuer != local || !slices.Equal(rc.hosts, []string{"hello.default.svc.cluster.local"}) {
		t.Errorf("both issuers: %+v", got)
	}
}

// A Ready Certificate's Secret serves the hosts it names; one not Ready
// serves none and says so.
func TestCertificateSecrets(t *testing.T) {
	wanted, _ := wantedCertificates(tlsRouteResult(), [2]*IssuerRef{{Name: "ca", Kind: "ClusterIssuer", Group: "cert-manager.io"}}, nil)
	want := []string{"hello.default.example.com", "v2-hello.default.example.com"}
	s := &snapshot{certificates: map[string]*unstructured.Unstructured{ns + "/route-hello": certificate("route-hello", want, "False")}}
	secrets, pending := certificateSecrets(s, wanted)
	if len(secrets) != 0 || len(pending) != 2 {
		t.Errorf("not Ready: secrets %v pending %v, want none and both hosts", secrets, pending)
	}
	// A host already served from the Secret keeps it while it is re-issued.
	ref := types.NamespacedName{Namespace: ns, Name: "route-hello"}
	keepServing(secrets, pending, func(h string) types.NamespacedName {
		if h == want[0] {
			return ref
		}
		return types.NamespacedName{}
	})
	if len(secrets) != 1 || secrets[want[0]] != ref {
		t.Errorf("re-issuing: secrets %v, want %s kept on %s", secrets, want[0], ref)
	}
	s.certificates[ns+"/route-hello"] = certificate("route-hello", want[:1], "True")
	secrets, _ = certificateSecrets(s, wanted)
	if len(secrets) != 1 || secrets[want[0]] != ref {
		t.Errorf("Ready for the main host: secrets %v, want %s → %s", secrets, want[0], ref)
	}
}

// A Route's Certificate is created with its hosts, updated when they
// change, left alone when they do not, and deleted (only kgate's) when no
// issuer is named.
func TestPublishCertificates(t *testing.T) {
	c, _ := newTestController(t)
	c.certManager = true
	issuer := &IssuerRef{Name: "ca", Kind: "ClusterIssuer", Group: "cert-manager.io"}
	wanted, _ := wantedCertificates(tlsRouteResult(), [2]*IssuerRef{issuer}, nil)
	hosts := wanted[ns+"/route-hello"].hosts
	s := &snapshot{routes: map[string]*servingv1.Route{ns + "/hello": kroute("hello")}, certificates: map[string]*unstructured.Unstructured{}}
	c.publishCertificates(s, wanted)
	if got := queued(c); !slices.Equal(got, []string{"Certificate/default/route-hello"}) {
		t.Fatalf("queued %v, want the Certificate's creation", got)
	}
	c.writes.take("Certificate/default/route-hello")

	s.certificates[ns+"/route-hello"] = certificate("route-hello", hosts, "True")
	c.publishCertificates(s, wanted)
	if got := queued(c); len(got) != 0 {
		t.Errorf("an up-to-date Certificate: queued %v, want nothing", got)
	}
	s.certificates[ns+"/route-hello"] = certificate("route-hello", []string{"old.example.com"}, "True")
	c.publishCertificates(s, wanted)
	if got := queued(c); !slices.Equal(got, []string{"Certificate/default/route-hello"}) {
		t.Errorf("changed hosts: queued %v, want an update", got)
	}
	c.writes.take("Certificate/default/route-hello")
	c.publishCertificates(s, nil)
	if got := queued(c); !slices.Equal(got, []string{"Certificate/default/route-hello"}) {
		t.Errorf("no issuer: queued %v, want a deletion", got)
	}
}

// The reconciler learns how far a Route's Certificate has come: unmanaged
// without an issuer, issuing until cert-manager marks it Ready, failed when
// cert-manager gave up.
func TestCertificateState(t *testing.T) {
	c, _ := newTestController(t)
	c.certManager = true
	hosts := []string{"hello.default.example.com"}
	failed := certificate("route-hello", hosts, "False")
	_ = unstructured.SetNestedSlice(failed.Object, append(failed.Object["status"].(map[string]any)["conditions"].([]any),
		map[string]any{"type": "Issuing", "status": "False", "reason": "Failed", "message": "the issuer refused"}), "status", "conditions")
	tests := []struct {
		name   string
		issuer bool
		crt    *unstructured.Unstructured
		want   knative.CertificatePhase
	}{
		{name: "no issuer", want: knative.CertificateUnmanaged},
		{name: "not created yet", issuer: true, want: knative.CertificateIssuing},
		{name: "issuing", issuer: true, crt: certificate("route-hello", hosts, "False"), want: knative.CertificateIssuing},
		{name: "ready", issuer: true, crt: certificate("route-hello", hosts, "True"), want: knative.CertificateReady},
		{name: "failed", issuer: true, crt: failed, want: knative.CertificateFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.st.issuer = [2]*IssuerRef{}
			if tt.issuer {
				c.st.issuer[0] = &IssuerRef{Name: "ca", Kind: "ClusterIssuer", Group: "cert-manager.io"}
			}
			c.st.certificates = map[string]*unstructured.Unstructured{}
			if tt.crt != nil {
				c.st.certificates[ns+"/route-hello"] = tt.crt
			}
			st := c.certificateState(servingv1.KindRoute, ns, "hello", false)
			if st.Phase != tt.want || (tt.want != knative.CertificateUnmanaged && st.Name != "route-hello") {
				t.Errorf("state %+v, want phase %d of route-hello", st, tt.want)
			}
			if tt.want == knative.CertificateFailed && st.Message != "the issuer refused" {
				t.Errorf("message %q, want cert-manager's", st.Message)
			}
			if local := c.certificateState(servingv1.KindRoute, ns, "hello", true); local.Phase != knative.CertificateUnmanaged {
				t.Errorf("cluster-local hosts without clusterLocalIssuerRef: %+v, want unmanaged", local)
			}
		})
	}
}

// mappingResult is a Route's result with a DomainMapping of its own
// domain, served over TLS.
func mappingResult(dm *v1beta1.DomainMapping) *knative.Result {
	res := tlsRouteResult()
	res.DomainMappings = []*v1beta1.DomainMapping{dm}
	res.Model.Services = append(res.Model.Services, model.Service{Namespace: dm.Namespace, Name: dm.Name,
		VirtualHosts: []model.VirtualHost{{Host: dm.Name, Visibility: model.External, TLS: true}}})
	return res
}

// A DomainMapping without spec.tls gets a Certificate named after its
// domain, with the external issuer; one with spec.tls, one that lost its
// domain, or without an issuer, none.
func TestDomainMappingCertificates(t *testing.T) {
	ext := &IssuerRef{Name: "ca", Kind: "ClusterIssuer", Group: "cert-manager.io"}
	own := mapping(ns, "hello.example.org", "", true)
	own.Spec.TLS = nil
	lost := mapping(ns, "hello.example.org", "", false)
	lost.Spec.TLS = nil
	tests := []struct {
		name    string
		dm      *v1beta1.DomainMapping
		issuers [2]*IssuerRef
		want    bool
	}{
		{name: "no spec.tls", dm: own, issuers: [2]*IssuerRef{ext}, want: true},
		{name: "spec.tls", dm: mapping(ns, "hello.example.org", "mine", true), issuers: [2]*IssuerRef{ext}},
		{name: "domain lost", dm: lost, issuers: [2]*IssuerRef{ext}},
		{name: "no external issuer", dm: own, issuers: [2]*IssuerRef{nil, ext}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := wantedCertificates(mappingResult(tt.dm), tt.issuers, nil)
			rc := got[ns+"/hello.example.org"]
			if !tt.want {
				if rc != nil {
					t.Errorf("got %+v, want no Certificate for the mapping", rc)
				}
				return
			}
			if rc == nil || rc.kind != v1beta1.KindDomainMapping || rc.owner != ns+"/hello.example.org" || rc.issuer != ext ||
				!slices.Equal(rc.dnsNames(), []string{"hello.example.org"}) {
				t.Fatalf("got %+v, want the domain's Certificate", rc)
			}
			if got[ns+"/route-hello"] == nil {
				t.Errorf("the Route's Certificate is gone: %v", got)
			}
		})
	}
}

// The mapping's Certificate is owned by it and labelled with its name; once
// Ready its Secret serves the domain; certificateState reports it.
func TestDomainMappingCertificatePublished(t *testing.T) {
	c, _ := newTestController(t)
	c.certManager = true
	issuer := &IssuerRef{Name: "ca", Kind: "ClusterIssuer", Group: "cert-manager.io"}
	dm := mapping(ns, "hello.example.org", "", true)
	dm.Spec.TLS, dm.UID = nil, "dm-uid"
	wanted, _ := wantedCertificates(mappingResult(dm), [2]*IssuerRef{issuer}, nil)
	s := &snapshot{routes: map[string]*servingv1.Route{ns + "/hello": kroute("hello")},
		mappings: map[string]*v1beta1.DomainMapping{ns + "/hello.example.org": dm}, certificates: map[string]*unstructured.Unstructured{}}
	c.publishCertificates(s, wanted)
	w, ok := c.writes.take("Certificate/default/hello.example.org")
	if !ok {
		t.Fatalf("queued %v, want the mapping's Certificate", queued(c))
	}
	if err := w(t.Context()); err != nil {
		t.Fatal(err)
	}
	var crt unstructured.Unstructured
	crt.SetGroupVersionKind(CertificateGVK)
	if err := c.client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: "hello.example.org"}, &crt); err != nil {
		t.Fatal(err)
	}
	refs := crt.GetOwnerReferences()
	if len(refs) != 1 || refs[0].Kind != v1beta1.KindDomainMapping || refs[0].APIVersion != v1beta1.APIVersion || refs[0].UID != "dm-uid" ||
		refs[0].Controller == nil || !*refs[0].Controller {
		t.Errorf("owners %+v, want the DomainMapping as controller", refs)
	}
	if l := crt.GetLabels(); l[LabelManagedBy] != managedBy || l[LabelDomainMapping] != "hello.example.org" {
		t.Errorf("labels %v", l)
	}
	if secret, _, _ := unstructured.NestedString(crt.Object, "spec", "secretName"); secret != "hello.example.org" {
		t.Errorf("secretName %q, want the domain", secret)
	}

	s.certificates[ns+"/hello.example.org"] = certificate("hello.example.org", []string{"hello.example.org"}, "True")
	issued, _ := certificateSecrets(s, wanted)
	ref := types.NamespacedName{Namespace: ns, Name: "hello.example.org"}
	if issued["hello.example.org"] != ref {
		t.Errorf("issued %v, want the domain served from %s", issued, ref)
	}
	if got := certificateHosts(mappingResult(dm), types.NamespacedName{}, issued)["hello.example.org"]; got != ref {
		t.Errorf("the domain's certificate from %v, want %s", got, ref)
	}
	c.st.issuer[0] = issuer
	c.st.certificates = s.certificates
	if st := c.certificateState(v1beta1.KindDomainMapping, ns, "hello.example.org", false); st.Phase != knative.CertificateReady || st.Name != "hello.example.org" {
		t.Errorf("state %+v, want the domain's Certificate Ready", st)
	}
	delete(c.st.certificates, ns+"/hello.example.org")
	if st := c.certificateState(v1beta1.KindDomainMapping, ns, "hello.example.org", false); st.Phase != knative.CertificateIssuing {
		t.Errorf("no Certificate yet: state %+v, want issuing", st)
	}
}
