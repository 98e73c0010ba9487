package devgateway

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kgate/kgate/dataplane/inflight"
)

// rawConn is a client connection the test drives by hand, to see when the
// gateway serves it and whether it keeps it open.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

// dialRaw connects to addr; the test's cleanup closes the connection.
func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

// send writes a keep-alive GET for path.
func (c *rawConn) send(t *testing.T, path string) {
	t.Helper()
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
}

// read reads a response within 10 s: its status and body, and whether
// the gateway closes the connection after it.
func (c *rawConn) read(t *testing.T) (got string, closes bool) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading a body: %v", err)
	}
	return fmt.Sprintf("%d %s", resp.StatusCode, body), resp.Close
}

// get sends a GET for path and reads its response.
func (c *rawConn) get(t *testing.T, path string) (got string, closes bool) {
	t.Helper()
	c.send(t, path)
	return c.read(t)
}

// awaitClosed fails the test unless the gateway closes the connection
// within 10 s.
func (c *rawConn) awaitClosed(t *testing.T) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := c.br.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("read on a connection the gateway should have closed: %d bytes, %v; want EOF", n, err)
	}
}

// holdingBackend is heldBackend whose requests are released by release, or
// at the end of the test if it fails first (the backend's Close waits for
// them).
func holdingBackend(t *testing.T) (addr *net.TCPAddr, holding *atomic.Int64, release func()) {
	ch := make(chan struct{})
	holding = new(atomic.Int64)
	addr = heldBackend(t, ch, holding)
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	return addr, holding, release
}

// At the ceiling the gateway accepts no more connections: a newcomer
// waits in the accept queue and is served once one closes.
func TestConnectionCeiling(t *testing.T) {
	backend, holding, release := holdingBackend(t)
	g := servingWith(t, backend, func(o *Options) { o.MaxConnections = 3 })
	addr := g.Addr("web")
	var held []chan string
	for range 3 {
		held = append(held, inBackground(addr, "/hold"))
	}
	waitHeld(t, holding, 3)

	fourth := dialRaw(t, addr)
	fourth.send(t, "/")
	if err := fourth.SetReadDeadline(time.Now().Add(300 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if n, err := fourth.br.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a fourth connection at a ceiling of 3: read %d bytes, %v; want it left waiting", n, err)
	}
	if n := g.conns.openConns(); n != 3 {
		t.Errorf("%d connections open, want the ceiling, 3", n)
	}

	release()
	for _, done := range held {
		if got := <-done; got != "200 ok" {
			t.Errorf("held request: %q, want 200 ok", got)
		}
	}
	if got, _ := fourth.read(t); got != "200 ok" {
		t.Errorf("the fourth connection once one closed: %q, want 200 ok", got)
	}
}

// From the high-water mark on, keep-alives are off: idle connections
// close and responses close theirs, until the count is back at the
// low-water mark.
func TestKeepAlivesOffAboveHighWater(t *testing.T) {
	backend, holding, release := holdingBackend(t)
	// A ceiling of 10: off at 8 connections, on again at 6.
	g := servingWith(t, backend, func(o *Options) { o.MaxConnections = 10 })
	addr := g.Addr("web")

	idle := dialRaw(t, addr)
	if got, closes := idle.get(t, "/"); got != "200 ok" || closes {
		t.Fatalf("first request: %q, closes %v; want 200 ok, kept alive", got, closes)
	}
	// Seven held requests make eight connections, the high-water mark;
	// the idle one closes, which leaves seven, above the low-water mark.
	var held []chan string
	for range 7 {
		held = append(held, inBackground(addr, "/hold"))
	}
	waitHeld(t, holding, 7)
	idle.awaitClosed(t)
	if got, closes := dialRaw(t, addr).get(t, "/"); got != "200 ok" || !closes {
		t.Errorf("a request above the high-water mark: %q, closes %v; want 200 ok and the connection closed", got, closes)
	}

	release()
	for _, done := range held {
		if got := <-done; got != "200 ok" {
			t.Errorf("held request: %q, want 200 ok", got)
		}
	}
	waitUntil(t, "keep-alives on again", func() bool {
		c := dialRaw(t, addr)
		defer c.Close()
		_, closes := c.get(t, "/")
		return !closes
	})
}

// Beyond the ceiling on requests (which an HTTP/2 client could reach on
// few connections), the gateway answers 503 as Envoy's overload manager
// does, closing an HTTP/1 connection.
func TestRequestCeiling(t *testing.T) {
	backend, holding, release := holdingBackend(t)
	g := servingWith(t, backend, func(o *Options) { o.MaxConnections, o.MaxRequests = 100, 2 })
	addr := g.Addr("web")
	held := []chan string{inBackground(addr, "/hold"), inBackground(addr, "/hold")}
	waitHeld(t, holding, 2)
	if got, closes := dialRaw(t, addr).get(t, "/"); got != "503 "+bodyOverloaded || !closes {
		t.Errorf("a third request at a ceiling of 2: %q, closes %v; want 503 %s and the connection closed", got, closes, bodyOverloaded)
	}
	release()
	for _, done := range held {
		if got := <-done; got != "200 ok" {
			t.Errorf("held request: %q, want 200 ok", got)
		}
	}
	if got, closes := dialRaw(t, addr).get(t, "/"); got != "200 ok" || closes {
		t.Errorf("once the held requests ended: %q, closes %v; want 200 ok, kept alive", got, closes)
	}
}

// An upstream's 503 (the activator shedding a flood, or any overloaded
// application) closes the client's connection; other answers keep it.
func TestUpstream503ClosesTheConnection(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/busy" {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(backend.Close)
	g := serving(t, backend.Listener.Addr().(*net.TCPAddr))
	for _, tc := range []struct {
		path, want string
		closes     bool
	}{
		{"/", "200 ok", false},
		{"/busy", "503 busy\n", true},
	} {
		t.Run(tc.path, func(t *testing.T) {
			got, closes := dialRaw(t, g.Addr("web")).get(t, tc.path)
			if got != tc.want || closes != tc.closes {
				t.Errorf("GET %s: %q, closes %v; want %q, closes %v", tc.path, got, closes, tc.want, tc.closes)
			}
		})
	}
}

// The shared counter has a request in flight to its host from before it
// is sent until its response body has been copied in full.
func TestInflightCounter(t *testing.T) {
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		io.WriteString(w, "first half, ")
		http.NewResponseController(w).Flush()
		select {
		case <-release:
			io.WriteString(w, "second half")
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(backend.Close)
	host := backend.Listener.Addr().String()
	counter := new(inflight.Counter)
	g := servingWith(t, backend.Listener.Addr().(*net.TCPAddr), func(o *Options) { o.Inflight = counter })

	c := dialRaw(t, g.Addr("web"))
	c.send(t, "/")
	<-arrived
	if n := counter.Count(host); n != 1 {
		t.Errorf("in flight while the host answers: %d, want 1", n)
	}
	// The headers and the first half reach the client; the rest has not.
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if n := counter.Count(host); n != 1 {
		t.Errorf("in flight while the body streams: %d, want 1", n)
	}
	close(release)
	if body, err := io.ReadAll(resp.Body); err != nil || string(body) != "first half, second half" {
		t.Errorf("body %q, %v", body, err)
	}
	waitUntil(t, "the request counted out", func() bool { return counter.Count(host) == 0 })
}
