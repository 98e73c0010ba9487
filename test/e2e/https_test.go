package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// configNetwork turns HTTPS on for external hosts with http-protocol
// protocol.
func configNetwork(protocol string) string {
	return `apiVersion: v1
kind: ConfigMap
metadata:
  name: config-network
  namespace: knative-serving
data:
  external-domain-tls: Enabled
  http-protocol: ` + protocol + "\n"
}

// mapping maps domain, in namespace ns, to the Service name.
func mapping(ns, domain, name string) string {
	return `apiVersion: serving.knative.dev/v1beta1
kind: DomainMapping
metadata:
  name: ` + domain + `
  namespace: ` + ns + `
spec:
  ref:
    name: ` + name + `
    namespace: ` + ns + `
    kind: Service
    apiVersion: serving.knative.dev/v1
`
}

// httpsClient trusts the CA file caFile and sends every connection to addr,
// whatever the host, as curl --resolve (or --connect-to) does: the URL's
// host is the SNI and the Host.
func httpsClient(t *testing.T, caFile, addr string, h2 bool) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	tr := &http.Transport{Proxy: nil, DialContext: dial, TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// fetch GETs url with c and returns the status, body, protocol and the
// certificate's DNS names.
func fetch(c *http.Client, url string) (code int, body, proto string, names []string, err error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		names = resp.TLS.PeerCertificates[0].DNSNames
	}
	if resp.StatusCode/100 == 3 {
		b = []byte(resp.Header.Get("Location"))
	}
	return resp.StatusCode, strings.TrimSpace(string(b)), resp.Proto, names, err
}

// HTTPS with kgate local: config-network's external-domain-tls, a
// certificate per host from the local CA (`kgate local ca` prints it),
// HTTP/2 over ALPN, http-protocol Redirected with the ACME path exempt, and
// a DomainMapping with its own certificate, a second mapping of its domain
// refused.
func TestHTTPS(t *testing.T) {
	k := startKgate(t, map[string]string{
		"config-network.yaml": configNetwork("Enabled"),
		"hello.yaml":          example(t, "examples/hello.yaml"),
		"mapping.yaml":        mapping("default", "hello.localtest.me", "hello"),
	})
	k.ready("hello", host("hello"), "Hello World!", 60*time.Second)

	out, err := k.kgateCmd("local", "ca", "-f", k.dir)
	if err != nil {
		t.Fatalf("kgate local ca: %v\n%s", err, out)
	}
	caFile := strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
	_, port, _ := strings.Cut(k.https, ":")
	_, httpPort, _ := strings.Cut(k.http, ":")
	h1 := httpsClient(t, caFile, k.https, false)
	h2 := httpsClient(t, caFile, k.https, true)
	plain := httpsClient(t, caFile, k.http, false)

	for _, h := range []string{host("hello"), "hello.localtest.me"} {
		url := "https://" + h + ":" + port + "/"
		k.eventually(h+" answers over HTTPS with its own certificate", 30*time.Second, func() error {
			code, body, _, names, err := fetch(h1, url)
			if err != nil || code != 200 || body != "Hello World!" {
				return fmt.Errorf("%d %q %v", code, body, err)
			}
			if len(names) != 1 || names[0] != h {
				return fmt.Errorf("certificate names %v, want %s", names, h)
			}
			return nil
		})
		if code, _, proto, _, err := fetch(h2, url); err != nil || code != 200 || proto != "HTTP/2.0" {
			t.Errorf("%s over HTTP/2: %d %s %v", h, code, proto, err)
		}
		// Enabled: plain HTTP serves too.
		if code, body, _, _, err := fetch(plain, "http://"+h+":"+httpPort+"/"); err != nil || code != 200 || body != "Hello World!" {
			t.Errorf("%s over HTTP with http-protocol Enabled: %d %q %v", h, code, body, err)
		}
	}
	svc, err := k.get("ksvc", "hello")
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := svc["status"].(map[string]any); status["url"] != "https://"+host("hello") {
		t.Errorf("the Service's URL is %v, want https://%s", status["url"], host("hello"))
	}

	// Redirected: 301 to the https URL, except the ACME HTTP-01 path.
	k.write("config-network.yaml", configNetwork("Redirected"))
	for _, h := range []string{host("hello"), "hello.localtest.me"} {
		k.eventually(h+" redirects plain HTTP", 10*time.Second, func() error {
			code, location, _, _, err := fetch(plain, "http://"+h+":"+httpPort+"/some/path?q=1")
			if want := "https://" + h + ":" + port + "/some/path?q=1"; err != nil || code != http.StatusMovedPermanently || location != want {
				return fmt.Errorf("%d %q %v, want 301 to %s", code, location, err, want)
			}
			return nil
		})
		if code, _, _, _, err := fetch(plain, "http://"+h+":"+httpPort+"/.well-known/acme-challenge/token"); err != nil || code == http.StatusMovedPermanently {
			t.Errorf("%s: the ACME path was redirected (%d %v)", h, code, err)
		}
	}

	// A second mapping of the domain, in another namespace, declared later:
	// not Ready, the domain already claimed; the first keeps serving.
	other := strings.Replace(hello("hello", "World"), "  name: hello\n", "  name: hello\n  namespace: other\n", 1)
	k.write("other.yaml", other+"---\n"+mapping("other", "hello.localtest.me", "hello"))
	k.eventually("the second mapping is refused", 30*time.Second, func() error {
		dm, err := k.get("domainmappings", "hello.localtest.me", "-n", "other")
		if err != nil {
			return err
		}
		if reason, _ := conditionMessage(dm, "Ready"); condition(dm, "Ready") != "False" || reason != "DomainAlreadyClaimed" {
			return fmt.Errorf("Ready %s %s", condition(dm, "Ready"), reason)
		}
		return nil
	})
	if dm, err := k.get("domainmappings", "hello.localtest.me"); err != nil || condition(dm, "Ready") != "True" {
		t.Errorf("the first mapping: Ready %s (%v)", condition(dm, "Ready"), err)
	}
}
