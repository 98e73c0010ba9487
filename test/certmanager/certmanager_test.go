package certmanager_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"

	"github.com/kgate/kgate/test/certmanager"
	"github.com/kgate/kgate/test/kube"
)

const (
	ns   = "default"
	host = "hello.default.example.com"
)

// TestCAIssuerIssuesAndRenews: a SelfSigned Issuer signs a CA Certificate,
// a CA Issuer uses its Secret and issues a Certificate for a host, which a
// manual renewal (cmctl renew's Issuing condition) replaces.
func TestCAIssuerIssuesAndRenews(t *testing.T) {
	kube.Require(t)
	start := time.Now()
	m := certmanager.Start(t, kube.Start(t))
	t.Logf("API server, CRDs and controllers up in %s", time.Since(start).Round(time.Millisecond))
	ctx := context.Background()
	if _, err := m.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	issuers := m.CM.CertmanagerV1().Issuers(ns)
	certs := m.CM.CertmanagerV1().Certificates(ns)

	_, err := issuers.Create(ctx, &cmapi.Issuer{
		ObjectMeta: metav1.ObjectMeta{Name: "selfsigned"},
		Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{SelfSigned: &cmapi.SelfSignedIssuer{}}},
	}, metav1.CreateOptions{})
	noErr(t, err)
	_, err = certs.Create(ctx, &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Name: "test-ca"},
		Spec: cmapi.CertificateSpec{
			IsCA:       true,
			CommonName: "kgate test CA",
			SecretName: "test-ca",
			PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256},
			IssuerRef:  cmmeta.IssuerReference{Name: "selfsigned", Kind: cmapi.IssuerKind, Group: "cert-manager.io"},
		},
	}, metav1.CreateOptions{})
	noErr(t, err)
	_, err = issuers.Create(ctx, &cmapi.Issuer{
		ObjectMeta: metav1.ObjectMeta{Name: "ca"},
		Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{CA: &cmapi.CAIssuer{SecretName: "test-ca"}}},
	}, metav1.CreateOptions{})
	noErr(t, err)
	_, err = certs.Create(ctx, &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Name: "hello"},
		Spec: cmapi.CertificateSpec{
			DNSNames:   []string{host},
			SecretName: "hello-tls",
			PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256},
			IssuerRef:  cmmeta.IssuerReference{Name: "ca", Kind: cmapi.IssuerKind, Group: "cert-manager.io"},
		},
	}, metav1.CreateOptions{})
	noErr(t, err)

	issue := time.Now()
	waitReady(t, m, "test-ca")
	waitReady(t, m, "hello")
	t.Logf("CA and host Certificates Ready in %s", time.Since(issue).Round(time.Millisecond))

	ca := secretCert(t, m, "test-ca", "tls.crt")
	if !ca.IsCA {
		t.Fatalf("test-ca's certificate is not a CA")
	}
	leaf := verify(t, m, ca)

	// Renew as cmctl renew does: the Issuing condition, ManuallyTriggered.
	// cert-manager's controllers may still be writing the Certificate's
	// status: on a conflict, read it again and retry, as cmctl does.
	renew := time.Now()
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		crt, err := certs.Get(ctx, "hello", metav1.GetOptions{})
		if err != nil {
			return err
		}
		apiutil.SetCertificateCondition(crt, crt.Generation, cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue, "ManuallyTriggered", "renewal by the test")
		_, err = certs.UpdateStatus(ctx, crt, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	poll(t, 60*time.Second, "a renewed certificate in hello-tls", func() error {
		c := secretCert(t, m, "hello-tls", "tls.crt")
		if c.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
			return fmt.Errorf("still serial %s", c.SerialNumber)
		}
		return nil
	})
	waitReady(t, m, "hello")
	renewed := verify(t, m, ca)
	if bytes.Equal(renewed.RawSubjectPublicKeyInfo, leaf.RawSubjectPublicKeyInfo) {
		t.Errorf("the renewed certificate kept its key (rotationPolicy Always rotates it)")
	}
	t.Logf("renewed in %s (serial %s -> %s)", time.Since(renew).Round(time.Millisecond), leaf.SerialNumber, renewed.SerialNumber)
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// verify checks hello-tls: a certificate for host signed by ca, with its key
// and the CA in ca.crt; it returns the leaf.
func verify(t *testing.T, m *certmanager.Manager, ca *x509.Certificate) *x509.Certificate {
	t.Helper()
	s, err := m.Kube.CoreV1().Secrets(ns).Get(context.Background(), "hello-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Type != corev1.SecretTypeTLS || len(s.Data["tls.key"]) == 0 {
		t.Fatalf("hello-tls: type %s, %d bytes of key", s.Type, len(s.Data["tls.key"]))
	}
	if got := parseCert(t, s.Data["ca.crt"]); !got.Equal(ca) {
		t.Errorf("hello-tls's ca.crt is %s, not the test CA", got.Subject)
	}
	leaf := parseCert(t, s.Data["tls.crt"])
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); err != nil {
		t.Fatalf("hello-tls does not verify for %s against the CA: %v", host, err)
	}
	return leaf
}

func secretCert(t *testing.T, m *certmanager.Manager, name, key string) *x509.Certificate {
	t.Helper()
	s, err := m.Kube.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return parseCert(t, s.Data[key])
}

func parseCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("no PEM in %q", data)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitReady(t *testing.T, m *certmanager.Manager, name string) {
	t.Helper()
	poll(t, 60*time.Second, "Certificate "+name+" Ready", func() error {
		crt, err := m.CM.CertmanagerV1().Certificates(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !apiutil.CertificateHasCondition(crt, cmapi.CertificateCondition{Type: cmapi.CertificateConditionReady, Status: cmmeta.ConditionTrue}) ||
			apiutil.CertificateHasCondition(crt, cmapi.CertificateCondition{Type: cmapi.CertificateConditionIssuing, Status: cmmeta.ConditionTrue}) {
			return fmt.Errorf("conditions %+v", crt.Status.Conditions)
		}
		return nil
	})
}

func poll(t *testing.T, within time.Duration, what string, check func() error) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, within, true, func(context.Context) (bool, error) {
		last = check()
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("%s: not within %s: %v", what, within, last)
	}
}
