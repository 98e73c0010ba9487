package devgateway

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// listener serves one Listener: a socket and an HTTP server taking
// HTTP/1.1 and h2c (prior knowledge) on it, or TLS carrying HTTP/1.1 or
// HTTP/2 as ALPN chooses. A config update that keeps
// the address and the server's limits swaps the connection manager under
// the running server, so no connection is dropped; connections already
// open serve their next requests with the new config, as Envoy's do not
// (they drain), which only makes a change apply sooner. An update that
// changes the limits hands the socket to a new server (handOver).
type listener struct {
	name string
	// configured is the address the Listener says (guarded by the
	// Gateway's mu); requested is where Options.ListenAddress bound it.
	configured string
	requested  string
	cm         atomic.Pointer[connManager]
	// tls is the TLS of new connections, which an update swaps like cm;
	// secure says the server was built for TLS, which a listener keeps
	// for its server's life (a change hands the socket over).
	tls    atomic.Pointer[tlsContext]
	secure bool
	proxy  *proxy

	sock *socket
	lis  net.Listener // this server's view of sock, from start on when handed over
	srv  *http.Server
	// limits are what srv was built with.
	limits serverLimits
	// active counts the requests under way, upgraded connections
	// included, which http.Server.Shutdown does not wait for.
	active underway
	// hardStop cancels every request's context, ending upgraded
	// connections too.
	hardStop context.CancelFunc
	served   chan struct{}
}

// bind opens cfg's socket at addr, without serving it yet: an LDS update
// binds every new socket before it serves any, so that one failure can
// refuse the update whole.
func bind(cfg *listenerConfig, addr string, p *proxy, conns *connLimiter) (*listener, error) {
	sock, err := listenSocket(addr, conns)
	if err != nil {
		return nil, fmt.Errorf("listener %s: binding %s: %w", cfg.name, addr, err)
	}
	l := newListener(cfg, addr, sock, p)
	l.lis = sock.view()
	return l, nil
}

// handOver returns a listener serving cfg on l's socket with a new server,
// not started yet: l gets the new connections until the new one starts,
// and keeps those it has until stopped.
func (l *listener) handOver(cfg *listenerConfig) *listener {
	return newListener(cfg, l.requested, l.sock, l.proxy)
}

func newListener(cfg *listenerConfig, addr string, sock *socket, p *proxy) *listener {
	base, hardStop := context.WithCancel(context.Background())
	l := &listener{
		name: cfg.name, configured: cfg.address, requested: addr,
		proxy: p, sock: sock, hardStop: hardStop, served: make(chan struct{}),
		limits: cfg.cm.server, secure: cfg.tls != nil,
	}
	l.cm.Store(cfg.cm)
	l.tls.Store(cfg.tls)
	l.srv = l.limits.server(l, l.secure)
	l.srv.BaseContext = func(net.Listener) context.Context { return base }
	l.srv.ErrorLog = p.errorLog
	sock.conns.register(l.srv)
	return l
}

// start serves the socket; a listener handed the socket takes the new
// connections from now on.
func (l *listener) start() {
	if l.lis == nil {
		l.lis = l.sock.view()
	}
	lis := l.lis
	if l.secure {
		// Each handshake takes the TLS config in place when it starts;
		// Go's server reads the negotiated ALPN protocol and serves
		// HTTP/2 or HTTP/1.1.
		lis = tls.NewListener(lis, &tls.Config{
			GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return l.tls.Load().config, nil },
		})
	}
	go func() {
		defer close(l.served)
		_ = l.srv.Serve(lis) // ends with ErrServerClosed once stopped
	}()
}

// abandon lets go of the socket of a listener never started: it closes a
// socket bound for it, and leaves one it was to be handed.
func (l *listener) abandon() {
	l.sock.conns.unregister(l.srv)
	l.hardStop()
	if l.lis != nil {
		_ = l.lis.Close()
	}
}

// addr is where the listener is bound.
func (l *listener) addr() string { return l.sock.lis.Addr().String() }

// ServeHTTP serves one request with the connection manager in place when
// it arrived.
func (l *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.active.add()
	defer l.active.done()
	cm := l.cm.Load()
	if !cm.speaks(r.ProtoMajor) {
		// The socket takes both protocols so that a codec change needs no
		// new socket; a connection in the other one is refused as Envoy's
		// codec would refuse it.
		panic(http.ErrAbortHandler)
	}
	var rec *requestRecord
	if l.proxy.observes(cm) {
		rec = l.proxy.startRecord(cm, w, r)
		w = rec
		defer l.proxy.endRecord(cm, r, rec)
	}
	if err := cm.limits.checkHeaders(r); err != nil {
		rec.setFlag(flagDownstreamProtocol)
		refuse(w, r, err)
		return
	}
	if err := cm.limits.paths.apply(r); err != nil {
		rec.setFlag(flagDownstreamProtocol)
		localReply(w, http.StatusBadRequest, "", nil)
		return
	}
	l.proxy.serve(cm, w, r, rec)
}

// speaks reports whether the codec accepts HTTP/major.
func (cm *connManager) speaks(major int) bool {
	switch cm.codec {
	case hcmv3.HttpConnectionManager_HTTP1:
		return major == 1
	case hcmv3.HttpConnectionManager_HTTP2:
		return major == 2
	}
	return true
}

// stop drains the listener: it stops accepting, lets the requests under
// way finish for up to grace, then ends what is left.
func (l *listener) stop(grace time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	_ = l.srv.Shutdown(ctx) // closes idle connections and waits for requests
	select {
	case <-l.active.idle(): // upgraded connections too
	case <-ctx.Done():
	}
	l.hardStop()
	_ = l.srv.Close()
	l.sock.conns.unregister(l.srv)
	<-l.active.idle()
	<-l.served
}

// underway counts work under way and tells when there is none; unlike a
// sync.WaitGroup, work may start while another goroutine waits.
type underway struct {
	mu   sync.Mutex
	n    int
	none chan struct{} // closed while n is 0; nil means closed
}

func (f *underway) add() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		f.none = make(chan struct{})
	}
	f.n++
}

func (f *underway) done() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.n == 0 {
		close(f.none)
	}
}

// idle returns a channel closed once nothing is under way.
func (f *underway) idle() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		return closed
	}
	return f.none
}

var closed = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()
