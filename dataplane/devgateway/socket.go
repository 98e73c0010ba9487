package devgateway

import (
	"net"
	"sync"
)

// socket is a bound TCP socket that the successive http.Servers of one
// listener accept on in turn. Go reads a server's limits (header timeout,
// idle timeout, header bytes, HTTP/2 settings) while it serves, so a
// listener whose limits change needs a new server; the socket passes from
// the old server to the new one without closing, so that no connection is
// refused meanwhile, as Envoy's listener update does. It closes when the
// last server done with it lets it go.
type socket struct {
	lis   net.Listener
	conns chan net.Conn // unbuffered: a connection goes to whichever server accepts first
	// closing is closed when the last view lets the socket go; done once
	// accepting has stopped, err saying why.
	closing chan struct{}
	done    chan struct{}
	err     error

	mu   sync.Mutex
	refs int
}

// listenSocket binds addr and starts accepting on it.
func listenSocket(addr string) (*socket, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &socket{lis: lis, conns: make(chan net.Conn), closing: make(chan struct{}), done: make(chan struct{})}
	go s.acceptLoop()
	return s, nil
}

func (s *socket) acceptLoop() {
	for {
		c, err := s.lis.Accept()
		if err != nil {
			s.err = err
			close(s.done)
			return
		}
		select {
		case s.conns <- c:
		case <-s.closing: // accepted as the last server let go
			_ = c.Close()
		}
	}
}

// view returns a net.Listener for one server: closing it lets the socket
// go, and closes the socket if no other view holds it.
func (s *socket) view() *socketView {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refs++
	return &socketView{s: s, closed: make(chan struct{})}
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
	s      *socket
	once   sync.Once
	closed chan struct{}
}

// Accept returns the next connection, unless the view or the socket is
// closed.
func (v *socketView) Accept() (net.Conn, error) {
	select {
	case <-v.closed:
		return nil, net.ErrClosed
	default:
	}
	select {
	case c := <-v.s.conns:
		return c, nil
	case <-v.closed:
		return nil, net.ErrClosed
	case <-v.s.done:
		return nil, v.s.err
	}
}

// Close lets the socket go; the server's connections are its own affair.
func (v *socketView) Close() error {
	v.once.Do(func() {
		close(v.closed)
		v.s.release()
	})
	return nil
}

// Addr is where the socket is bound.
func (v *socketView) Addr() net.Addr { return v.s.lis.Addr() }
