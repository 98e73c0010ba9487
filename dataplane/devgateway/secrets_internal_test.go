package devgateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	sniv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/cert_mappers/sni/v3"
	ondemandv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/cert_selectors/on_demand_secret/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/pki"
)

// onDemandTLS is the TLS context the translator gives its HTTPS listeners.
func onDemandTLS(t *testing.T) *tlsv3.DownstreamTlsContext {
	return &tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
		TlsParams:     &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2},
		AlpnProtocols: []string{"h2", "http/1.1"},
		CustomTlsCertificateSelector: onDemandSelector(t, &corev3.ConfigSource{
			ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		}),
	}}
}

func onDemandSelector(t *testing.T, src *corev3.ConfigSource) *corev3.TypedExtensionConfig {
	return &corev3.TypedExtensionConfig{Name: onDemandSecretSelector, TypedConfig: mustAny(t, &ondemandv3.Config{
		ConfigSource: src,
		CertificateMapper: &corev3.TypedExtensionConfig{Name: sniCertificateMapper,
			TypedConfig: mustAny(t, &sniv3.SNI{DefaultValue: "default-cert"})},
	})}
}

// subscriptions records what a store subscribes to, in order.
type subscriptions struct {
	mu  sync.Mutex
	ops []string
}

func (s *subscriptions) Subscribe(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		s.ops = append(s.ops, "+"+n)
	}
}

func (s *subscriptions) Unsubscribe(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		s.ops = append(s.ops, "-"+n)
	}
}

// take returns the operations since the last take.
func (s *subscriptions) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ops := s.ops
	s.ops = nil
	return ops
}

// testCerts issues certificates for the tests.
type testCerts struct {
	t  *testing.T
	ca *pki.CA
}

func newTestCerts(t *testing.T) testCerts {
	ca, err := pki.NewCA("test", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return testCerts{t, ca}
}

// secret is an SDS secret holding a certificate for host.
func (c testCerts) secret(name, host string) *tlsv3.Secret {
	b, err := c.ca.Issue(pki.Request{Identity: pki.Identity{Role: pki.Gateway, ID: "edge"}, DNSNames: []string{host}, Now: time.Now()})
	if err != nil {
		c.t.Fatal(err)
	}
	return &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b.CertPEM}},
		PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b.KeyPEM}},
	}}}
}

// versioned is an update of secrets at version.
func versioned(version string, secrets ...*tlsv3.Secret) xdsclient.Update {
	u := xdsclient.Update{}
	for _, s := range secrets {
		u.Resources = append(u.Resources, xdsclient.Resource{Name: s.GetName(), Version: version, Message: s})
	}
	return u
}

// testStore is a store of at most maxNames names, perMinute new ones a
// minute, on a clock the test moves.
func testStore(maxNames, perMinute int) (*certStore, *subscriptions, *time.Time) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newCertStore(slog.New(slog.DiscardHandler), maxNames, perMinute)
	subs := &subscriptions{}
	s.sub, s.now = subs, func() time.Time { return now }
	s.tokens, s.refilled = s.perMinute, now
	return s, subs, &now
}

const noWait = time.Millisecond

// What a client's SNI can make the gateway subscribe to is bounded: names
// that cannot name a certificate are refused outright, new names are
// rate-limited, and the names held are capped, the least useful evicted
// first and those a handshake waits for never.
func TestCertStoreBounds(t *testing.T) {
	s, subs, now := testStore(3, 2)
	certs := newTestCerts(t)
	ctx := context.Background()
	get := func(name string) error {
		_, err := s.certificate(ctx, name, noWait)
		return err
	}

	for _, bad := range []string{"", strings.Repeat("a", 254), "a b", "a\x00b", "hé.example.com", "a/b"} {
		if err := get(bad); !errors.Is(err, errBadSecretName) {
			t.Errorf("SNI %q: %v, want refused", bad, err)
		}
	}
	if ops := subs.take(); len(ops) > 0 {
		t.Fatalf("invalid names subscribed: %v", ops)
	}

	// Two tokens: two new names, the third waits for the bucket.
	if err := get("a.example.com"); !errors.Is(err, errSecretTimeout) {
		t.Fatalf("a name not answered yet: %v, want a timeout", err)
	}
	if err := s.apply(xdsclient.Update{Absent: []string{"a.example.com"}}); err != nil {
		t.Fatal(err)
	}
	if err := get("a.example.com"); !errors.Is(err, errNoSecret) {
		t.Fatalf("a name the server does not have: %v", err)
	}
	_ = get("b.example.com")
	if err := get("c.example.com"); !errors.Is(err, errTooManySecrets) {
		t.Fatalf("a third new name within the minute: %v, want refused", err)
	}
	if got, want := subs.take(), []string{"+a.example.com", "+b.example.com"}; !slices.Equal(got, want) {
		t.Fatalf("subscriptions %v, want %v", got, want)
	}
	*now = now.Add(30 * time.Second) // one token back
	_ = get("c.example.com")
	if err := s.apply(versioned("1", certs.secret("b.example.com", "b.example.com"))); err != nil {
		t.Fatal(err)
	}

	// Three held (a absent, b a certificate, c pending): a fourth evicts a
	// name without a certificate, the least recently used first.
	*now = now.Add(time.Minute)
	_ = get("c.example.com") // c used after a
	*now = now.Add(time.Second)
	_ = get("d.example.com")
	*now = now.Add(time.Second)
	_ = get("e.example.com")
	if got, want := subs.take(), []string{"+c.example.com", "-a.example.com", "+d.example.com", "-c.example.com", "+e.example.com"}; !slices.Equal(got, want) {
		t.Fatalf("subscriptions %v, want %v", got, want)
	}
	if err := get("b.example.com"); err != nil {
		t.Fatalf("the certificate held through the evictions: %v", err)
	}

	// Every name waited for: a new one is refused, none is evicted.
	s.maxNames = 2
	*now = now.Add(time.Minute)
	done := make(chan error, 2)
	for _, name := range []string{"d.example.com", "e.example.com"} {
		go func() {
			_, err := s.certificate(ctx, name, 10*time.Second)
			done <- err
		}()
	}
	waitUntil(t, "two handshakes waiting", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.entries["d.example.com"].waiters == 1 && s.entries["e.example.com"].waiters == 1
	})
	// b (a certificate, not waited for) goes first; then nothing can.
	s.maxNames = 1
	if err := get("f.example.com"); !errors.Is(err, errTooManySecrets) {
		t.Fatalf("a new name while every held one is waited for: %v, want refused", err)
	}
	if err := s.apply(versioned("1", certs.secret("d.example.com", "d.example.com"), certs.secret("e.example.com", "e.example.com"))); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("a waiting handshake: %v", err)
		}
	}
	if got := subs.take(); !slices.Equal(got, []string{"-b.example.com"}) {
		t.Fatalf("subscriptions %v, want b evicted alone", got)
	}
}

// A version is parsed once, whatever the handshakes and re-sends; a new
// version replaces it; a removal fails the next handshakes; a secret the
// store let go of meanwhile is ignored.
func TestCertStoreVersions(t *testing.T) {
	s, _, _ := testStore(0, 0)
	certs := newTestCerts(t)
	ctx := context.Background()
	waiting := make(chan *tls.Certificate)
	go func() {
		c, _ := s.certificate(ctx, "a.example.com", 10*time.Second)
		waiting <- c
	}()
	waitUntil(t, "a handshake waiting", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		e := s.entries["a.example.com"]
		return e != nil && e.waiters == 1
	})
	v1 := certs.secret("a.example.com", "a.example.com")
	if err := s.apply(versioned("v1", v1, certs.secret("elsewhere.example.com", "elsewhere.example.com"))); err != nil {
		t.Fatal(err)
	}
	first := <-waiting
	if first == nil || first.Leaf.DNSNames[0] != "a.example.com" {
		t.Fatalf("the waiting handshake got %v", first)
	}
	// A re-send of v1 (a new stream, say) is not parsed again.
	if err := s.apply(versioned("v1", v1)); err != nil {
		t.Fatal(err)
	}
	if again, err := s.certificate(ctx, "a.example.com", noWait); err != nil || again != first {
		t.Fatalf("after a re-send of v1: %p %v, want the parsed %p", again, err, first)
	}
	if err := s.apply(versioned("v2", certs.secret("a.example.com", "a.example.com"))); err != nil {
		t.Fatal(err)
	}
	second, err := s.certificate(ctx, "a.example.com", noWait)
	if err != nil || second == first || second.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
		t.Fatalf("after v2: %v %v, want a new certificate", second, err)
	}
	if _, ok := s.entries["elsewhere.example.com"]; ok {
		t.Error("a secret not asked for was kept")
	}
	if err := s.apply(xdsclient.Update{Removed: []string{"a.example.com"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.certificate(ctx, "a.example.com", noWait); !errors.Is(err, errNoSecret) {
		t.Fatalf("after the removal: %v", err)
	}
	// A handshake given up (the client went) does not wait.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.certificate(cancelled, "b.example.com", 10*time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled handshake: %v", err)
	}
}

// A listener turning TLS on keeps its address and hands its socket to a
// TLS server, which serves the certificate the SNI names, fetched on
// demand, and the default one without SNI; prefetched names are asked for
// at once; turning TLS off again serves plaintext on the same address.
func TestListenerTLSOnAndOff(t *testing.T) {
	backend := heldBackend(t, make(chan struct{}), new(atomic.Int64))
	g := serving(t, backend)
	addr := g.Addr("web")
	certs := newTestCerts(t)

	tlsListener := httpListener(t, "web", "0.0.0.0", 8080, nil)
	ctx := onDemandTLS(t)
	sel := ctx.CommonTlsContext.CustomTlsCertificateSelector
	var cfg ondemandv3.Config
	if err := sel.GetTypedConfig().UnmarshalTo(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg.PrefetchSecretNames = []string{"web.example.com", "default-cert"}
	sel.TypedConfig = mustAny(t, &cfg)
	tlsListener.FilterChains[0].TransportSocket = &corev3.TransportSocket{Name: tlsTransportSocketName,
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(t, ctx)}}
	if err := g.feed.onListeners(update(tlsListener)); err != nil {
		t.Fatal(err)
	}
	if got := g.Addr("web"); got != addr {
		t.Fatalf("TLS moved the listener from %s to %s", addr, got)
	}
	g.certs.mu.Lock()
	_, prefetched := g.certs.entries["web.example.com"]
	g.certs.mu.Unlock()
	if !prefetched {
		t.Fatal("the prefetched name was not asked for")
	}
	if err := g.certs.apply(versioned("1", certs.secret("web.example.com", "web.example.com"), certs.secret("default-cert", "default.example.com"))); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certs.ca.TrustPEM())
	for sni, want := range map[string]string{"web.example.com": "web.example.com", "": "default.example.com"} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: sni, RootCAs: pool, InsecureSkipVerify: sni == ""}}
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + addr + "/")
		if err != nil {
			t.Fatalf("SNI %q: %v", sni, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if got := resp.TLS.PeerCertificates[0].DNSNames[0]; got != want || string(body) != "ok" {
			t.Errorf("SNI %q: certificate for %s, body %q; want %s, ok", sni, got, body, want)
		}
	}
	// Go's TLS server answers a plaintext request 400 where Envoy closes
	// the connection; neither serves it.
	if got, err := fetch(addr, "/"); err == nil && got == "200 ok" {
		t.Errorf("plaintext on the TLS listener: %q", got)
	}

	if err := g.feed.onListeners(update(httpListener(t, "web", "0.0.0.0", 8080, nil))); err != nil {
		t.Fatal(err)
	}
	if got, err := fetch(addr, "/"); err != nil || got != "200 ok" || g.Addr("web") != addr {
		t.Fatalf("TLS off: %q %v at %s", got, err, g.Addr("web"))
	}
	g.certs.mu.Lock()
	held := len(g.certs.entries)
	g.certs.mu.Unlock()
	if held != 0 {
		t.Errorf("%d certificates held with no TLS listener", held)
	}
}
