package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kgate/kgate/activator"
	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/pki"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/xds"
)

// serveRevision serves an xDS server on loopback, with mutual TLS, until
// the test ends, publishing revision default/hello-00001 with pod as its
// one pod, and returns the flags that reach it: the address, and a folder
// of credentials for an activator with node id "activator-test".
func serveRevision(t *testing.T, pod http.Handler) []string {
	t.Helper()
	backend := httptest.NewServer(pod)
	t.Cleanup(backend.Close)
	addr := backend.Listener.Addr().(*net.TCPAddr)

	trust, err := newLocalPKI()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := trust.writeBundle(pki.Identity{Role: pki.Activator, ID: "activator-test"}, dir); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := xds.NewServer(ctx, xds.ServerOptions{TLS: trust.serverTLS()})
	eng, err := xds.NewEngine(srv, xds.EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Update(model.Config{
		Revisions: []model.Revision{{Namespace: "default", Name: "hello-00001", Protocol: model.HTTP1, Timeout: 30 * time.Second}},
		Endpoints: []model.RevisionEndpoints{{Revision: "default/hello-00001", Mode: model.Proxy,
			Pods: []model.Endpoint{{Address: addr.IP.String(), Port: uint32(addr.Port)}}}},
	}); err != nil {
		t.Fatal(err)
	}
	lis := testrun.Listen(t)
	testrun.Go(t, ctx, "xDS Serve", 10*time.Second, func(ctx context.Context) error { return srv.Serve(ctx, lis) })
	t.Cleanup(cancel) // before Go's cleanup: the server's context ends with Serve's
	return []string{"--xds-address", lis.Addr().String(), "--xds-tls-dir", dir}
}

// addressLog is the command's log output; it hands the test the address
// the activator serves on, which --listen 127.0.0.1:0 leaves to the system.
type addressLog struct {
	testrun.Buffer
	found chan string
}

var servingAt = regexp.MustCompile(`msg="activator serving" address=(\S+)`)

func (l *addressLog) Write(p []byte) (int, error) {
	n, err := l.Buffer.Write(p)
	if m := servingAt.FindSubmatch(p); m != nil {
		l.found <- string(m[1])
	}
	return n, err
}

// startActivator runs `kgate activator` in-process until ctx ends and
// returns the address it serves on and its exit.
func startActivator(t *testing.T, ctx context.Context, xdsFlags []string, extra ...string) (string, <-chan error, *addressLog) {
	t.Helper()
	args := append([]string{"--listen", "127.0.0.1:0", "--node-id", "activator-test", "--drain-delay", "0"}, xdsFlags...)
	return startActivatorAs(t, ctx, append(args, extra...)...)
}

// get sends a request for default/hello-00001 to the activator at addr.
func get(addr, path string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set(activator.NamespaceHeader, "default")
	req.Header.Set(activator.RevisionHeader, "hello-00001")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// awaitRevision polls until the activator has learned the revision from
// the control plane and proxies to its pod.
func awaitRevision(t *testing.T, addr string) {
	t.Helper()
	testrun.Poll{Within: 10 * time.Second, Every: 20 * time.Millisecond}.Eventually(t, "the activator proxies to the pod", func() error {
		status, body, err := get(addr, "/")
		if err == nil && status == http.StatusOK {
			return nil
		}
		return fmt.Errorf("%d %q %v", status, body, err)
	})
}

// holdingPod answers "/hold" only once released, and anything else at once.
type holdingPod struct {
	arrived chan struct{}
	release chan struct{}
}

func newHoldingPod() *holdingPod {
	return &holdingPod{arrived: make(chan struct{}, 10), release: make(chan struct{})}
}

func (p *holdingPod) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/hold" {
		p.arrived <- struct{}{}
		<-p.release
	}
	_, _ = io.WriteString(w, "done "+r.URL.Path)
}

func TestActivatorCommandDrainsOnShutdown(t *testing.T) {
	pod := newHoldingPod()
	xdsFlags := serveRevision(t, pod)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, exited, logs := startActivator(t, ctx, xdsFlags)
	awaitRevision(t, addr)

	type reply struct {
		status int
		body   string
		err    error
	}
	held := make(chan reply, 1)
	go func() {
		status, body, err := get(addr, "/hold")
		held <- reply{status, body, err}
	}()
	<-pod.arrived

	cancel() // SIGTERM
	// The listener closes at once, while the request in flight goes on.
	testrun.Poll{Within: 10 * time.Second, Every: 10 * time.Millisecond}.Until(t, "the activator stops accepting connections after shutdown began", func() bool {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return true
		}
		conn.Close()
		return false
	})
	select {
	case err := <-exited:
		t.Fatalf("exited (%v) with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}

	close(pod.release)
	if r := <-held; r.err != nil || r.status != http.StatusOK || r.body != "done /hold" {
		t.Errorf("request in flight: %d %q %v, want 200 done /hold", r.status, r.body, r.err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit: %v, want none\n%s", err, logs)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("kgate activator did not exit after draining\n%s", logs)
	}
}

func TestActivatorCommandDrainTimeout(t *testing.T) {
	pod := newHoldingPod()
	defer close(pod.release)
	xdsFlags := serveRevision(t, pod)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, exited, _ := startActivator(t, ctx, xdsFlags, "--drain-timeout", "200ms")
	awaitRevision(t, addr)
	go func() { _, _, _ = get(addr, "/hold") }()
	<-pod.arrived

	cancel()
	select {
	case err := <-exited:
		if err == nil || !strings.Contains(err.Error(), "--drain-timeout 200ms") || strings.Contains(err.Error(), "\n") {
			t.Errorf("exit: %v, want one line naming the drain timeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("kgate activator did not exit after its drain timeout")
	}
}

func TestActivatorCommandBadFlags(t *testing.T) {
	busy := testrun.Listen(t)
	for _, args := range [][]string{
		{"--xds-address", "no-port"},
		{"--xds-tls-dir", t.TempDir()},
		{"--plaintext", "--xds-address", "10.0.0.1:18000"},
		{"--listen", busy.Addr().String()},
		{"--node-id", ""},
		{"--drain-timeout", "0s"},
		{"--log-level", "loud"},
	} {
		_, err := run(t, append([]string{"activator"}, args...)...)
		if err == nil || strings.Contains(err.Error(), "\n") || errors.Is(err, context.Canceled) {
			t.Errorf("activator %v: error %v, want one line", args, err)
		}
	}
}

// On SIGTERM the readiness probe fails at once while new requests are
// still served for the drain delay; then the activator stops.
func TestActivatorCommandDrainDelay(t *testing.T) {
	xdsFlags := serveRevision(t, newHoldingPod())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, exited, logs := startActivator(t, ctx, xdsFlags, "--drain-delay", "600ms")
	awaitRevision(t, addr)
	probe := func() int {
		resp, err := http.Get("http://" + addr + readyPath)
		if err != nil {
			t.Fatalf("probe: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := probe(); got != http.StatusOK {
		t.Fatalf("ready before shutdown: %d, want 200", got)
	}
	start := time.Now()
	cancel() // SIGTERM
	testrun.Poll{Within: 5 * time.Second, Every: 5 * time.Millisecond}.Until(t, "the readiness probe fails after SIGTERM", func() bool {
		return probe() == http.StatusServiceUnavailable
	})
	if time.Since(start) < 500*time.Millisecond {
		// Still within the drain delay: a new request is served.
		if status, _, err := get(addr, "/"); err != nil || status == http.StatusServiceUnavailable {
			t.Errorf("a new request during the drain delay: %d %v", status, err)
		}
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit: %v\n%s", err, logs)
		}
		if took := time.Since(start); took < 600*time.Millisecond {
			t.Errorf("exited %v after SIGTERM, before the 600ms drain delay", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("did not exit\n%s", logs)
	}
}
