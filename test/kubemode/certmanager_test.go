package kubemode

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/test/certmanager"
	"github.com/kgate/kgate/watcher/knative"
	kubesource "github.com/kgate/kgate/watcher/kube"
)

// HTTPS with cert-manager: config-certmanager names a CA ClusterIssuer,
// kgate creates the Certificate route-hello for a new Service's host,
// cert-manager's own controllers issue it, and the gateway receives the
// host's SDS secret, a certificate for the host that chains to the CA; the
// Route's URL is https and its CertificateProvisioned condition True.
func TestHTTPSCertificatesFromCertManager(t *testing.T) {
	e := newEnv(t)
	m := certmanager.Start(t, e.cluster)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()

	// A self-signed CA in cert-manager's cluster resource namespace, and a
	// CA ClusterIssuer of it.
	_, err := m.CM.CertmanagerV1().ClusterIssuers().Create(ctx, &cmapi.ClusterIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: "selfsigned"},
		Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{SelfSigned: &cmapi.SelfSignedIssuer{}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.CM.CertmanagerV1().Certificates(certmanager.ClusterResourceNamespace).Create(ctx, &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Name: "test-ca"},
		Spec: cmapi.CertificateSpec{
			IsCA: true, CommonName: "kgate cert-manager test CA", SecretName: "test-ca",
			PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256},
			IssuerRef:  cmmeta.IssuerReference{Name: "selfsigned", Kind: cmapi.ClusterIssuerKind, Group: "cert-manager.io"},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: "config-autoscaler"},
			Data: map[string]string{"allow-zero-initial-scale": "true"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: "config-network"},
			Data: map[string]string{"external-domain-tls": "Enabled"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: kubesource.ConfigCertManager},
			Data: map[string]string{"issuerRef": "kind: ClusterIssuer\nname: ca\ngroup: cert-manager.io\n"}},
	} {
		if err := e.client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	c, _ := e.startControllerWith(func(o *kubesource.Options) { o.StaleAfter = 2 * time.Second })
	e.kubelet(ctx)
	const host = "hello.default.example.com"
	gw := e.connectSDSGateway(c.XDSAddr().String(), "certmanager", host)
	created := time.Now()
	createService(t, e, "hello")

	certs := m.CM.CertmanagerV1().Certificates("default")
	var crt *cmapi.Certificate
	e.eventually(60*time.Second, "kgate's Certificate route-hello", func() error {
		crt, err = certs.Get(ctx, "route-hello", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !slices.Equal(crt.Spec.DNSNames, []string{host}) || crt.Spec.SecretName != "route-hello" ||
			crt.Spec.IssuerRef.Name != "ca" || crt.Spec.IssuerRef.Kind != cmapi.ClusterIssuerKind {
			return fmt.Errorf("spec %+v", crt.Spec)
		}
		return nil
	})
	if crt.Labels[kubesource.LabelManagedBy] != "kgate" || len(crt.OwnerReferences) != 1 || crt.OwnerReferences[0].Kind != servingv1.KindRoute {
		t.Errorf("route-hello: labels %v, owners %+v; want kgate's, owned by the Route", crt.Labels, crt.OwnerReferences)
	}
	// The issuer "ca" does not exist yet: while the certificate is issued,
	// the Route is served over plain HTTP (http-protocol Enabled), as
	// Knative downgrades it, and says so.
	e.eventually(60*time.Second, "the Route downgraded to http while its certificate is issued", func() error {
		return routeCertificate(ctx, e, "http://"+host, corev1.ConditionTrue, "HTTPDowngrade")
	})
	_, err = m.CM.CertmanagerV1().ClusterIssuers().Create(ctx, &cmapi.ClusterIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: "ca"},
		Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{CA: &cmapi.CAIssuer{SecretName: "test-ca"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.eventually(60*time.Second, "route-hello Ready", func() error {
		crt, err = certs.Get(ctx, "route-hello", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !apiutil.CertificateHasCondition(crt, cmapi.CertificateCondition{Type: cmapi.CertificateConditionReady, Status: cmmeta.ConditionTrue}) {
			return fmt.Errorf("conditions %+v", crt.Status.Conditions)
		}
		return nil
	})
	var issued corev1.Secret
	e.eventually(60*time.Second, "the host's secret from cert-manager", func() error {
		if err := e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "route-hello"}, &issued); err != nil {
			return err
		}
		return gw.holds(host, issued.Data[corev1.TLSCertKey])
	})
	t.Logf("Service created to the issued certificate at the gateway: %s (setup %s)",
		time.Since(created).Round(time.Millisecond), created.Sub(start).Round(time.Millisecond))

	var caSecret corev1.Secret
	if err := e.client.Get(ctx, client.ObjectKey{Namespace: certmanager.ClusterResourceNamespace, Name: "test-ca"}, &caSecret); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(parsePEM(t, caSecret.Data[corev1.TLSCertKey]))
	if _, err := parsePEM(t, issued.Data[corev1.TLSCertKey]).Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); err != nil {
		t.Errorf("the served certificate does not verify for %s against the issuer's CA: %v", host, err)
	}

	e.eventually(60*time.Second, "the Route https with its certificate provisioned", func() error {
		return routeCertificate(ctx, e, "https://"+host, corev1.ConditionTrue, "")
	})
	e.eventually(60*time.Second, "Service hello Ready", func() error { return serviceReady(ctx, e, "hello") })

	// A bad issuerRef keeps the last good one; a new issuer re-issues the
	// certificate, and the host keeps the old one until the new is Ready.
	ca2 := &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Name: "test-ca2"},
		Spec: cmapi.CertificateSpec{
			IsCA: true, CommonName: "kgate cert-manager test CA 2", SecretName: "test-ca2",
			PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256},
			IssuerRef:  cmmeta.IssuerReference{Name: "selfsigned", Kind: cmapi.ClusterIssuerKind, Group: "cert-manager.io"},
		},
	}
	if _, err := m.CM.CertmanagerV1().Certificates(certmanager.ClusterResourceNamespace).Create(ctx, ca2, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.CM.CertmanagerV1().ClusterIssuers().Create(ctx, &cmapi.ClusterIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: "ca2"},
		Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{CA: &cmapi.CAIssuer{SecretName: "test-ca2"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	setIssuer := func(v string) {
		t.Helper()
		var cm corev1.ConfigMap
		if err := e.client.Get(ctx, client.ObjectKey{Namespace: systemNamespace, Name: kubesource.ConfigCertManager}, &cm); err != nil {
			t.Fatal(err)
		}
		cm.Data["issuerRef"] = v
		if err := e.client.Update(ctx, &cm); err != nil {
			t.Fatal(err)
		}
	}
	setIssuer("kind: NotAnIssuer\nname: ca2\n")
	time.Sleep(time.Second) // rounds run: none changes the Certificate
	if crt, err = certs.Get(ctx, "route-hello", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if crt.Spec.IssuerRef.Name != "ca" {
		t.Errorf("after a bad issuerRef the Certificate's issuer is %q, want ca kept", crt.Spec.IssuerRef.Name)
	}
	e.eventually(60*time.Second, "test-ca2 Ready", func() error {
		var sec corev1.Secret
		return e.client.Get(ctx, client.ObjectKey{Namespace: certmanager.ClusterResourceNamespace, Name: "test-ca2"}, &sec)
	})
	setIssuer("kind: ClusterIssuer\nname: ca2\n")
	var gaps int
	e.eventually(60*time.Second, "the host's certificate from ca2", func() error {
		gw.mu.Lock()
		have := gw.certs[host]
		gw.mu.Unlock()
		if have == nil {
			gaps++
			return fmt.Errorf("the host has no certificate")
		}
		var sec corev1.Secret
		if err := e.client.Get(ctx, client.ObjectKey{Namespace: certmanager.ClusterResourceNamespace, Name: "test-ca2"}, &sec); err != nil {
			return err
		}
		roots := x509.NewCertPool()
		roots.AddCert(parsePEM(t, sec.Data[corev1.TLSCertKey]))
		if _, err := parsePEM(t, have).Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); err != nil {
			return fmt.Errorf("not yet from ca2: %v", err)
		}
		return nil
	})
	if gaps > 0 {
		t.Errorf("the host was without a certificate during the re-issue (%d polls)", gaps)
	}

	// The Route gone (no garbage collector here: kgate prunes it), its
	// Certificate goes too.
	svc := &servingv1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hello"}}
	if err := e.client.Delete(ctx, svc); err != nil {
		t.Fatal(err)
	}
	e.eventually(60*time.Second, "route-hello deleted with its Route", func() error {
		if _, err := certs.Get(ctx, "route-hello", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("route-hello: %v", err)
		}
		return nil
	})
}

func parsePEM(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatal("no PEM certificate")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// routeCertificate checks the Route hello's URL and its
// CertificateProvisioned condition.
func routeCertificate(ctx context.Context, e *env, url string, status corev1.ConditionStatus, reason string) error {
	var rt servingv1.Route
	if err := e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "hello"}, &rt); err != nil {
		return err
	}
	if rt.Status.URL == nil || rt.Status.URL.String() != url {
		return fmt.Errorf("URL %v, want %s", rt.Status.URL, url)
	}
	for _, c := range rt.Status.Conditions {
		if c.Type == knative.ConditionCertificateProvisioned {
			if c.Status != status || c.Reason != reason {
				return fmt.Errorf("CertificateProvisioned %+v, want %s %s", c, status, reason)
			}
			return nil
		}
	}
	return fmt.Errorf("no CertificateProvisioned condition in %+v", rt.Status.Conditions)
}
