package devgateway

import (
	"errors"
	"net"
	"sync"
	"time"
)

// socket is a bound TCP socket that the successive http.Servers of one
// listener accept on in turn. Go reads a server's limits (header timeout,
// idle timeout, header bytes, HTTP/2 settings) while it serves, so a
// listener whose limits change needs a new server; the socket passes from
// the old server to the new one without closing, so that no connection is
// refused meanwhile, as Envoy's listener update does. A connection
// accepted after the newest server took the socket goes to that server
// only: Go's server drops a request that arrives once it is shutting down.
// The socket closes when the last server done with it lets it go.
type socket struct {
	lis net.Listener
	// conns bounds the connections served across the gateway's sockets.
	conns *connLimiter
	// closing is closed when the last view lets the socket go; done once
	// accepting has stopped, err saying why.
	closing chan struct{}
	done    chan struct{}
	err     error

	mu      sync.Mutex
	refs    int
	current *socketView // the newest view, which gets the connections
}

// listenSocket binds addr and starts accepting on it, a connection at a
// time while conns has room.
func listenSocket(addr string, conns *connLimiter) (*socket, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &socket{lis: lis, conns: conns, closing: make(chan struct{}), done: make(chan struct{})}
	go s.acceptLoop()
	return s, nil
}

// Pauses after a failed accept, as net/http's server makes them.
const (
	acceptRetryFirst = 5 * time.Millisecond
	acceptRetryMax   = time.Second
)

func (s *socket) acceptLoop() {
	var pause time.Duration
	for {
		c, err := s.lis.Accept()
		if err != nil {
			// Anything but the socket's close — out of descriptors
			// (EMFILE, ENFILE), a connection aborted before it was
			// accepted — passes: the socket stays, and a later accept
			// succeeds once descriptors are back.
			if !errors.Is(err, net.ErrClosed) && !s.wait(&pause) {
				continue
			}
			s.err = err
			close(s.done)
			return
		}
		pause = 0
		if !s.conns.acquire(s.closing) {
			_ = c.Close() // the socket is going away
			continue
		}
		s.deliver(s.conns.track(c))
	}
}

// wait pauses the accept loop after a temporary failure, doubling the
// pause each time, and reports whether the socket closed meanwhile.
func (s *socket) wait(pause *time.Duration) (closing bool) {
	*pause = min(max(*pause*2, acceptRetryFirst), acceptRetryMax)
	t := time.NewTimer(*pause)
	defer t.Stop()
	select {
	case <-t.C:
		return false
	case <-s.closing:
		return true
	}
}

// deliver hands c to the current view's server, following the socket to
// a newer view if one takes it meanwhile.
func (s *socket) deliver(c net.Conn) {
	for {
		s.mu.Lock()
		v := s.current
		s.mu.Unlock()
		select {
		case v.conns <- c:
			return
		case <-v.retired: // a newer view took the socket, or this one closed
		case <-s.closing:
			_ = c.Close()
			return
		}
		s.mu.Lock()
		gone := s.current == v // closed with no newer view: the listener is going away
		s.mu.Unlock()
		if gone {
			_ = c.Close()
			return
		}
	}
}

// view returns a net.Listener for a new server, which from now on gets
// every new connection. Closing it lets the socket go, and closes the
// socket if no other view holds it.
func (s *socket) view() *socketView {
	v := &socketView{s: s, conns: make(chan net.Conn), retired: make(chan struct{}), closed: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refs++
	if s.current != nil {
		s.current.retire()
	}
	s.current = v
	return v
}

// release lets the socket go; the last release closes it and returns once
// nothing accepts on it any more.
func (s *socket) release() {
	s.mu.Lock()
	s.refs--
	last := s.refs == 0
	s.mu.Unlock()
	if !last {
		return
	}
	close(s.closing)
	_ = s.lis.Close()
	<-s.done
}

// socketView is one server's net.Listener on a shared socket.
type socketView struct {
	s     *socket
	conns chan net.Conn // unbuffered: deliver waits for the server
	// retired is closed once the view gets no new connections; closed
	// once its server closed it.
	retireOnce, closeOnce sync.Once
	retired, closed       chan struct{}
}

func (v *socketView) retire() { v.retireOnce.Do(func() { close(v.retired) }) }

// Accept returns the next connection, unless the view or the socket is
// closed.
func (v *socketView) Accept() (net.Conn, error) {
	select {
	case c := <-v.conns:
		return c, nil
	case <-v.closed:
		return nil, net.ErrClosed
	case <-v.s.done:
		return nil, v.s.err
	}
}

// Close lets the socket go; the server's connections are its own affair.
func (v *socketView) Close() error {
	v.closeOnce.Do(func() {
		close(v.closed)
		v.retire()
		v.s.release()
	})
	return nil
}

// Addr is where the socket is bound.
func (v *socketView) Addr() net.Addr { return v.s.lis.Addr() }
