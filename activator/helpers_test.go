package activator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/translator/model"
)

// The revision the tests send requests to.
const (
	testNamespace = "default"
	testRevision  = "hello-00001"
	testKey       = testNamespace + "/" + testRevision
)

// startBackend serves h on loopback, standing for one pod speaking proto,
// and returns its endpoint. A pod speaking h2c also takes HTTP/1.1, as Go
// servers and most h2c servers do.
func startBackend(t testing.TB, proto model.Protocol, h http.Handler) model.Endpoint {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	if proto == model.H2C {
		srv.Config.Protocols = new(http.Protocols)
		srv.Config.Protocols.SetHTTP1(true)
		srv.Config.Protocols.SetUnencryptedHTTP2(true)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return endpointOf(t, srv.Listener.Addr())
}

// endpointOf turns a loopback listener's address into a model.Endpoint.
func endpointOf(t testing.TB, addr net.Addr) model.Endpoint {
	t.Helper()
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		t.Fatalf("listener address %v is not TCP", addr)
	}
	return model.Endpoint{Address: tcp.IP.String(), Port: uint32(tcp.Port)}
}

// harness is an Activator served on loopback by NewServer, as cmd serves
// it, and an HTTP/1.1 client for it.
type harness struct {
	act    *Activator
	addr   string
	client *http.Client

	srv     *http.Server
	served  <-chan error
	stop    sync.Once
	stopErr error
}

// newHarness starts an activator; the test's cleanup shuts the server
// down and drains the activator.
func newHarness(t testing.TB, opts Options) *harness {
	t.Helper()
	return serve(t, New(opts))
}

// serve serves act as newHarness does.
func serve(t testing.TB, act *Activator) *harness {
	t.Helper()
	ln := testrun.Listen(t)
	srv := NewServer("", act)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	transport := &http.Transport{MaxIdleConnsPerHost: 200}
	h := &harness{act: act, srv: srv, served: served, addr: ln.Addr().String(), client: &http.Client{Transport: transport}}
	t.Cleanup(func() {
		transport.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return h
}

// shutdown stops the server and drains the activator, as cmd does on
// SIGTERM. Later calls return the first one's result.
func (h *harness) shutdown(ctx context.Context) error {
	h.stop.Do(func() {
		if err := h.srv.Shutdown(ctx); err != nil {
			h.stopErr = fmt.Errorf("shutdown: %w", err)
			return
		}
		if err := h.act.Drain(ctx); err != nil {
			h.stopErr = err
			return
		}
		if err := <-h.served; !errors.Is(err, http.ErrServerClosed) {
			h.stopErr = fmt.Errorf("serve: %w", err)
		}
	})
	return h.stopErr
}

// request returns a request to the activator for the test revision.
func (h *harness) request(ctx context.Context, t testing.TB, path string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+h.addr+path, nil)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.Header.Set(NamespaceHeader, testNamespace)
	req.Header.Set(RevisionHeader, testRevision)
	return req
}

// reply is a response read in full.
type reply struct {
	status int
	body   string
	header http.Header
	// closed is true when the server closed the connection after it
	// (Connection: close, which Go's client takes out of header).
	closed bool
}

// get sends a request for the test revision; a transport error fails the
// test. It may run on any goroutine.
func (h *harness) get(t testing.TB, path string) reply {
	return h.do(t, h.request(context.Background(), t, path))
}

// do sends req and reads the whole response.
func (h *harness) do(t testing.TB, req *http.Request) reply {
	resp, err := h.client.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", req.Method, req.URL, err)
		return reply{}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return reply{status: resp.StatusCode, body: string(body), header: resp.Header, closed: resp.Close}
}

// getAsync sends a request for the test revision on its own goroutine.
func (h *harness) getAsync(t testing.TB, path string) <-chan reply {
	out := make(chan reply, 1)
	go func() { out <- h.get(t, path) }()
	return out
}

// stats returns the test revision's stats.
func (h *harness) stats() RevisionStats { return h.act.Stats()[testKey] }

// waitFor polls cond until it holds, failing the test after 10 s. Tests use
// it only to observe that a request reached a state (waiting, in flight),
// never to wait for time to pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testrun.Poll{Within: 10 * time.Second, Every: time.Millisecond}.Until(t, what, cond)
}

// expect checks a reply's status and that its body contains want.
func expect(t testing.TB, got reply, status int, want string) {
	t.Helper()
	if got.status != status || !strings.Contains(got.body, want) {
		t.Errorf("got %d %q, want %d with %q", got.status, got.body, status, want)
	}
}

// text answers every request with body.
func text(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, body)
	})
}

// gate is a backend handler that holds every request until opened, telling
// the test when each arrives.
type gate struct {
	arrived chan struct{}
	open    chan struct{}
}

func newGate() *gate {
	return &gate{arrived: make(chan struct{}, 1000), open: make(chan struct{})}
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.arrived <- struct{}{}
	select {
	case <-g.open:
		_, _ = io.WriteString(w, "released")
	case <-r.Context().Done():
	}
}

// await waits for n requests to have arrived at the gate.
func (g *gate) await(t testing.TB, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for range n {
		select {
		case <-g.arrived:
		case <-timeout:
			t.Fatalf("timed out waiting for %d requests at the backend", n)
		}
	}
}
