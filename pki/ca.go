package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"time"
)

// Defaults of certificate lifetimes.
const (
	// DefaultCALifetime is a CA's life: long, since replacing a CA means
	// every client must trust the new one first.
	DefaultCALifetime = 10 * 365 * 24 * time.Hour
	// DefaultLifetime is a workload certificate's life: short enough that a
	// leaked key stops working within days, long enough that a controller
	// down for a weekend does not stop the data plane.
	DefaultLifetime = 30 * 24 * time.Hour
	// backdate covers clocks a little behind ours.
	backdate = 5 * time.Minute
)

// CA is a certificate authority: it signs workload certificates.
type CA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
	keyPEM  []byte
	// trust is what issued bundles trust: this CA, and during a CA
	// rotation the one before it.
	trust []byte
}

// NewCA returns a new self-signed CA named name, valid from now for
// lifetime (DefaultCALifetime when zero).
func NewCA(name string, now time.Time, lifetime time.Duration) (*CA, error) {
	if lifetime <= 0 {
		lifetime = DefaultCALifetime
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"kgate"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("signing the CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding the CA key: %w", err)
	}
	return LoadCA(pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", keyDER))
}

// LoadCA reads a CA from its PEM certificate and key, as NewCA's CertPEM
// and KeyPEM give them (a kubernetes.io/tls Secret's tls.crt and tls.key).
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("reading the CA: %w", err)
	}
	cert := pair.Leaf
	if !cert.IsCA {
		return nil, errors.New("reading the CA: the certificate is not a CA")
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("reading the CA: the key cannot sign")
	}
	return &CA{cert: cert, key: signer, certPEM: certPEM, keyPEM: keyPEM, trust: certPEM}, nil
}

// Trusting returns the CA with extra CA certificates (PEM) added to what
// the bundles it issues trust: the previous CA while clients still hold
// certificates it signed.
func (ca *CA) Trusting(extra []byte) *CA {
	c := *ca
	c.trust = append(append([]byte{}, ca.certPEM...), extra...)
	return &c
}

// TrustPEM is what the bundles it issues trust (see Trusting).
func (ca *CA) TrustPEM() []byte { return ca.trust }

// CertPEM is the CA certificate, what clients trust.
func (ca *CA) CertPEM() []byte { return ca.certPEM }

// KeyPEM is the CA's private key, for storing the CA; never log it.
func (ca *CA) KeyPEM() []byte { return ca.keyPEM }

// NotAfter is when the CA expires.
func (ca *CA) NotAfter() time.Time { return ca.cert.NotAfter }

// LogValue keeps the key out of logs.
func (ca *CA) LogValue() slog.Value {
	return slog.GroupValue(slog.String("subject", ca.cert.Subject.CommonName), slog.Time("not_after", ca.cert.NotAfter))
}

// String keeps the key out of prints.
func (ca *CA) String() string { return "CA " + ca.cert.Subject.CommonName }

// Request is what a certificate is issued for.
type Request struct {
	Identity Identity
	// DNSNames and IPs are extra SANs, for servers that clients reach by
	// name or address.
	DNSNames []string
	IPs      []net.IP
	// Now and Lifetime bound its validity (DefaultLifetime when zero;
	// never past the CA's own expiry).
	Now      time.Time
	Lifetime time.Duration
}

// Issue signs a new key pair for r.
func (ca *CA) Issue(r Request) (*Bundle, error) {
	if err := r.Identity.Check(); err != nil {
		return nil, fmt.Errorf("issuing a certificate: %w", err)
	}
	if r.Lifetime <= 0 {
		r.Lifetime = DefaultLifetime
	}
	notAfter := r.Now.Add(r.Lifetime)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating a key for %s: %w", r.Identity, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: r.Identity.String(), Organization: []string{"kgate"}},
		NotBefore:    r.Now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		URIs:         []*url.URL{r.Identity.URI()},
		DNSNames:     r.DNSNames,
		IPAddresses:  r.IPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("signing a certificate for %s: %w", r.Identity, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding the key of %s: %w", r.Identity, err)
	}
	return NewBundle(pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", keyDER), ca.trust)
}

func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("choosing a serial number: %w", err)
	}
	return n, nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
