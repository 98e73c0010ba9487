package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// File names of a bundle on disk: the keys of a kubernetes.io/tls Secret,
// which is how Kubernetes mounts one.
const (
	CAFile   = "ca.crt"
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
)

// Bundle is one workload's credentials: its certificate and key, and the
// CA certificates it trusts.
type Bundle struct {
	CertPEM, KeyPEM, CAPEM []byte

	pair     tls.Certificate
	identity Identity
	roots    *x509.CertPool
}

// NewBundle checks and parses a bundle's PEM parts: the key must match the
// certificate, which must name a kgate identity and chain to caPEM.
func NewBundle(certPEM, keyPEM, caPEM []byte) (*Bundle, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("reading the certificate and key: %w", err)
	}
	ident, err := IdentityOf(pair.Leaf)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("reading the CA certificates: no PEM certificate found")
	}
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{
		Roots: roots, CurrentTime: pair.Leaf.NotBefore.Add(time.Second), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, fmt.Errorf("the certificate of %s does not chain to the CA: %w", ident, err)
	}
	return &Bundle{CertPEM: certPEM, KeyPEM: keyPEM, CAPEM: caPEM, pair: pair, identity: ident, roots: roots}, nil
}

// maxFileBytes bounds each credentials file read: a Kubernetes Secret
// holds at most 1 MiB in all, and a certificate chain is a few KiB.
const maxFileBytes = 1 << 20

// ReadBundle reads a bundle from a folder holding CAFile, CertFile and
// KeyFile, each at most 1 MiB.
func ReadBundle(dir string) (*Bundle, error) {
	var parts [3][]byte
	for i, name := range []string{CertFile, KeyFile, CAFile} {
		b, err := readBounded(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("reading credentials: %w", err)
		}
		parts[i] = b
	}
	b, err := NewBundle(parts[0], parts[1], parts[2])
	if err != nil {
		return nil, fmt.Errorf("reading credentials in %s: %w", dir, err)
	}
	return b, nil
}

// readBounded reads a file of at most maxFileBytes.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxFileBytes)
	}
	return b, nil
}

// WriteFiles writes the bundle into dir (created if needed) as CAFile,
// CertFile and KeyFile, readable by the owner only. Each file is replaced
// atomically, so a reader sees the old or the new one.
func (b *Bundle) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("writing credentials: %w", err)
	}
	for name, data := range map[string][]byte{CAFile: b.CAPEM, CertFile: b.CertPEM, KeyFile: b.KeyPEM} {
		tmp, err := os.CreateTemp(dir, "."+name+"-")
		if err != nil {
			return fmt.Errorf("writing credentials: %w", err)
		}
		_, werr := tmp.Write(data)
		cerr := tmp.Close()
		if err := errors.Join(werr, cerr); err != nil {
			os.Remove(tmp.Name())
			return fmt.Errorf("writing %s: %w", name, err)
		}
		if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
			os.Remove(tmp.Name())
			return fmt.Errorf("writing %s: %w", name, err)
		}
	}
	return nil
}

// Identity is who the bundle's certificate names.
func (b *Bundle) Identity() Identity { return b.identity }

// Certificate is the bundle's certificate and key, for a tls.Config.
func (b *Bundle) Certificate() *tls.Certificate { return &b.pair }

// Roots are the CA certificates the bundle trusts.
func (b *Bundle) Roots() *x509.CertPool { return b.roots }

// NotAfter is when the certificate expires.
func (b *Bundle) NotAfter() time.Time { return b.pair.Leaf.NotAfter }

// NotBefore is when the certificate starts to be valid.
func (b *Bundle) NotBefore() time.Time { return b.pair.Leaf.NotBefore }

// LogValue keeps the key out of logs.
func (b *Bundle) LogValue() slog.Value {
	return slog.GroupValue(slog.String("identity", b.identity.String()), slog.Time("not_after", b.NotAfter()))
}

// String keeps the key out of prints.
func (b *Bundle) String() string { return "credentials of " + b.identity.String() }

// GoString keeps the key out of %#v.
func (b *Bundle) GoString() string { return b.String() }
