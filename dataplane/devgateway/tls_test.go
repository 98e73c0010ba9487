package devgateway_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kgate/kgate/dataplane/devgateway"
	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/pki"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
)

// HTTPS at the edge, as Envoy serves the translator's TLS listeners: the
// certificate chosen by SNI among the SDS secrets, fetched on demand;
// HTTP/2 over ALPN; http-protocol Redirected and Disabled for plain HTTP.

// tlsEnv is a gateway serving the external TLS listener on a port of its
// own, so that a redirect's URL reaches it, and the CA its certificates
// are issued by.
type tlsEnv struct {
	*env
	ca   *pki.CA
	port int
	// plain and secure are the external listeners' addresses.
	plain, secure string
	logs          *testrun.Buffer
	keys          [][]byte
}

func newTLSEnv(t *testing.T, cfg func(port int) model.Config) *tlsEnv {
	t.Helper()
	port := freePort(t)
	logs := new(testrun.Buffer)
	e := newEnv(t, envOptions{
		translator: translator.Options{
			ExternalTLSPort: uint32(port), InternalTLSPort: translator.DefaultInternalTLSPort, HTTPSRedirectPort: uint32(port),
		},
		gateway: func(o *devgateway.Options) {
			o.ListenAddress = func(name, _ string) string {
				if name == translator.ExternalTLSListener {
					return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
				}
				return "127.0.0.1:0"
			}
			o.Logger = slog.New(slog.NewMultiHandler(o.Logger.Handler(), slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
		},
	})
	ca, err := pki.NewCA("devgateway test CA", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	te := &tlsEnv{env: e, ca: ca, port: port, logs: logs}
	e.update(cfg(port))
	te.plain, te.secure = e.addr(translator.ExternalListener), e.addr(translator.ExternalTLSListener)
	e.addr(translator.InternalTLSListener)
	return te
}

// freePort returns a loopback port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := lis.Addr().(*net.TCPAddr).Port
	if err := lis.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// certify issues a certificate for host and publishes it as the SDS
// secret name; it returns the certificate's serial number.
func (te *tlsEnv) certify(name string, hosts ...string) *big.Int {
	te.t.Helper()
	b, err := te.ca.Issue(pki.Request{
		Identity: pki.Identity{Role: pki.Gateway, ID: "edge"}, DNSNames: hosts, Now: time.Now(), Lifetime: time.Hour,
	})
	if err != nil {
		te.t.Fatal(err)
	}
	if err := te.eng.SetSecret(translator.Secret(name, b.CertPEM, b.KeyPEM)); err != nil {
		te.t.Fatal(err)
	}
	te.keys = append(te.keys, b.KeyPEM)
	return b.Certificate().Leaf.SerialNumber
}

// roots trusts the test CA.
func (te *tlsEnv) roots() *x509.CertPool {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(te.ca.TrustPEM()) {
		te.t.Fatal("no CA certificate")
	}
	return pool
}

// client is an HTTP client speaking protocols (HTTP/1.1 over TLS when
// h2 is false, HTTP/1.1 or HTTP/2 as ALPN chooses otherwise) that reaches
// every host on loopback at the URL's port, and follows no redirect.
func (te *tlsEnv) client(h2 bool) *http.Client {
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(h2)
	dialer := &net.Dialer{Timeout: waitFor}
	tr := &http.Transport{
		Protocols:       protocols,
		TLSClientConfig: &tls.Config{RootCAs: te.roots()},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return dialer.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		},
	}
	te.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       waitFor,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// tlsResponse is what a request got, with the connection's TLS state.
type tlsResponse struct {
	response
	proto  string
	tls    *tls.ConnectionState
	reused bool
}

// fetch sends GET url with header and reads the response.
func fetch(c *http.Client, url string, header http.Header) (tlsResponse, error) {
	var reused bool
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return tlsResponse{}, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		return tlsResponse{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return tlsResponse{}, err
	}
	return tlsResponse{response{resp.StatusCode, string(body), resp.Header}, resp.Proto, resp.TLS, reused}, nil
}

// servedName is the first DNS name of the certificate a response came
// with, "" without TLS.
func (r tlsResponse) servedName() string {
	if r.tls == nil || len(r.tls.PeerCertificates) == 0 || len(r.tls.PeerCertificates[0].DNSNames) == 0 {
		return ""
	}
	return r.tls.PeerCertificates[0].DNSNames[0]
}

func (r tlsResponse) serial() *big.Int {
	if r.tls == nil || len(r.tls.PeerCertificates) == 0 {
		return nil
	}
	return r.tls.PeerCertificates[0].SerialNumber
}

// httpsModel is three Services served over HTTPS: "hello" redirects plain
// HTTP, "closed" refuses it (404), "open" serves both.
func httpsModel(hello, closed, open *backend) func(int) model.Config {
	return func(int) model.Config {
		cfg := apps(
			app{name: "hello", pods: []model.Endpoint{hello.endpoint}},
			app{name: "closed", pods: []model.Endpoint{closed.endpoint}},
			app{name: "open", pods: []model.Endpoint{open.endpoint}},
		)
		for i, policy := range []model.HTTPPolicy{model.HTTPRedirected, model.HTTPDisabled, model.HTTPEnabled} {
			cfg.Services[i].VirtualHosts[0].TLS = true
			cfg.Services[i].VirtualHosts[0].HTTP = policy
		}
		return cfg
	}
}

func TestHTTPS(t *testing.T) {
	hello, closed, open := newBackend(t, "hello", nil), newBackend(t, "closed", nil), newBackend(t, "open", nil)
	te := newTLSEnv(t, httpsModel(hello, closed, open))
	te.certify(externalHost("hello"), externalHost("hello"))
	te.certify(externalHost("closed"), externalHost("closed"))
	te.certify(externalHost("open"), externalHost("open"))
	h1, h2 := te.client(false), te.client(true)
	https := func(name, path string) string {
		return fmt.Sprintf("https://%s:%d%s", externalHost(name), te.port, path)
	}
	plain := func(name, path string) string {
		_, port, _ := net.SplitHostPort(te.plain)
		return fmt.Sprintf("http://%s:%s%s", externalHost(name), port, path)
	}
	eventually(t, "hello over HTTPS", func() error {
		r, err := fetch(h1, https("hello", "/"), nil)
		if err != nil {
			return err
		}
		return expect(r.response, http.StatusOK, "hello")
	})

	t.Run("each host its certificate, HTTP/1.1 or HTTP/2 by ALPN", func(t *testing.T) {
		for _, name := range []string{"hello", "closed", "open"} {
			for _, c := range []struct {
				client *http.Client
				proto  string
			}{{h1, "HTTP/1.1"}, {h2, "HTTP/2.0"}} {
				r, err := fetch(c.client, https(name, "/"), http.Header{"X-Forwarded-Proto": {"http"}})
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if err := expect(r.response, http.StatusOK, name); err != nil {
					t.Errorf("%s over %s: %v", name, c.proto, err)
				}
				if r.servedName() != externalHost(name) {
					t.Errorf("%s: certificate for %q", name, r.servedName())
				}
				if r.proto != c.proto {
					t.Errorf("%s: %s, want %s", name, r.proto, c.proto)
				}
				// The client's X-Forwarded-Proto is overwritten: no redirect, and
				// the application sees https.
				if got := r.header.Values("Req-X-Forwarded-Proto"); !slices.Equal(got, []string{"https"}) {
					t.Errorf("%s: X-Forwarded-Proto upstream %q, want [https]", name, got)
				}
			}
		}
	})

	t.Run("redirected over plain HTTP, but the ACME path", func(t *testing.T) {
		for _, path := range []string{"/", "/a/b?q=1&r=two"} {
			// Even claiming https: the gateway sets X-Forwarded-Proto.
			r, err := fetch(h1, plain("hello", path), http.Header{"X-Forwarded-Proto": {"https"}})
			if err != nil {
				t.Fatal(err)
			}
			want := https("hello", path)
			if r.status != http.StatusMovedPermanently || r.header.Get("Location") != want || r.body != "" {
				t.Errorf("GET %s: %d Location %q body %q, want 301 to %s", path, r.status, r.header.Get("Location"), r.body, want)
			}
		}
		r, err := fetch(h1, plain("hello", "/.well-known/acme-challenge/x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := expect(r.response, http.StatusOK, "hello"); err != nil {
			t.Errorf("the ACME path over HTTP: %v", err)
		}
		// The redirect leads to the HTTPS listener.
		follow := *h1
		follow.CheckRedirect = nil
		r, err = fetch(&follow, plain("hello", "/x?y=1"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := expect(r.response, http.StatusOK, "hello"); err != nil || r.tls == nil {
			t.Errorf("following the redirect: %v (TLS %v)", err, r.tls != nil)
		}
	})

	t.Run("disabled over plain HTTP", func(t *testing.T) {
		r, err := fetch(h1, plain("closed", "/"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.status != http.StatusNotFound {
			t.Errorf("HTTP: %d %q, want 404", r.status, r.body)
		}
		r, err = fetch(h1, plain("closed", "/.well-known/acme-challenge/x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := expect(r.response, http.StatusOK, "closed"); err != nil {
			t.Errorf("the ACME path over HTTP: %v", err)
		}
		r, err = fetch(h1, plain("open", "/"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := expect(r.response, http.StatusOK, "open"); err != nil {
			t.Errorf("an Enabled host over HTTP: %v", err)
		}
	})

	t.Run("TLS 1.2 at least", func(t *testing.T) {
		_, err := tls.Dial("tcp", te.secure, &tls.Config{ServerName: externalHost("hello"), RootCAs: te.roots(), MaxVersion: tls.VersionTLS11})
		if err == nil {
			t.Error("a TLS 1.1 handshake succeeded")
		}
	})

	if logs := te.logs.String(); strings.Contains(logs, "PRIVATE KEY") || slices.ContainsFunc(te.keys, func(k []byte) bool {
		return strings.Contains(logs, strings.Split(string(k), "\n")[1])
	}) {
		t.Errorf("key material in the gateway's log:\n%s", logs)
	}
	if n := te.nacks.all(); len(n) > 0 {
		t.Errorf("NACKs: %q", n)
	}
}

// A handshake whose SNI names no secret fails at once, the control plane
// answering that it has none; the name stays subscribed, and its
// certificate serves once it comes. A client sending no SNI gets the
// default certificate when there is one.
func TestHTTPSUnknownName(t *testing.T) {
	hello, closed, open := newBackend(t, "hello", nil), newBackend(t, "closed", nil), newBackend(t, "open", nil)
	te := newTLSEnv(t, httpsModel(hello, closed, open))
	handshake := func(name string) (string, time.Duration, error) {
		start := time.Now()
		cfg := &tls.Config{ServerName: name, RootCAs: te.roots()}
		if name == "" {
			// No SNI: Go sends none for an address; check the name by hand.
			cfg.InsecureSkipVerify = true
		}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: waitFor}, "tcp", te.secure, cfg)
		took := time.Since(start)
		if err != nil {
			return "", took, err
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].DNSNames[0], took, nil
	}
	for range 2 { // the second time from what the gateway holds
		_, took, err := handshake("nobody.example.com")
		if err == nil {
			t.Fatal("a handshake for a name without a certificate succeeded")
		}
		t.Logf("failed after %v: %v", took, err)
		if took > 2*time.Second {
			t.Errorf("the handshake failed after %v, want at once", took)
		}
	}
	te.certify("nobody.example.com", "nobody.example.com")
	eventually(t, "nobody.example.com served once its certificate comes", func() error {
		got, _, err := handshake("nobody.example.com")
		if err == nil && got != "nobody.example.com" {
			return fmt.Errorf("certificate for %q", got)
		}
		return err
	})

	if _, _, err := handshake(""); err == nil {
		t.Fatal("a handshake without SNI succeeded without a default certificate")
	}
	te.certify(translator.DefaultCertificate, "default.example.com")
	eventually(t, "the default certificate without SNI", func() error {
		got, _, err := handshake("")
		if err == nil && got != "default.example.com" {
			return fmt.Errorf("certificate for %q", got)
		}
		return err
	})
}

// A rotation reaches new handshakes; a connection open before it keeps
// working, with the certificate it started with.
func TestHTTPSRotation(t *testing.T) {
	hello, closed, open := newBackend(t, "hello", nil), newBackend(t, "closed", nil), newBackend(t, "open", nil)
	te := newTLSEnv(t, httpsModel(hello, closed, open))
	first := te.certify(externalHost("hello"), externalHost("hello"))
	url := fmt.Sprintf("https://%s:%d/", externalHost("hello"), te.port)
	held := te.client(true)
	eventually(t, "hello over HTTP/2", func() error {
		r, err := fetch(held, url, nil)
		if err != nil {
			return err
		}
		if r.proto != "HTTP/2.0" || r.serial().Cmp(first) != 0 {
			return fmt.Errorf("%s, certificate %v", r.proto, r.serial())
		}
		return expect(r.response, http.StatusOK, "hello")
	})

	second := te.certify(externalHost("hello"), externalHost("hello"))
	eventually(t, "a new handshake gets the new certificate", func() error {
		fresh := te.client(true)
		r, err := fetch(fresh, url, nil)
		if err != nil {
			return err
		}
		if r.serial().Cmp(second) != 0 {
			return fmt.Errorf("certificate %v, want %v", r.serial(), second)
		}
		return expect(r.response, http.StatusOK, "hello")
	})

	r, err := fetch(held, url, nil)
	if err != nil {
		t.Fatalf("the connection open before the rotation: %v", err)
	}
	if !r.reused || r.proto != "HTTP/2.0" || r.serial().Cmp(first) != 0 {
		t.Errorf("the request went over a connection reused=%v %s with certificate %v, want the first HTTP/2 one with %v", r.reused, r.proto, r.serial(), first)
	}
	if err := expect(r.response, http.StatusOK, "hello"); err != nil {
		t.Error(err)
	}
}

// A DomainMapping's domain is routed with its Route's routes and the Host
// rewritten to the Route's cluster-local host (host_rewrite_literal), over
// HTTP and over HTTPS with the domain's own certificate.
func TestHostRewrite(t *testing.T) {
	hello := newBackend(t, "hello", nil)
	const domain, target = "hello.localtest.me", "hello.default.svc.cluster.local"
	te := newTLSEnv(t, func(int) model.Config {
		cfg := apps(app{name: "hello", pods: []model.Endpoint{hello.endpoint}})
		route := cfg.Services[0].VirtualHosts[0].Routes[0]
		route.HostRewrite = target
		cfg.Services[0].VirtualHosts = append(cfg.Services[0].VirtualHosts,
			model.VirtualHost{Host: domain, Visibility: model.External, TLS: true, Routes: []model.Route{route}})
		return cfg
	})
	te.certify(domain, domain)
	c := te.client(true)
	_, plainPort, _ := net.SplitHostPort(te.plain)
	for _, url := range []string{"http://" + domain + ":" + plainPort + "/x", fmt.Sprintf("https://%s:%d/x", domain, te.port)} {
		eventually(t, url, func() error {
			r, err := fetch(c, url, nil)
			if err != nil {
				return err
			}
			if got := r.header.Get("Req-Host"); got != target {
				return fmt.Errorf("upstream Host %q, want %q", got, target)
			}
			if strings.HasPrefix(url, "https") && r.servedName() != domain {
				return fmt.Errorf("certificate for %q", r.servedName())
			}
			return expect(r.response, http.StatusOK, "hello")
		})
	}
	// The external host keeps its Host.
	r := get(t, client(t), te.plain, externalHost("hello"), "/", nil)
	if got := r.header.Get("Req-Host"); got != externalHost("hello") {
		t.Errorf("upstream Host %q for the Service's own host", got)
	}
}
