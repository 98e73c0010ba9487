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
	if got := wantedCertificates(res, [2]*IssuerRef{}); len(got) != 0 {
		t.Errorf("no issuer: %v, want none", got)
	}
	got := wantedCertificates(res, [2]*IssuerRef{ext, nil})
	if len(got) != 1 || got[ns+"/route-hello"] == nil || !slices.Equal(got[ns+"/route-hello"].hosts, []string{"hello.default.example.com", "v2-hello.default.example.com"}) {
		t.Errorf("external issuer: %+v", got)
	}
	got = wantedCertificates(res, [2]*IssuerRef{ext, local})
	if rc := got[ns+"/local-route-hello"]; len(got) != 2 || rc == nil || rc.issuer != local || !slices.Equal(rc.hosts, []string{"hello.default.svc.cluster.local"}) {
		t.Errorf("both issuers: %+v", got)
	}
}

// A Ready Certificate's Secret serves the hosts it names; one not Ready
// serves none and says so.
func TestCertificateSecrets(t *testing.T) {
	wanted := wantedCertificates(tlsRouteResult(), [2]*IssuerRef{{Name: "ca", Kind: "ClusterIssuer", Group: "cert-manager.io"}})
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
	wanted := wantedCertificates(tlsRouteResult(), [2]*IssuerRef{issuer})
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
