package pki

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func newCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA("test", t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func issue(t *testing.T, ca *CA, id Identity, now time.Time, life time.Duration) *Bundle {
	t.Helper()
	b, err := ca.Issue(Request{Identity: id, Now: now, Lifetime: life, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIdentityCheckAndMatch(t *testing.T) {
	for _, tc := range []struct {
		id      Identity
		err     string
		matches []string
		not     []string
	}{
		{id: Identity{Gateway, "gw-1"}, matches: []string{"gw-1"}, not: []string{"gw-12", "", "gw"}},
		{id: Identity{Gateway, "kgate-gateway-*"}, matches: []string{"kgate-gateway-abc", "kgate-gateway-"}, not: []string{"kgate-gatewa", "x-kgate-gateway-a"}},
		{id: Identity{"root", "x"}, err: `unknown role "root"`},
		{id: Identity{Gateway, ""}, err: "needs an id"},
		{id: Identity{Gateway, "a/b"}, err: "must not contain"},
		{id: Identity{Gateway, "a*b"}, err: "may only end it"},
	} {
		t.Run(tc.id.String(), func(t *testing.T) {
			err := tc.id.Check()
			if (err != nil) != (tc.err != "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("Check() = %v, want %q", err, tc.err)
			}
			for _, n := range tc.matches {
				if !tc.id.Matches(n) {
					t.Errorf("Matches(%q) = false", n)
				}
			}
			for _, n := range tc.not {
				if tc.id.Matches(n) {
					t.Errorf("Matches(%q) = true", n)
				}
			}
		})
	}
}

func TestIssueCarriesTheIdentity(t *testing.T) {
	ca := newCA(t)
	id := Identity{Activator, "kgate-activator-*"}
	b := issue(t, ca, id, t0, time.Hour)
	if b.Identity() != id {
		t.Errorf("Identity() = %v, want %v", b.Identity(), id)
	}
	if got := b.Certificate().Leaf.URIs[0].String(); got != "spiffe://kgate.internal/activator/kgate-activator-*" {
		t.Errorf("URI SAN = %q", got)
	}
	if !b.NotAfter().Equal(t0.Add(time.Hour)) {
		t.Errorf("NotAfter = %v, want %v", b.NotAfter(), t0.Add(time.Hour))
	}
	// A certificate from another CA does not chain.
	if _, err := NewBundle(b.CertPEM, b.KeyPEM, newCA(t).CertPEM()); err == nil || !strings.Contains(err.Error(), "does not chain") {
		t.Errorf("NewBundle with a foreign CA = %v, want a chain error", err)
	}
	// Never past the CA's own expiry.
	short, err := NewCA("short", t0, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if b := issue(t, short, id, t0, 0); !b.NotAfter().Equal(short.NotAfter()) {
		t.Errorf("NotAfter = %v, want the CA's %v", b.NotAfter(), short.NotAfter())
	}
}

// TestKeysStayOutOfLogsAndPrints: every way a bundle or a CA is printed or
// logged leaves the private key out.
func TestKeysStayOutOfLogsAndPrints(t *testing.T) {
	ca := newCA(t)
	b := issue(t, ca, Identity{Gateway, "gw"}, t0, 0)
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	log.Info("bundle", "b", b, "ca", ca)
	log.Info("text", "b", fmt.Sprint(b), "v", fmt.Sprintf("%v %+v %#v %s", b, b, b, ca))
	out := logs.String()
	for _, secret := range [][]byte{b.KeyPEM, ca.KeyPEM()} {
		for _, line := range strings.Split(string(secret), "\n")[1:3] {
			if strings.Contains(out, line) {
				t.Fatalf("a private key line appears in the output:\n%s", out)
			}
		}
	}
	if strings.Contains(out, "PRIVATE KEY") {
		t.Fatalf("output mentions a private key:\n%s", out)
	}
}

func TestIssuerRenewsAtTwoThirds(t *testing.T) {
	ca := newCA(t)
	now := t0
	src := NewIssuer(func() *CA { return ca }, Request{Identity: Identity{Server, "s"}, Lifetime: 3 * time.Hour}, func() time.Time { return now })
	first, err := src.Bundle()
	if err != nil {
		t.Fatal(err)
	}
	now = t0.Add(time.Hour)
	if b, _ := src.Bundle(); b != first {
		t.Error("renewed after a third of its life")
	}
	now = t0.Add(2*time.Hour + time.Minute)
	second, _ := src.Bundle()
	if second == first || !second.NotAfter().After(first.NotAfter()) {
		t.Errorf("not renewed past two thirds: %v, first %v", second.NotAfter(), first.NotAfter())
	}
}

func TestDirFollowsTheFiles(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	first := issue(t, ca, Identity{Gateway, "gw"}, t0, 0)
	if err := first.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v; want 0600", fi.Mode(), err)
	}
	src, err := NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	src.now = func() time.Time { return now }

	second := issue(t, ca, Identity{Gateway, "gw"}, t0.Add(time.Hour), 0)
	if err := second.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := src.Bundle(); !bytes.Equal(b.CertPEM, first.CertPEM) {
		t.Error("read the files again within a second")
	}
	now = now.Add(2 * time.Second)
	if b, _ := src.Bundle(); !bytes.Equal(b.CertPEM, second.CertPEM) {
		t.Error("did not pick up the new files")
	}
	// A broken write keeps the last good bundle, and says why.
	if err := os.WriteFile(filepath.Join(dir, CertFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Second)
	if b, _ := src.Bundle(); !bytes.Equal(b.CertPEM, second.CertPEM) {
		t.Error("a broken certificate file replaced the good bundle")
	}
	if src.Err() == nil {
		t.Error("Err() = nil after a broken certificate file")
	}
}

// TestHandshake: mutual TLS between ServerConfig and ClientConfig works
// for a client role and a server role, and fails for every other pairing.
func TestHandshake(t *testing.T) {
	ca := newCA(t)
	now := time.Now()
	server := Static{issue(t, ca, Identity{Server, "cp"}, now, 0)}
	gateway := Static{issue(t, ca, Identity{Gateway, "gw"}, now, 0)}
	foreign := Static{issue(t, newCA(t), Identity{Gateway, "gw"}, now, 0)}
	notServer := Static{issue(t, ca, Identity{Observer, "cp"}, now, 0)}

	for _, tc := range []struct {
		name           string
		server, client Source
		ok             bool
	}{
		{"gateway to server", server, gateway, true},
		{"client from another CA", server, foreign, false},
		{"server without the server role", notServer, gateway, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := handshake(t, ServerConfig(tc.server), ClientConfig(tc.client))
			if (err == nil) != tc.ok {
				t.Fatalf("handshake error = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	t.Run("no client certificate", func(t *testing.T) {
		cfg := ClientConfig(gateway)
		cfg.GetClientCertificate = nil
		if err := handshake(t, ServerConfig(server), cfg); err == nil {
			t.Fatal("a client without a certificate completed the handshake")
		}
	})
}

func handshake(t *testing.T, srv, cli *tls.Config) error {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	done := make(chan error, 1)
	go func() {
		s := tls.Server(a, srv)
		err := s.Handshake()
		if err == nil {
			// TLS 1.3 clients finish before the server checks their
			// certificate: a read surfaces the server's verdict.
			_, err = s.Write([]byte{1})
		}
		done <- err
		a.Close()
	}()
	c := tls.Client(b, cli)
	err := c.Handshake()
	if err == nil {
		_, err = c.Read(make([]byte, 1))
	}
	serr := <-done
	if err != nil {
		return err
	}
	return serr
}

// TestReadBundleBoundsItsFiles: a credentials file past 1 MiB is refused,
// not read whole.
func TestReadBundleBoundsItsFiles(t *testing.T) {
	dir := t.TempDir()
	if err := issue(t, newCA(t), Identity{Gateway, "gw"}, t0, 0).WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, CAFile), bytes.Repeat([]byte("x"), maxFileBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadBundle(dir); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("ReadBundle = %v, want the size refused", err)
	}
}
