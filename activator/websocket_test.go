package activator

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kgate/kgate/dataplane/inflight"
	"github.com/kgate/kgate/translator/model"
)

// A tiny WebSocket (RFC 6455) peer: enough of the handshake and framing to
// prove that an upgraded connection passes through the activator byte for
// byte. Frames are single, unfragmented and shorter than 126 bytes.

const (
	opText  = 0x1
	opClose = 0x8
	// wsGUID is the RFC 6455 constant mixed into Sec-WebSocket-Accept.
	wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
	// wsKey is the RFC 6455 example key; any 16 bytes in base64 do.
	wsKey = "dGhlIHNhbXBsZSBub25jZQ=="
)

func wsAccept(key string) string {
	sum := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// writeFrame writes one final frame; clients mask, servers do not.
func writeFrame(w io.Writer, op byte, payload []byte, mask bool) error {
	if len(payload) >= 126 {
		return errors.New("test frames are shorter than 126 bytes")
	}
	frame := []byte{0x80 | op, byte(len(payload))}
	if mask {
		key := [4]byte{0x12, 0x34, 0x56, 0x78}
		frame[1] |= 0x80
		frame = append(frame, key[:]...)
		for i, b := range payload {
			frame = append(frame, b^key[i%4])
		}
	} else {
		frame = append(frame, payload...)
	}
	_, err := w.Write(frame)
	return err
}

// readFrame reads one frame and unmasks it.
func readFrame(r io.Reader) (op byte, payload []byte, err error) {
	var head [2]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return 0, nil, err
	}
	n := int(head[1] & 0x7f)
	if n >= 126 {
		return 0, nil, errors.New("test frames are shorter than 126 bytes")
	}
	var key [4]byte
	masked := head[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return 0, nil, err
		}
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return head[0] & 0x0f, payload, nil
}

// wsEcho is a pod that upgrades and echoes every frame until a close.
func wsEcho(t testing.TB) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "not a WebSocket upgrade", http.StatusBadRequest)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			wsAccept(r.Header.Get("Sec-WebSocket-Key")))
		for {
			if err := rw.Flush(); err != nil {
				return
			}
			op, payload, err := readFrame(rw)
			if err != nil {
				return
			}
			if err := writeFrame(rw, op, payload, false); err != nil || op == opClose {
				_ = rw.Flush()
				return
			}
		}
	})
}

// dialWebSocket opens a WebSocket to the test revision through the
// activator; the test's cleanup closes it.
func dialWebSocket(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: hello.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s: %s\r\n%s: %s\r\n\r\n",
		wsKey, NamespaceHeader, testNamespace, RevisionHeader, testRevision)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(wsKey) {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("handshake: %d %v %q, want 101 with the accept key", resp.StatusCode, resp.Header, body)
	}
	return conn, br
}

func TestWebSocket(t *testing.T) {
	for _, proto := range []model.Protocol{model.HTTP1, model.H2C} {
		t.Run(string(proto), func(t *testing.T) {
			counter := new(inflight.Counter)
			h := newHarness(t, Options{Inflight: counter})
			h.act.SetRevision(testKey, RevisionConfig{ContainerConcurrency: 1, Protocol: proto})
			pod := startBackend(t, proto, wsEcho(t))
			h.act.SetEndpoints(testKey, []model.Endpoint{pod})
			podAddr := net.JoinHostPort(pod.Address, strconv.FormatUint(uint64(pod.Port), 10))
			conn, br := dialWebSocket(t, h.addr)

			for _, msg := range []string{"hello", "world"} {
				if err := writeFrame(conn, opText, []byte(msg), true); err != nil {
					t.Fatal(err)
				}
				op, payload, err := readFrame(br)
				if err != nil || op != opText || string(payload) != msg {
					t.Fatalf("echo of %q: op %d %q %v", msg, op, payload, err)
				}
			}

			// The session holds its pod's slot, and the activator counts it
			// in flight, until it closes.
			if s := h.stats(); s.InFlight != 1 {
				t.Errorf("in flight during the session: %d, want 1", s.InFlight)
			}
			if n := counter.Count(podAddr); n != 1 {
				t.Errorf("in flight to the pod during the session: %d, want 1", n)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			if err := h.act.Drain(ctx); err == nil {
				t.Errorf("drain returned during a WebSocket session")
			}

			if err := writeFrame(conn, opClose, nil, true); err != nil {
				t.Fatal(err)
			}
			if op, _, err := readFrame(br); err != nil || op != opClose {
				t.Fatalf("close: op %d %v", op, err)
			}
			conn.Close()
			waitFor(t, "the session to end", func() bool { return h.stats().InFlight == 0 && counter.Count(podAddr) == 0 })
		})
	}
}
