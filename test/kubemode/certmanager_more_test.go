package kubemode

import (
	"context"
	"crypto/x509"
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
	"github.com/kgate/kgate/api/serving/v1beta1"
	"github.com/kgate/kgate/test/certmanager"
	kubesource "github.com/kgate/kgate/watcher/kube"
)

// startCertManagerCA starts cert-manager's controllers with a self-signed
// CA and its CA ClusterIssuer "ca", and creates config-autoscaler,
// config-network (external-domain-tls Enabled, and network's other keys)
// and config-certmanager naming "ca". It returns cert-manager and the CA's
// certificates, once issued.
func startCertManagerCA(ctx context.Context, t *testing.T, e *env, network map[string]string) (*certmanager.Manager, *x509.CertPool) {
	t.Helper()
	m := certmanager.Start(t, e.cluster)
	issuers := m.CM.CertmanagerV1().ClusterIssuers()
	if _, err := issuers.Create(ctx, &cmapi.ClusterIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: "selfsigned"},
		Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{SelfSigned: &cmapi.SelfSignedIssuer{}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.CM.CertmanagerV1().Certificates(certmanager.ClusterResourceNamespace).Create(ctx, &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Name: "test-ca"},
		Spec: cmapi.CertificateSpec{
			IsCA: true, CommonName: "kgate cert-manager test CA", SecretName: "test-ca",
			PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256},
			IssuerRef:  cmmeta.IssuerReference{Name: "selfsigned", Kind: cmapi.ClusterIssuerKind, Group: "cert-manager.io"},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := issuers.Create(ctx, &cmapi.ClusterIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: "ca"},
		Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{CA: &cmapi.CAIssuer{SecretName: "test-ca"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	net := map[string]string{"external-domain-tls": "Enabled"}
	for k, v := range network {
		net[k] = v
	}
	for _, o := range []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: "config-autoscaler"},
			Data: map[string]string{"allow-zero-initial-scale": "true"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: "config-network"}, Data: net},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: kubesource.ConfigCertManager},
			Data: map[string]string{"issuerRef": "kind: ClusterIssuer\nname: ca\ngroup: cert-manager.io\n"}},
	} {
		if err := e.client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	// The CA's Secret once its Certificate is Ready: before, it may hold
	// what cert-manager replaces.
	certificateReadyAt(ctx, e, m, certmanager.ClusterResourceNamespace, "test-ca")
	var caSecret corev1.Secret
	if err := e.client.Get(ctx, client.ObjectKey{Namespace: certmanager.ClusterResourceNamespace, Name: "test-ca"}, &caSecret); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(parsePEM(t, caSecret.Data[corev1.TLSCertKey]))
	return m, roots
}

// certificateReadyAt waits for the Certificate ns/name to be Ready, and
// returns it.
func certificateReadyAt(ctx context.Context, e *env, m *certmanager.Manager, ns, name string) *cmapi.Certificate {
	var crt *cmapi.Certificate
	e.eventually(60*time.Second, name+" Ready", func() error {
		var err error
		if crt, err = m.CM.CertmanagerV1().Certificates(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return err
		}
		if !apiutil.CertificateHasCondition(crt, cmapi.CertificateCondition{Type: cmapi.CertificateConditionReady, Status: cmmeta.ConditionTrue}) {
			return fmt.Errorf("conditions %+v", crt.Status.Conditions)
		}
		return nil
	})
	return crt
}

// servedIssued waits until the gateway holds, as host's secret, the
// certificate in Secret ns/secret, and checks it verifies for host against
// the CA.
func servedIssued(ctx context.Context, t *testing.T, e *env, gw *sdsGateway, roots *x509.CertPool, host, ns, secret string) {
	t.Helper()
	var issued corev1.Secret
	e.eventually(60*time.Second, host+"'s certificate from "+secret, func() error {
		if err := e.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: secret}, &issued); err != nil {
			return err
		}
		return gw.holds(host, issued.Data[corev1.TLSCertKey])
	})
	if _, err := parsePEM(t, issued.Data[corev1.TLSCertKey]).Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); err != nil {
		t.Errorf("the certificate served for %s does not verify against the CA: %v", host, err)
	}
}

// A DomainMapping without spec.tls gets a cert-manager Certificate named
// after its domain, owned by it; cert-manager issues it, the gateway serves
// its Secret for the domain, and the mapping's URL is https with
// CertificateProvisioned True.
func TestDomainMappingCertificateFromCertManager(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	// The mapping may claim its domain (the ClusterDomainClaim made for it).
	m, roots := startCertManagerCA(ctx, t, e, map[string]string{"autocreate-cluster-domain-claims": "true"})
	c, _ := e.startControllerWith(func(o *kubesource.Options) { o.StaleAfter = 2 * time.Second })
	e.kubelet(ctx)
	const domain = "hello.example.org"
	gw := e.connectSDSGateway(c.XDSAddr().String(), "dm-certmanager", domain)
	created := time.Now()
	createService(t, e, "hello")
	dm := &v1beta1.DomainMapping{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: domain},
		Spec:       v1beta1.DomainMappingSpec{Ref: v1beta1.KReference{APIVersion: servingv1.APIVersion, Kind: servingv1.KindService, Name: "hello"}},
	}
	if err := e.client.Create(ctx, dm); err != nil {
		t.Fatal(err)
	}

	e.eventually(60*time.Second, "the mapping holds its domain", func() error {
		var got v1beta1.DomainMapping
		if err := e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: domain}, &got); err != nil {
			return err
		}
		for _, cond := range got.Status.Conditions {
			if cond.Type == v1beta1.ConditionDomainClaimed && cond.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("conditions %+v", got.Status.Conditions)
	})
	crt := certificateReadyAt(ctx, e, m, "default", domain)
	if !slices.Equal(crt.Spec.DNSNames, []string{domain}) || crt.Spec.SecretName != domain || crt.Spec.IssuerRef.Name != "ca" {
		t.Errorf("spec %+v, want the domain's, from ca", crt.Spec)
	}
	if crt.Labels[kubesource.LabelManagedBy] != "kgate" || crt.Labels[kubesource.LabelDomainMapping] != domain ||
		len(crt.OwnerReferences) != 1 || crt.OwnerReferences[0].Kind != v1beta1.KindDomainMapping || crt.OwnerReferences[0].APIVersion != v1beta1.APIVersion {
		t.Errorf("labels %v, owners %+v; want kgate's, owned by the DomainMapping", crt.Labels, crt.OwnerReferences)
	}
	servedIssued(ctx, t, e, gw, roots, domain, "default", domain)
	t.Logf("DomainMapping created to the issued certificate at the gateway: %s (setup %s)",
		time.Since(created).Round(time.Millisecond), created.Sub(start).Round(time.Millisecond))
	e.eventually(60*time.Second, "the mapping https with its certificate provisioned", func() error {
		var got v1beta1.DomainMapping
		if err := e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: domain}, &got); err != nil {
			return err
		}
		if got.Status.URL == nil || got.Status.URL.String() != "https://"+domain {
			return fmt.Errorf("URL %v", got.Status.URL)
		}
		for _, cond := range got.Status.Conditions {
			if cond.Type == v1beta1.ConditionCertificateProvisioned {
				if cond.Status != corev1.ConditionTrue || cond.Reason != "" {
					return fmt.Errorf("CertificateProvisioned %+v", cond)
				}
				return nil
			}
		}
		return fmt.Errorf("no CertificateProvisioned in %+v", got.Status.Conditions)
	})
}

// namespace-wildcard-cert-selector: the selected namespace gets one
// wildcard Certificate (Knative's name, <namespace>.<domain>), cert-manager
// issues it, the Route in it has no route-<name> Certificate, the gateway
// serves the wildcard's Secret for the Route's host, and the Route is
// https. Unselected, the namespace loses the wildcard and the Route gets
// its own.
func TestNamespaceWildcardCertificateFromCertManager(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	m, roots := startCertManagerCA(ctx, t, e, map[string]string{
		"namespace-wildcard-cert-selector": `{"matchLabels":{"kgate-test/wildcard":"yes"}}`,
	})
	setLabel := func(v string) {
		t.Helper()
		var n corev1.Namespace
		if err := e.client.Get(ctx, client.ObjectKey{Name: "default"}, &n); err != nil {
			t.Fatal(err)
		}
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels["kgate-test/wildcard"] = v
		if err := e.client.Update(ctx, &n); err != nil {
			t.Fatal(err)
		}
	}
	setLabel("yes")
	c, _ := e.startControllerWith(func(o *kubesource.Options) { o.StaleAfter = 2 * time.Second })
	e.kubelet(ctx)
	const host, wildcard = "hello.default.example.com", "default.example.com"
	gw := e.connectSDSGateway(c.XDSAddr().String(), "wildcard-certmanager", host)
	created := time.Now()
	createService(t, e, "hello")

	crt := certificateReadyAt(ctx, e, m, "default", wildcard)
	if !slices.Equal(crt.Spec.DNSNames, []string{"*.default.example.com"}) || crt.Spec.SecretName != wildcard {
		t.Errorf("spec %+v, want *.default.example.com", crt.Spec)
	}
	if len(crt.OwnerReferences) != 1 || crt.OwnerReferences[0].Kind != "Namespace" || crt.OwnerReferences[0].Name != "default" {
		t.Errorf("owners %+v, want the Namespace", crt.OwnerReferences)
	}
	servedIssued(ctx, t, e, gw, roots, host, "default", wildcard)
	t.Logf("Service created to the wildcard certificate at the gateway: %s (setup %s)",
		time.Since(created).Round(time.Millisecond), created.Sub(start).Round(time.Millisecond))
	e.eventually(60*time.Second, "the Route https with its certificate provisioned", func() error {
		return routeCertificate(ctx, e, "https://"+host, corev1.ConditionTrue, "")
	})
	certs := m.CM.CertmanagerV1().Certificates("default")
	if _, err := certs.Get(ctx, "route-hello", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("route-hello: %v, want none (the wildcard covers the Route)", err)
	}

	// No longer selected: the wildcard goes, the Route gets its own.
	setLabel("no")
	certificateReadyAt(ctx, e, m, "default", "route-hello")
	e.eventually(60*time.Second, "the wildcard deleted", func() error {
		if _, err := certs.Get(ctx, wildcard, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("%s: %v", wildcard, err)
		}
		return nil
	})
	servedIssued(ctx, t, e, gw, roots, host, "default", "route-hello")
}
