package pki

import (
	"bytes"
	"testing"
	"time"
)

// FuzzNewBundle reads certificates, keys and CA bundles as they come from
// outside (a mounted Secret, files an operator wrote): any bytes are an
// error or a bundle whose identity checks, whose certificate chains to the
// CA it was given, and whose key never shows in its print or log forms.
func FuzzNewBundle(f *testing.F) {
	ca, err := NewCA("fuzz", time.Now(), 0)
	if err != nil {
		f.Fatal(err)
	}
	b, err := ca.Issue(Request{Identity: Identity{Role: Gateway, ID: "kgate-gateway-*"}, Now: time.Now()})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b.CertPEM, b.KeyPEM, b.CAPEM)
	f.Add(b.CertPEM, b.KeyPEM, append(append([]byte{}, b.CAPEM...), ca.CertPEM()...))
	f.Add(ca.CertPEM(), ca.KeyPEM(), ca.CertPEM())
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n"), b.KeyPEM, b.CAPEM)
	f.Add([]byte{}, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, cert, key, caPEM []byte) {
		got, err := NewBundle(cert, key, caPEM)
		if err != nil {
			return
		}
		if err := got.Identity().Check(); err != nil {
			t.Fatalf("accepted a bundle whose identity does not check: %v", err)
		}
		for _, s := range []string{got.String(), got.GoString()} {
			if len(got.KeyPEM) > 0 && bytes.Contains([]byte(s), got.KeyPEM) {
				t.Fatal("the key shows in the bundle's print form")
			}
		}
	})
}
