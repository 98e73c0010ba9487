package main

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/kgate/kgate/localstate"
)

// fakeSecrets records what localHTTPS pushes.
type fakeSecrets struct {
	mu      sync.Mutex
	secrets map[string]*tlsv3.Secret
	pushes  []string
}

func (f *fakeSecrets) SetSecret(s *tlsv3.Secret) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secrets[s.GetName()] = s
	f.pushes = append(f.pushes, "set "+s.GetName())
	return nil
}

func (f *fakeSecrets) DeleteSecret(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.secrets, name)
	f.pushes = append(f.pushes, "delete "+name)
	return nil
}

// The local CA is made once and kept (across --reset too); each host
// served over TLS gets a certificate from it, renewed at two thirds of its
// life, withdrawn when the host goes.
func TestLocalHTTPS(t *testing.T) {
	dir := t.TempDir()
	store, err := localstate.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	out := &fakeSecrets{secrets: map[string]*tlsv3.Secret{}}
	l, err := newLocalHTTPS(slog.New(slog.DiscardHandler), store, out)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, httpsCAFile))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	l.now = func() time.Time { return now }

	l.sync([]string{"a.example.com", "b.example.com"})
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	for _, host := range []string{"a.example.com", "b.example.com"} {
		s := out.secrets[host]
		pair, err := tls.X509KeyPair(s.GetTlsCertificate().GetCertificateChain().GetInlineBytes(), s.GetTlsCertificate().GetPrivateKey().GetInlineBytes())
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		if _, err := pair.Leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); err != nil {
			t.Errorf("%s does not verify against ca.crt: %v", host, err)
		}
	}
	out.pushes = nil
	l.sync([]string{"a.example.com", "b.example.com"})
	if len(out.pushes) != 0 {
		t.Errorf("an unchanged sync pushed %v", out.pushes)
	}
	now = now.Add(61 * 24 * time.Hour) // past two thirds of 90 days
	l.sync([]string{"a.example.com"})
	if want := []string{"set a.example.com", "delete b.example.com"}; !slices.Equal(out.pushes, want) {
		t.Errorf("pushes %v, want %v", out.pushes, want)
	}

	// A restart (--reset too) keeps the CA.
	if err := store.Reset(); err != nil {
		t.Fatal(err)
	}
	if _, err := newLocalHTTPS(slog.New(slog.DiscardHandler), store, out); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(filepath.Join(dir, httpsCAFile))
	if string(again) != string(caPEM) {
		t.Error("the CA changed across a restart and --reset")
	}
}
