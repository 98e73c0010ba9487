package devgateway

import (
	"net"
	"net/http"
	"sync"
)

// connLimiter bounds the client connections the gateway serves at once,
// across its listeners: each costs a file descriptor of a process that, in
// `kgate local`, the activator, the admin API and the probes share (see
// inflight.Budget).
//
// At the ceiling, the gateway stops accepting: newcomers wait in the
// kernel's accept queue, which costs the process no descriptor, and get
// their turn in arrival order as connections close. Accepting and
// answering 503 would spend a descriptor and a response on every attempt
// of a flood and turn away a newcomer as readily as the flood; a client
// waiting in the queue gets served. Each listener's accept loop may hold
// one connection it accepted while it waits for a slot.
//
// From the high-water mark on, the listeners' keep-alives are off: idle
// HTTP/1 connections close at once and the others after their current
// response (HTTP/2 ones once their last stream ends), so that connections
// are recycled and the accept queue moves. They are on again once the
// count is back to the low-water mark; the gap keeps a count hovering at
// the mark from flipping them at every connection.
type connLimiter struct {
	max, high, low int

	mu   sync.Mutex
	open int
	// freed is closed when a connection closes while an accept loop waits
	// for a slot; nil while none waits.
	freed chan struct{}
	// keepAlivesOff is what the servers should be set to; servers are the
	// listeners' servers, which apply sets.
	keepAlivesOff bool
	servers       map[*http.Server]struct{}

	// apply holds the servers' keep-alive setting consistent with
	// keepAlivesOff: whoever holds it sets every server to the latest
	// state.
	apply sync.Mutex
}

// newConnLimiter returns a limiter for at most ceiling connections:
// keep-alives go off at 80 % of it and on again at 60 %.
func newConnLimiter(ceiling int) *connLimiter {
	ceiling = max(ceiling, 1)
	high := max(ceiling*4/5, 1)
	return &connLimiter{max: ceiling, high: high, low: min(ceiling*3/5, high-1), servers: map[*http.Server]struct{}{}}
}

// acquire waits for a slot for one connection, and reports whether it got
// one before stop was closed.
func (l *connLimiter) acquire(stop <-chan struct{}) bool {
	for {
		l.mu.Lock()
		if l.open < l.max {
			l.open++
			flip := !l.keepAlivesOff && l.open >= l.high
			if flip {
				l.keepAlivesOff = true
			}
			l.mu.Unlock()
			if flip {
				go l.applyKeepAlives()
			}
			return true
		}
		if l.freed == nil {
			l.freed = make(chan struct{})
		}
		freed := l.freed
		l.mu.Unlock()
		select {
		case <-freed:
		case <-stop:
			return false
		}
	}
}

// release gives back the slot of a connection that closed.
func (l *connLimiter) release() {
	l.mu.Lock()
	l.open--
	if l.freed != nil {
		close(l.freed)
		l.freed = nil
	}
	flip := l.keepAlivesOff && l.open <= l.low
	if flip {
		l.keepAlivesOff = false
	}
	l.mu.Unlock()
	if flip {
		// Not here: release runs inside a server's closing of its idle
		// connections, under the server's lock.
		go l.applyKeepAlives()
	}
}

// applyKeepAlives sets every server to the latest keep-alive state.
// Turning them off closes the servers' idle connections, whose release
// may flip the state back: it runs on its own goroutine, never under mu.
func (l *connLimiter) applyKeepAlives() {
	l.apply.Lock()
	defer l.apply.Unlock()
	l.mu.Lock()
	off := l.keepAlivesOff
	servers := make([]*http.Server, 0, len(l.servers))
	for srv := range l.servers {
		servers = append(servers, srv)
	}
	l.mu.Unlock()
	for _, srv := range servers {
		srv.SetKeepAlivesEnabled(!off)
	}
}

// register makes srv follow the keep-alive state from now on.
func (l *connLimiter) register(srv *http.Server) {
	l.apply.Lock()
	defer l.apply.Unlock()
	l.mu.Lock()
	l.servers[srv] = struct{}{}
	off := l.keepAlivesOff
	l.mu.Unlock()
	// A server not serving yet has no connection to close.
	srv.SetKeepAlivesEnabled(!off)
}

// unregister forgets srv, which has stopped.
func (l *connLimiter) unregister(srv *http.Server) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.servers, srv)
}

// openConns returns how many connections hold a slot.
func (l *connLimiter) openConns() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// track returns c, which holds a slot, releasing the slot when it is first
// closed: by the server, or by a proxy that hijacked it for an upgrade.
func (l *connLimiter) track(c net.Conn) net.Conn {
	return &trackedConn{Conn: c, l: l}
}

type trackedConn struct {
	net.Conn
	l    *connLimiter
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.l.release)
	return err
}
