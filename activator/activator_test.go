package activator

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/translator/model"
)

func TestRevisionHeaders(t *testing.T) {
	h := newHarness(t, Options{})
	h.act.SetEndpoints("default/endpoints-only", []model.Endpoint{{Address: "127.0.0.1", Port: 1}})

	for _, tc := range []struct {
		name       string
		ns, rev    string
		wantStatus int
		want       string
	}{
		{"no namespace", "", testRevision, http.StatusBadRequest, "missing header " + NamespaceHeader},
		{"no revision", testNamespace, "", http.StatusBadRequest, "missing header " + RevisionHeader},
		{"unknown", testNamespace, "nope-00001", http.StatusNotFound, `unknown revision "default/nope-00001"`},
		{"endpoints but no config", testNamespace, "endpoints-only", http.StatusNotFound, `unknown revision "default/endpoints-only"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := h.request(context.Background(), t, "/")
			req.Header.Set(NamespaceHeader, tc.ns)
			req.Header.Set(RevisionHeader, tc.rev)
			got := h.do(t, req)
			expect(t, got, tc.wantStatus, tc.want)
			if got.header.Get(RejectedHeader) != "true" {
				t.Errorf("header %s missing on the activator's own answer", RejectedHeader)
			}
		})
	}
}

// A request arriving at zero pods waits, pokes the autoscaler once and is
// answered normally when a pod appears.
func TestHeldAtZeroUntilPodReady(t *testing.T) {
	pokes := make(chan string, 10)
	h := newHarness(t, Options{OnPoke: func(rev string) { pokes <- rev }})
	h.act.SetRevision(testKey, RevisionConfig{ContainerConcurrency: 1})

	first := h.getAsync(t, "/")
	if got := <-pokes; got != testKey {
		t.Fatalf("poked %q, want %q", got, testKey)
	}
	second := h.getAsync(t, "/")
	waitFor(t, "two requests waiting", func() bool { return h.stats().Waiting == 2 })
	if s := h.stats(); s.InFlight != 2 || s.Pods != 0 || s.Issued != 2 {
		t.Errorf("stats at zero: %+v, want 2 in flight, 2 issued, 0 pods", s)
	}
	select {
	case rev := <-pokes:
		t.Errorf("poked again for %s: only the first waiting request pokes", rev)
	default:
	}

	h.act.SetEndpoints(testKey, []model.Endpoint{startBackend(t, model.HTTP1, text("hello"))})
	expect(t, <-first, http.StatusOK, "hello")
	expect(t, <-second, http.StatusOK, "hello")
	if s := h.stats(); s.InFlight != 0 || s.Waiting != 0 || s.Completed != 2 || s.Errors != 0 || s.Pods != 1 {
		t.Errorf("stats after: %+v, want 2 completed, nothing in flight, 1 pod", s)
	}
}

func TestQueueFull(t *testing.T) {
	h := newHarness(t, Options{QueueDepth: 2})
	h.act.SetRevision(testKey, RevisionConfig{})
	held := []<-chan reply{h.getAsync(t, "/"), h.getAsync(t, "/")}
	waitFor(t, "two requests waiting", func() bool { return h.stats().Waiting == 2 })

	expect(t, h.get(t, "/"), http.StatusServiceUnavailable, "queue full")
	if s := h.stats(); s.Errors != 1 {
		t.Errorf("errors = %d, want the 503 counted", s.Errors)
	}

	h.act.SetEndpoints(testKey, []model.Endpoint{startBackend(t, model.HTTP1, text("ok"))})
	for _, r := range held {
		expect(t, <-r, http.StatusOK, "ok")
	}
}

func TestWaitTimeout(t *testing.T) {
	h := newHarness(t, Options{})
	h.act.SetRevision(testKey, RevisionConfig{Timeout: 50 * time.Millisecond})
	start := time.Now()
	got := h.get(t, "/")
	expect(t, got, http.StatusGatewayTimeout, "no pod was ready to take the request within the revision's timeout (50ms)")
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Errorf("answered after %v, before the timeout", waited)
	}
	if s := h.stats(); s.Waiting != 0 || s.InFlight != 0 {
		t.Errorf("stats after timeout: %+v, want the request gone", s)
	}
}

func TestDeleteRevision(t *testing.T) {
	h := newHarness(t, Options{})
	h.act.SetRevision(testKey, RevisionConfig{})
	held := h.getAsync(t, "/")
	waitFor(t, "a request waiting", func() bool { return h.stats().Waiting == 1 })

	h.act.DeleteRevision(testKey)
	expect(t, <-held, http.StatusServiceUnavailable, "was deleted while the request waited")
	expect(t, h.get(t, "/"), http.StatusNotFound, "unknown revision")
}

func TestUnreachablePod(t *testing.T) {
	h := newHarness(t, Options{})
	h.act.SetRevision(testKey, RevisionConfig{})
	// A port that was just free: nothing listens there.
	ln := testrun.Listen(t)
	dead := endpointOf(t, ln.Addr())
	ln.Close()
	h.act.SetEndpoints(testKey, []model.Endpoint{dead})
	expect(t, h.get(t, "/"), http.StatusBadGateway, "proxying to pod")
}

// The application sees the client's request, not the activator's: Host,
// path, raw query and the gateway's forwarding headers, minus the routing
// headers meant for the activator.
func TestRequestReachesPodUnchanged(t *testing.T) {
	h := newHarness(t, Options{})
	h.act.SetRevision(testKey, RevisionConfig{})
	seen := make(chan *http.Request, 1)
	h.act.SetEndpoints(testKey, []model.Endpoint{startBackend(t, model.HTTP1, http.HandlerFunc(
		func(_ http.ResponseWriter, r *http.Request) { seen <- r }))})

	req := h.request(context.Background(), t, "/a/b?x=1;y=2&z")
	req.Host = "hello.default.example.com"
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	req.Header.Set("X-Forwarded-Proto", "https")
	expect(t, h.do(t, req), http.StatusOK, "")
	r := <-seen

	checks := map[string][2]string{
		"host":       {r.Host, "hello.default.example.com"},
		"path":       {r.URL.Path, "/a/b"},
		"query":      {r.URL.RawQuery, "x=1;y=2&z"},
		"x-f-for":    {r.Header.Get("X-Forwarded-For"), "203.0.113.7, 127.0.0.1"},
		"x-f-proto":  {r.Header.Get("X-Forwarded-Proto"), "https"},
		"ns header":  {r.Header.Get(NamespaceHeader), ""},
		"rev header": {r.Header.Get(RevisionHeader), ""},
	}
	for what, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s: pod saw %q, want %q", what, c[0], c[1])
		}
	}
}
