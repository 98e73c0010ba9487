package devgateway_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
)

// What a KIngress adds to a Route: backends named "<service>:<port>", a
// path's own headers, retries, ExternalName backends, no route timeout,
// and WebSockets through a split.

// kingress is a Service with one external host whose routes are given, and
// a Revision (backend) for each named; a backend without pods is left
// without endpoints.
func kingress(routes []model.Route, revs ...model.Revision) model.Config {
	return model.Config{
		Services: []model.Service{{Namespace: ns, Name: "kingress", Created: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC),
			VirtualHosts: []model.VirtualHost{{Host: externalHost("kingress"), Visibility: model.External, Routes: routes}}}},
		Revisions: revs,
	}
}

// backendRev is a KIngress backend, "<service>:<port>".
func backendRev(name string) model.Revision {
	return model.Revision{Namespace: ns, Name: name, Protocol: model.HTTP1}
}

// flaky answers 503 to its first fail requests, then its name.
func flaky(t *testing.T, name string, fail int64) *backend {
	var n atomic.Int64
	return newBackend(t, name, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if n.Add(1) <= fail {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "%s %s", name, body)
	})
}

// A route with retries tries a failing backend 1 + attempts times, and
// sends the same body each time; without retries a 503 reaches the
// client after one try; a per-try timeout retries a slow try and,
// on the last try, answers 504.
func TestRetries(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, ext := client(t), e.addr(translator.ExternalListener)
	recovers := flaky(t, "recovers", 2) // fails twice, then answers
	broken := flaky(t, "broken", 1000)
	once := flaky(t, "once", 1000)
	var slowHits atomic.Int64
	slow := newBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		if slowHits.Add(1) == 1 {
			select { // the first try hangs until cancelled
			case <-r.Context().Done():
			case <-time.After(waitFor):
			}
			return
		}
		fmt.Fprint(w, "slow")
	})
	hang := newBackend(t, "hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(waitFor):
		}
	})
	route := func(prefix, rev string, retries *model.Retries) model.Route {
		return model.Route{PathPrefix: prefix, Retries: retries, Splits: []model.Split{{Revision: revKey(rev), Percent: 100}}}
	}
	cfg := kingress([]model.Route{
		route("/recovers", "recovers:80", &model.Retries{Attempts: 2}),
		route("/broken", "broken:80", &model.Retries{Attempts: 3}),
		route("/once", "once:80", nil),
		route("/slow", "slow:80", &model.Retries{Attempts: 1, PerTryTimeout: 200 * time.Millisecond}),
		route("/hang", "hang:80", &model.Retries{Attempts: 0, PerTryTimeout: 200 * time.Millisecond}),
		route("/", "once:80", nil),
	}, backendRev("recovers:80"), backendRev("broken:80"), backendRev("once:80"), backendRev("slow:80"), backendRev("hang:80"))
	cfg.Endpoints = []model.RevisionEndpoints{serving("recovers:80", recovers), serving("broken:80", broken),
		serving("once:80", once), serving("slow:80", slow), serving("hang:80", hang)}
	e.update(cfg)
	host := externalHost("kingress")
	eventually(t, "routes served", func() error {
		r, err := do(c, http.MethodGet, ext, host, "/", nil)
		if err != nil {
			return err
		}
		if once.hits.Load() == 0 {
			return fmt.Errorf("got %d %q", r.status, r.body)
		}
		return nil
	})
	once.hits.Store(0)

	post := func(path, body string) response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+ext+path, strings.NewReader(body))
		req.Host = host
		res, err := c.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return response{status: res.StatusCode, body: string(b), header: res.Header}
	}

	if r := post("/recovers", "payload"); r.status != http.StatusOK || r.body != "recovers payload" {
		t.Errorf("/recovers: %d %q, want 200 %q", r.status, r.body, "recovers payload")
	}
	if n := recovers.hits.Load(); n != 3 {
		t.Errorf("/recovers: %d tries, want 3 (two 503s retried)", n)
	}
	if r := get(t, c, ext, host, "/broken", nil); r.status != http.StatusServiceUnavailable {
		t.Errorf("/broken: %d %q, want the last try's 503", r.status, r.body)
	}
	if n := broken.hits.Load(); n != 4 {
		t.Errorf("/broken: %d tries, want 4 (1 + 3 attempts)", n)
	}
	if r := get(t, c, ext, host, "/once", nil); r.status != http.StatusServiceUnavailable {
		t.Errorf("/once: %d %q, want 503", r.status, r.body)
	}
	if n := once.hits.Load(); n != 1 {
		t.Errorf("/once: %d tries, want 1 (no retries)", n)
	}
	if r := get(t, c, ext, host, "/slow", nil); r.status != http.StatusOK || r.body != "slow" {
		t.Errorf("/slow: %d %q, want the retry's 200", r.status, r.body)
	}
	if n := slowHits.Load(); n != 2 {
		t.Errorf("/slow: %d tries, want 2 (the first timed out)", n)
	}
	start := time.Now()
	if r := get(t, c, ext, host, "/hang", nil); r.status != http.StatusGatewayTimeout || r.body != "upstream request timeout" {
		t.Errorf("/hang: %d %q, want 504 upstream request timeout", r.status, r.body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("/hang answered after %v, want about the 200ms per-try timeout", d)
	}
	if n := hang.hits.Load(); n != 1 {
		t.Errorf("/hang: %d tries, want 1 (0 attempts)", n)
	}
}

// A path's headers reach every split, overwriting what the client sent;
// a split's own header overwrites the path's.
func TestRouteHeaders(t *testing.T) {
	e := newEnv(t, envOptions{})
	a, b := newBackend(t, "a", nil), newBackend(t, "b", nil)
	cfg := kingress([]model.Route{{
		PathPrefix: "/",
		SetHeaders: []model.Header{{Name: "K-Path", Value: "from-the-path"}, {Name: "Knative-Serving-Revision", Value: "from-the-path"}},
		Splits: []model.Split{
			{Revision: revKey("a:80"), Percent: 50, SetHeaders: []model.Header{{Name: "Knative-Serving-Revision", Value: "a"}}},
			{Revision: revKey("b:80"), Percent: 50},
		},
	}}, backendRev("a:80"), backendRev("b:80"))
	cfg.Endpoints = []model.RevisionEndpoints{serving("a:80", a), serving("b:80", b)}
	e.update(cfg)
	c, ext := client(t), e.addr(translator.ExternalListener)
	want := map[string]string{"a": "a", "b": "from-the-path"}
	seen := map[string]bool{}
	eventually(t, "both splits answer with the headers", func() error {
		r, err := do(c, http.MethodGet, ext, externalHost("kingress"), "/", http.Header{
			"K-Path": {"from-the-client"}, "Knative-Serving-Revision": {"from-the-client"},
		})
		if err != nil {
			return err
		}
		if r.status != http.StatusOK {
			return fmt.Errorf("got %d %q", r.status, r.body)
		}
		if got := r.header.Values("Req-K-Path"); len(got) != 1 || got[0] != "from-the-path" {
			t.Fatalf("%s got K-Path %q, want the path's only", r.body, got)
		}
		if got := r.header.Values("Req-Knative-Serving-Revision"); len(got) != 1 || got[0] != want[r.body] {
			t.Fatalf("%s got Knative-Serving-Revision %q, want %q", r.body, got, want[r.body])
		}
		seen[r.body] = true
		if !seen["a"] || !seen["b"] {
			return fmt.Errorf("seen %v", seen)
		}
		return nil
	})
}

// An ExternalName backend is reached by resolving its name ("localhost"
// here), with no endpoints published; the route has no timeout (0), so a
// response slower than Envoy's default 15 s would still arrive.
func TestExternalName(t *testing.T) {
	e := newEnv(t, envOptions{})
	ext := newBackend(t, "external", nil)
	rev := backendRev("external:80")
	rev.ExternalName = &model.Endpoint{Address: "localhost", Port: ext.endpoint.Port}
	e.update(kingress([]model.Route{{PathPrefix: "/", Timeout: 0, HostRewrite: "external.example.com",
		Splits: []model.Split{{Revision: revKey("external:80"), Percent: 100}}}}, rev))
	c, addr := client(t), e.addr(translator.ExternalListener)
	awaitBody(t, c, addr, externalHost("kingress"), "/", "external")
	r := get(t, c, addr, externalHost("kingress"), "/", nil)
	if r.header.Get("Req-Host") != "external.example.com" {
		t.Errorf("Host upstream %q, want the rewrite", r.header.Get("Req-Host"))
	}
}

// A WebSocket upgrade goes through a KIngress split (Knative's
// websocket/split conformance test): each split's pod echoes, the path's
// and split's headers reach it, and a route with retries does not retry
// the upgrade.
func TestKIngressWebSocketSplit(t *testing.T) {
	e := newEnv(t, envOptions{})
	echo := func(name string) *backend {
		return newBackend(t, name, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") != "websocket" {
				fmt.Fprint(w, name)
				return
			}
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Pod: %s\r\nX-Path: %s\r\n\r\n",
				name, r.Header.Get("K-Path"))
			rw.Flush()
			io.Copy(conn, rw)
		})
	}
	a, b := echo("a"), echo("b")
	cfg := kingress([]model.Route{{
		PathPrefix: "/", Retries: &model.Retries{Attempts: 2},
		SetHeaders: []model.Header{{Name: "K-Path", Value: "set"}},
		Splits:     []model.Split{{Revision: revKey("a:80"), Percent: 50}, {Revision: revKey("b:80"), Percent: 50}},
	}}, backendRev("a:80"), backendRev("b:80"))
	cfg.Endpoints = []model.RevisionEndpoints{serving("a:80", a), serving("b:80", b)}
	e.update(cfg)
	ext := e.addr(translator.ExternalListener)
	awaitBodyIn(t, client(t), ext, externalHost("kingress"), "a", "b")

	seen := map[string]bool{}
	for i := 0; !seen["a"] || !seen["b"]; i++ {
		if i == 100 {
			t.Fatalf("100 sessions reached only %v", seen)
		}
		conn, err := net.DialTimeout("tcp", ext, waitFor)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(waitFor))
		fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", externalHost("kingress"))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("X-Path") != "set" {
			t.Fatalf("upgrade: %d, K-Path upstream %q; want 101, set", resp.StatusCode, resp.Header.Get("X-Path"))
		}
		msg := fmt.Sprintf("message %d", i)
		io.WriteString(conn, msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != msg {
			t.Fatalf("echo: %q, %v; want %q", got, err, msg)
		}
		seen[resp.Header.Get("X-Pod")] = true
		conn.Close()
	}
}

// awaitBodyIn waits until GET host/ answers 200 with one of bodies.
func awaitBodyIn(t *testing.T, c *http.Client, addr, host string, bodies ...string) {
	t.Helper()
	eventually(t, "GET "+host+" answers", func() error {
		r, err := do(c, http.MethodGet, addr, host, "/", nil)
		if err != nil {
			return err
		}
		for _, b := range bodies {
			if r.status == http.StatusOK && r.body == b {
				return nil
			}
		}
		return fmt.Errorf("got %d %q", r.status, r.body)
	})
}
