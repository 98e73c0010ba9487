package devgateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/kgate/kgate/dataplane/devgateway"
	"github.com/kgate/kgate/dataplane/inflight"
	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
)

// HTTP/1.1 and h2c clients on one port; HTTP/1.1 or h2c to the
// application as its revision's protocol says.
func TestProtocols(t *testing.T) {
	e := newEnv(t, envOptions{})
	backend := newBackend(t, "app", nil)
	e.update(apps(
		app{name: "plain", pods: []model.Endpoint{backend.endpoint}},
		app{name: "h2", protocol: model.H2C, pods: []model.Endpoint{backend.endpoint}},
	))
	ext := e.addr(translator.ExternalListener)
	h1 := client(t)
	h2Transport := &http.Transport{Protocols: new(http.Protocols)}
	h2Transport.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(h2Transport.CloseIdleConnections)
	h2 := &http.Client{Transport: h2Transport, Timeout: waitFor}
	awaitBody(t, h1, ext, externalHost("plain"), "/", "app")
	awaitBody(t, h1, ext, externalHost("h2"), "/", "app")

	for _, tc := range []struct {
		client               *http.Client
		host                 string
		downstream, upstream string
	}{
		{h1, externalHost("plain"), "HTTP/1.1", "HTTP/1.1"},
		{h1, externalHost("h2"), "HTTP/1.1", "HTTP/2.0"},
		{h2, externalHost("plain"), "HTTP/2.0", "HTTP/1.1"},
		{h2, externalHost("h2"), "HTTP/2.0", "HTTP/2.0"},
	} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+ext+"/", nil)
		req.Host = tc.host
		resp, err := tc.client.Do(req)
		if err != nil {
			t.Fatalf("%s client to %s: %v", tc.downstream, tc.host, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Proto != tc.downstream || resp.Header.Get("Req-Proto") != tc.upstream {
			t.Errorf("%s client to %s: %d over %s, upstream %s; want 200 over %s, upstream %s",
				tc.downstream, tc.host, resp.StatusCode, resp.Proto, resp.Header.Get("Req-Proto"), tc.downstream, tc.upstream)
		}
	}
}

// gRPC through the gateway to an h2c revision: unary calls, errors
// carried in trailers, and server streaming.
func TestGRPC(t *testing.T) {
	e := newEnv(t, envOptions{})
	lis := testrun.Listen(t)
	g := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(g, hs)
	go g.Serve(lis)
	t.Cleanup(g.Stop)

	e.update(apps(app{name: "grpc", protocol: model.H2C, timeout: 300 * time.Second, pods: []model.Endpoint{endpointOf(lis.Addr())}}))
	ext := e.addr(translator.ExternalListener)
	// The authority carries the port, as gRPC clients send it: the
	// virtual host's "host:*" domain matches it.
	conn := testrun.Dial(t, ext, grpc.WithAuthority(externalHost("grpc")+":80"))
	hc := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	eventually(t, "gRPC health check through the gateway", func() error {
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("status %v", resp.GetStatus())
		}
		return nil
	})
	_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "unknown"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("unknown service: %v, want NotFound (from the trailers)", err)
	}

	hs.SetServingStatus("watched", healthpb.HealthCheckResponse_NOT_SERVING)
	stream, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: "watched"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []healthpb.HealthCheckResponse_ServingStatus{healthpb.HealthCheckResponse_NOT_SERVING, healthpb.HealthCheckResponse_SERVING} {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
		if resp.GetStatus() != want {
			t.Fatalf("watch: %v, want %v", resp.GetStatus(), want)
		}
		hs.SetServingStatus("watched", healthpb.HealthCheckResponse_SERVING)
	}
}

// A WebSocket upgrade goes through, to an h2c revision too (over
// HTTP/1.1), and the connection outlives the route timeout, which bounds
// only the upgrade.
func TestWebSocket(t *testing.T) {
	counter := new(inflight.Counter)
	e := newEnv(t, envOptions{gateway: func(o *devgateway.Options) { o.Inflight = counter }})
	echo := newBackend(t, "echo", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "not an upgrade", http.StatusBadRequest)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprint(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		rw.Flush()
		io.Copy(conn, rw) // echo until the client closes
	})
	e.update(apps(app{name: "ws", protocol: model.H2C, timeout: 200 * time.Millisecond, pods: []model.Endpoint{echo.endpoint}}))
	ext := e.addr(translator.ExternalListener)
	eventually(t, "WebSocket route", func() error {
		r, err := do(client(t), http.MethodGet, ext, externalHost("ws"), "/", nil)
		if err != nil {
			return err
		}
		if r.status != http.StatusBadRequest {
			return fmt.Errorf("plain GET: %d", r.status)
		}
		return nil
	})

	conn, err := net.DialTimeout("tcp", ext, waitFor)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(waitFor))
	fmt.Fprintf(conn, "GET /chat HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", externalHost("ws"))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %d, want 101", resp.StatusCode)
	}
	for i, msg := range []string{"hello", "after the route timeout"} {
		if i > 0 {
			time.Sleep(400 * time.Millisecond)
		}
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil {
			t.Fatalf("echo of %q: %v", msg, err)
		}
		if string(got) != msg {
			t.Fatalf("echo: %q, want %q", got, msg)
		}
	}

	// The session is in flight to its pod until it closes.
	pod := net.JoinHostPort(echo.endpoint.Address, strconv.FormatUint(uint64(echo.endpoint.Port), 10))
	if n := counter.Count(pod); n != 1 {
		t.Errorf("in flight to the pod during the session: %d, want 1", n)
	}
	conn.Close()
	eventually(t, "the session counted out", func() error {
		if n := counter.Count(pod); n != 0 {
			return fmt.Errorf("%d in flight", n)
		}
		return nil
	})
}
