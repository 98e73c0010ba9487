package devgateway_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
)

// Hosts, visibility, path prefixes, tags and the per-split headers, as
// Knative users rely on them.
func TestRouting(t *testing.T) {
	e := newEnv(t, envOptions{})
	v1 := newBackend(t, "v1", nil)
	v2 := newBackend(t, "v2", nil)
	api := newBackend(t, "api", nil)
	apiV2 := newBackend(t, "api-v2", nil)
	private := newBackend(t, "private", nil)

	hello := service("hello", prefixRoute("/", 0, split("hello-00001", 100)))
	// The tag route: same prefix, with the Knative-Serving-Tag header.
	tagged := prefixRoute("/", 0, split("hello-00002", 100))
	tagged.Headers = []model.HeaderMatch{{Name: "Knative-Serving-Tag", Value: "candidate"}}
	hello.VirtualHosts[0].Routes = append(hello.VirtualHosts[0].Routes, tagged)
	// Listed shortest first: the gateway must still try /api/v2 first.
	paths := service("paths",
		prefixRoute("/", 0, split("paths-00001", 100)),
		prefixRoute("/api", 0, split("paths-00002", 100)),
		prefixRoute("/api/v2", 0, split("paths-00003", 100)))
	internal := service("internal", prefixRoute("/", 0, split("internal-00001", 100)))
	internal.VirtualHosts = internal.VirtualHosts[1:] // cluster-local only

	e.update(model.Config{
		Services: []model.Service{hello, paths, internal},
		Revisions: []model.Revision{
			revision("hello-00001", model.HTTP1, 0), revision("hello-00002", model.HTTP1, 0),
			revision("paths-00001", model.HTTP1, 0), revision("paths-00002", model.HTTP1, 0),
			revision("paths-00003", model.HTTP1, 0), revision("internal-00001", model.HTTP1, 0),
		},
		Endpoints: []model.RevisionEndpoints{
			serving("hello-00001", v1), serving("hello-00002", v2),
			serving("paths-00001", v1), serving("paths-00002", api), serving("paths-00003", apiV2),
			serving("internal-00001", private),
		},
	})
	c := client(t)
	ext, in := e.addr(translator.ExternalListener), e.addr(translator.InternalListener)
	awaitBody(t, c, ext, externalHost("hello"), "/", "v1")
	awaitBody(t, c, ext, externalHost("paths"), "/", "v1")
	awaitBody(t, c, in, "internal.default.svc.cluster.local", "/", "private")

	t.Run("host and host:port", func(t *testing.T) {
		for _, host := range []string{externalHost("hello"), externalHost("hello") + ":8080"} {
			if r := get(t, c, ext, host, "/", nil); r.status != http.StatusOK || r.body != "v1" {
				t.Errorf("Host %s: got %d %q, want 200 v1", host, r.status, r.body)
			}
		}
		if r := get(t, c, ext, "nobody.default.example.com", "/", nil); r.status != http.StatusNotFound {
			t.Errorf("unknown host: got %d, want 404", r.status)
		}
	})

	t.Run("cluster-local hosts only on the internal listener", func(t *testing.T) {
		for _, host := range []string{"hello.default", "hello.default.svc:80", "internal.default.svc.cluster.local"} {
			if r := get(t, c, ext, host, "/", nil); r.status != http.StatusNotFound {
				t.Errorf("external listener, Host %s: got %d %q, want 404", host, r.status, r.body)
			}
		}
		if r := get(t, c, in, "hello.default:80", "/", nil); r.status != http.StatusOK || r.body != "v1" {
			t.Errorf("internal listener, hello.default:80: got %d %q, want 200 v1", r.status, r.body)
		}
		// The internal listener serves cluster-local hosts only.
		if r := get(t, c, in, externalHost("hello"), "/", nil); r.status != http.StatusNotFound {
			t.Errorf("internal listener, external host: got %d, want 404", r.status)
		}
		// A client cannot pick the other listener's scopes.
		h := http.Header{"X-Kgate-Listener": {translator.InternalListener}}
		if r := get(t, c, ext, "internal.default", "/", h); r.status != http.StatusNotFound {
			t.Errorf("external listener with a forged listener header: got %d, want 404", r.status)
		}
	})

	t.Run("longest prefix first", func(t *testing.T) {
		for path, want := range map[string]string{
			"/": "v1", "/other": "v1", "/api": "api", "/api/v1/x": "api", "/api/v2": "api-v2", "/api/v2/x?q=1": "api-v2",
		} {
			if r := get(t, c, ext, externalHost("paths"), path, nil); r.status != http.StatusOK || r.body != want {
				t.Errorf("%s: got %d %q, want 200 %q", path, r.status, r.body, want)
			}
		}
	})

	t.Run("per-split headers overwrite the client's", func(t *testing.T) {
		h := http.Header{"Knative-Serving-Revision": {"forged"}, "Knative-Serving-Namespace": {"forged"}, "X-Forwarded-Proto": {"https"}}
		r := get(t, c, ext, externalHost("hello"), "/", h)
		if got := r.header.Values("Req-Knative-Serving-Revision"); len(got) != 1 || got[0] != "hello-00001" {
			t.Errorf("Knative-Serving-Revision upstream: %q, want [hello-00001]", got)
		}
		if got := r.header.Values("Req-Knative-Serving-Namespace"); len(got) != 1 || got[0] != ns {
			t.Errorf("Knative-Serving-Namespace upstream: %q, want [%s]", got, ns)
		}
		if got := r.header.Values("Req-X-Kgate-Listener"); len(got) != 0 {
			t.Errorf("the listener header reached the application: %q", got)
		}
		if got := r.header.Values("Req-X-Forwarded-Proto"); len(got) != 1 || got[0] != "http" {
			t.Errorf("X-Forwarded-Proto upstream: %q, want [http], the connection's (use_remote_address)", got)
		}
		if got := r.header.Get("Req-X-Forwarded-For"); got != "127.0.0.1" {
			t.Errorf("X-Forwarded-For upstream: %q, want 127.0.0.1 (use_remote_address)", got)
		}
	})

	t.Run("tag header selects the tagged revision", func(t *testing.T) {
		tag := http.Header{"Knative-Serving-Tag": {"candidate"}}
		if r := get(t, c, ext, externalHost("hello"), "/", tag); r.body != "v2" || r.header.Get("Req-Knative-Serving-Revision") != "hello-00002" {
			t.Errorf("tag candidate: got %d %q (revision %q), want v2", r.status, r.body, r.header.Get("Req-Knative-Serving-Revision"))
		}
		other := http.Header{"Knative-Serving-Tag": {"unknown"}}
		if r := get(t, c, ext, externalHost("hello"), "/", other); r.body != "v1" {
			t.Errorf("unknown tag: got %q, want the default route's v1", r.body)
		}
	})
}

// A revision without endpoints answers 503 "no healthy upstream", as
// Envoy does, and a request for an unknown path prefix 404.
func TestNoHealthyUpstream(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.update(apps(app{name: "empty", prefix: "/app"}))
	c, ext := client(t), e.addr(translator.ExternalListener)
	eventually(t, "503 no healthy upstream", func() error {
		return expect(get(t, c, ext, externalHost("empty"), "/app", nil), http.StatusServiceUnavailable, "no healthy upstream")
	})
	if r := get(t, c, ext, externalHost("empty"), "/elsewhere", nil); r.status != http.StatusNotFound {
		t.Errorf("no route: got %d, want 404", r.status)
	}
}

// A route timeout answers 504 when the application has not answered in
// time; a route without one waits.
func TestRouteTimeout(t *testing.T) {
	e := newEnv(t, envOptions{})
	slow := newBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(time.Second):
			w.Write([]byte("late"))
		case <-r.Context().Done():
		}
	})
	e.update(apps(
		app{name: "bounded", timeout: 200 * time.Millisecond, pods: []model.Endpoint{slow.endpoint}},
		app{name: "unbounded", pods: []model.Endpoint{slow.endpoint}},
	))
	c, ext := client(t), e.addr(translator.ExternalListener)
	awaitBody(t, c, ext, externalHost("unbounded"), "/", "late")

	start := time.Now()
	r := get(t, c, ext, externalHost("bounded"), "/", nil)
	took := time.Since(start)
	if err := expect(r, http.StatusGatewayTimeout, "upstream request timeout"); err != nil {
		t.Error(err)
	}
	t.Logf("504 after %v (route timeout 200ms)", took)
	if took < 200*time.Millisecond || took > 900*time.Millisecond {
		t.Errorf("504 after %v, want about 200ms", took)
	}
}
