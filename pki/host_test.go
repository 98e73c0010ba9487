package pki

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"
)

// A host certificate verifies as a web client checks it: by DNS name,
// chained to the CA, for server authentication.
func TestIssueHost(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("kgate local HTTPS", now, 0)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueHost([]string{"hello.default.127.0.0.1.nip.io"}, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.CertPEM())
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{DNSName: "hello.default.127.0.0.1.nip.io", Roots: roots}); err != nil {
		t.Errorf("verifying as a web client: %v", err)
	}
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{DNSName: "other.example.com", Roots: roots}); err == nil {
		t.Error("the certificate verifies for another host")
	}
	if got := pair.Leaf.NotAfter.Sub(now); got < DefaultHostLifetime-time.Minute || got > DefaultHostLifetime+time.Minute {
		t.Errorf("lifetime %s, want %s", got, DefaultHostLifetime)
	}
	if _, _, err := ca.IssueHost(nil, now, 0); err == nil {
		t.Error("no error for no host")
	}
}
