//go:build unix

// Package transportbench holds what the benchmarks comparing mutual TLS with
// plaintext on the control plane share (xds's propagation, xds/lrs's load
// reports): the interleaved rounds, the process's CPU time, a byte-counting
// listener and a pair of certificates.
package transportbench

import (
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kgate/kgate/pki"
)

// Transports, the values of the benchmarks' "transport" key.
const (
	Plaintext = "plaintext"
	MTLS      = "mtls"
)

// Rounds is how many rounds of the two transports one process runs.
const Rounds = 4

// RunRounds runs leaf once per transport in each of Rounds rounds, as
// "round=<r>/transport=<t>", alternating which transport goes first, so
// that other work on a shared machine weighs on both alike.
func RunRounds(b *testing.B, leaf func(b *testing.B, transport string)) {
	for r := 1; r <= Rounds; r++ {
		order := []string{Plaintext, MTLS}
		if r%2 == 0 {
			order[0], order[1] = order[1], order[0]
		}
		for _, tr := range order {
			b.Run(fmt.Sprintf("round=%d/transport=%s", r, tr), func(b *testing.B) { leaf(b, tr) })
		}
	}
}

// CPUTime is the CPU time the process has used so far, user and system.
func CPUTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Bundles issues the xDS server's certificate and a client's, from a new
// CA.
func Bundles(b *testing.B, client pki.Identity) (server, clientBundle *pki.Bundle) {
	b.Helper()
	now := time.Now()
	ca, err := pki.NewCA("bench", now, 0)
	if err != nil {
		b.Fatal(err)
	}
	if server, err = ca.Issue(pki.Request{Identity: pki.Identity{Role: pki.Server, ID: "kgate"}, Now: now}); err != nil {
		b.Fatal(err)
	}
	if clientBundle, err = ca.Issue(pki.Request{Identity: client, Now: now}); err != nil {
		b.Fatal(err)
	}
	return server, clientBundle
}

// CountingListener counts in N the bytes read from and written to the
// connections it accepts.
type CountingListener struct {
	net.Listener
	N *atomic.Int64
}

// Accept wraps the accepted connection.
func (l *CountingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: l.N}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.Add(int64(n))
	return n, err
}
