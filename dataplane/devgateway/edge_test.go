package devgateway_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
)

// The edge limits the translator sets on the gateway listeners, as the dev
// gateway enforces them.

// edgeEnv runs the gateway with opts and one app, "hello", answering
// "hello"; it returns the external listener's address and the backend.
func edgeEnv(t *testing.T, opts translator.Options) (string, *backend) {
	t.Helper()
	e := newEnv(t, envOptions{translator: opts})
	b := newBackend(t, "hello", nil)
	e.update(apps(app{name: "hello", pods: []model.Endpoint{b.endpoint}}))
	ext := e.addr(translator.ExternalListener)
	awaitBody(t, client(t), ext, externalHost("hello"), "/", "hello")
	return ext, b
}

// Headers too large or too many get 431, a name with an underscore 400,
// and none of them reaches the revision; the others pass.
func TestHeaderLimits(t *testing.T) {
	ext, b := edgeEnv(t, translator.Options{})
	tests := []struct {
		name    string
		headers string
		want    int
	}{
		{"a normal request", "Accept: */*\r\n", http.StatusOK},
		// With Host and Connection.
		{"100 headers", headerLines(98), http.StatusOK},
		{"101 headers", headerLines(99), http.StatusRequestHeaderFieldsTooLarge},
		{"5,000 header lines", headerLines(5000), http.StatusRequestHeaderFieldsTooLarge},
		// Under Go's own read limit (60 KiB + 4 KiB): the gateway's check.
		{"61 KiB of headers", "X-Big: " + strings.Repeat("a", 61<<10) + "\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"59 KiB of headers", "X-Big: " + strings.Repeat("a", 59<<10) + "\r\n", http.StatusOK},
		{"a 900 KB header", "X-Big: " + strings.Repeat("a", 900_000) + "\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"an underscore in a name", "X_User: admin\r\n", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := b.hits.Load()
			status, err := rawRequest(ext, "GET / HTTP/1.1\r\nHost: "+externalHost("hello")+"\r\n"+tt.headers+"Connection: close\r\n\r\n")
			if err != nil {
				t.Fatal(err)
			}
			if status != tt.want {
				t.Errorf("status %d, want %d", status, tt.want)
			}
			if reached := b.hits.Load() > before; reached != (tt.want == http.StatusOK) {
				t.Errorf("reached the revision: %v, want %v", reached, tt.want == http.StatusOK)
			}
		})
	}
}

// headerLines returns n distinct header lines.
func headerLines(n int) string {
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, "H%d: v\r\n", i)
	}
	return sb.String()
}

// rawRequest writes req on a new connection to addr while it reads the
// response, as a client that sends more than the server reads must, and
// returns the response's status.
func rawRequest(addr, req string) (int, error) {
	conn, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(waitFor)); err != nil {
		return 0, err
	}
	written := make(chan struct{})
	go func() {
		defer close(written)
		_, _ = io.WriteString(conn, req) // fails once the server closes: it answered already
	}()
	defer func() { <-written }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// A client that trickles a request's headers (a slowloris) is cut off once
// request_headers_timeout has passed, not before; one that sends its
// headers in time is served.
func TestSlowHeadersAreCut(t *testing.T) {
	const timeout = time.Second
	ext, b := edgeEnv(t, translator.Options{Limits: translator.Limits{RequestHeadersTimeout: timeout}})

	conn, err := net.DialTimeout("tcp", ext, waitFor)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	ctx, stop := context.WithCancel(context.Background())
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		trickle(ctx, conn, "GET / HTTP/1.1\r\nHost: "+externalHost("hello")+"\r\n", 500*time.Millisecond)
	}()
	defer func() { stop(); <-trickled }()

	// The server closes the connection; a read sees it at once.
	if err := conn.SetReadDeadline(start.Add(5 * timeout)); err != nil {
		t.Fatal(err)
	}
	n, err := conn.Read(make([]byte, 512))
	elapsed := time.Since(start)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatalf("the connection is still open after %v", elapsed)
	case err == nil:
		t.Fatalf("the server answered (%d bytes) a request whose headers never ended", n)
	case elapsed < timeout-100*time.Millisecond:
		t.Fatalf("the connection was closed after %v, before the %v header timeout", elapsed, timeout)
	case elapsed > 3*timeout:
		t.Fatalf("the connection was closed after %v, long after the %v header timeout", elapsed, timeout)
	}
	if b.hits.Load() != 1 { // awaitBody's request only
		t.Errorf("the revision got %d requests, want 1", b.hits.Load())
	}
	// A request sent at once is still served.
	if status, err := rawRequest(ext, "GET / HTTP/1.1\r\nHost: "+externalHost("hello")+"\r\nConnection: close\r\n\r\n"); err != nil || status != http.StatusOK {
		t.Fatalf("a prompt request: %d %v, want 200", status, err)
	}
}

// trickle writes head, then a piece of a header line every interval, never
// ending the headers, until ctx ends or a write fails.
func trickle(ctx context.Context, conn net.Conn, head string, interval time.Duration) {
	if _, err := io.WriteString(conn, head+"X-Slow: "); err != nil {
		return
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if _, err := io.WriteString(conn, "a"); err != nil {
				return
			}
		}
	}
}

// Over HTTP/2 (h2c) a request with too many headers is reset, as Envoy's
// codec does; a normal one passes.
func TestHeaderCountHTTP2(t *testing.T) {
	ext, _ := edgeEnv(t, translator.Options{})
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: protocols}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: waitFor}

	if r := get(t, c, ext, externalHost("hello"), "/", nil); r.status != http.StatusOK || r.body != "hello" {
		t.Fatalf("a normal h2c request: %d %q", r.status, r.body)
	}
	many := http.Header{}
	for i := range 150 {
		many.Set(fmt.Sprintf("H%d", i), "v")
	}
	if r, err := do(c, http.MethodGet, ext, externalHost("hello"), "/", many); err == nil {
		t.Fatalf("150 headers over h2c: got %d %q, want a reset stream", r.status, r.body)
	}
}
