package activator

import (
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/kgate/kgate/translator/model"
)

const (
	// upstreamIdleTimeout closes idle pod connections before common
	// application servers do (Node.js and others: 5 s), so a request is
	// never written on a connection the pod is closing. The gateway's
	// revision clusters use the same value.
	upstreamIdleTimeout = 4 * time.Second
	// maxIdlePerPod keeps enough pod connections open for a busy pod that
	// has no containerConcurrency limit; Go's default of 2 would make the
	// activator open and close connections at every burst.
	maxIdlePerPod = 100
	// dialTimeout bounds connecting to a pod, which is local to the cluster.
	dialTimeout = 5 * time.Second
)

// transports are the two ways to reach pods: HTTP/1.1 and cleartext
// HTTP/2 with prior knowledge.
type transports struct {
	http1 *http.Transport
	h2c   *http.Transport
}

func newTransports() transports {
	h2c := newTransport()
	h2c.Protocols = new(http.Protocols)
	h2c.Protocols.SetUnencryptedHTTP2(true)
	return transports{http1: newTransport(), h2c: h2c}
}

func newTransport() *http.Transport {
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:         dialer.DialContext,
		MaxIdleConns:        10 * maxIdlePerPod,
		MaxIdleConnsPerHost: maxIdlePerPod,
		IdleConnTimeout:     upstreamIdleTimeout,
		// A proxy passes bodies through as they are: it must not ask for
		// gzip and decompress on the application's behalf.
		DisableCompression: true,
	}
}

// forRequest returns the transport for a request to a pod speaking p.
// Upgrades (WebSocket) go over HTTP/1.1 whatever the protocol: HTTP/2
// cannot carry an HTTP/1.1 Upgrade, and a server that upgrades speaks
// HTTP/1.1 (Go's h2c servers take both on one port).
func (t transports) forRequest(p model.Protocol, r *http.Request) http.RoundTripper {
	if p == model.H2C && r.Header.Get("Upgrade") == "" {
		return t.h2c
	}
	return t.http1
}

// closeIdle closes the pod connections no request uses.
func (t transports) closeIdle() {
	t.http1.CloseIdleConnections()
	t.h2c.CloseIdleConnections()
}

// bufferPool recycles the buffers ReverseProxy copies bodies through, one
// 32 KiB buffer per request otherwise. It holds array pointers, which go in
// and out of the pool's interface without allocating: a *[]byte would cost
// an allocation on every Put.
type bufferPool struct{ pool sync.Pool }

const copyBufferSize = 32 << 10

// Get returns a buffer for one body copy.
func (b *bufferPool) Get() []byte {
	if buf, ok := b.pool.Get().(*[copyBufferSize]byte); ok {
		return buf[:]
	}
	return make([]byte, copyBufferSize)
}

// Put recycles buf, a buffer Get returned.
func (b *bufferPool) Put(buf []byte) {
	if len(buf) == copyBufferSize {
		b.pool.Put((*[copyBufferSize]byte)(buf))
	}
}
