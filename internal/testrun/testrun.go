// Package testrun is what kgate's tests share to run things beside the
// test and to reach them: a function on its own goroutine until the test
// ends (Go), a wait until a condition holds (Poll), a log sink those
// goroutines write while the test reads it (Buffer), and a loopback
// listener and gRPC connection that close with the test (Listen, Dial).
//
// Only tests import it; it fails the test it is given rather than
// returning errors.
package testrun

import (
	"bytes"
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Go runs f on its own goroutine with a context derived from ctx, until
// stop is called or the test ends, whichever comes first. Stopping cancels
// f's context and waits up to within for f to return; the test fails,
// naming f by what, if f returns an error or does not return in time. stop
// may be called more than once, and from any goroutine.
//
// To end a context shared with something else at the same time, register
// its cancel with t.Cleanup after calling Go: cleanups run last registered
// first.
func Go(t testing.TB, ctx context.Context, what string, within time.Duration, f func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		timer := time.NewTimer(within)
		defer timer.Stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", what, err)
			}
		case <-timer.C:
			t.Errorf("%s did not return within %v of its context ending", what, within)
		}
	})
	t.Cleanup(stop)
	return stop
}

// Poll is how a test waits for something it cannot be told of: it checks
// every Every, and fails the test once Within has gone by.
type Poll struct {
	Within, Every time.Duration
}

// Until returns once cond holds, and fails the test if it does not within
// p.Within. Call it from the test's goroutine.
func (p Poll) Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(p.Within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, p.Within)
		}
		time.Sleep(p.Every)
	}
}

// Eventually returns once check passes (returns nil), and fails the test
// with check's last error if it does not within p.Within. Call it from
// the test's goroutine.
func (p Poll) Eventually(t testing.TB, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(p.Within)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, p.Within, err)
		}
		time.Sleep(p.Every)
	}
}

// Buffer is a bytes.Buffer safe for concurrent use: a log sink that a
// server's goroutines, or a process's stdout and stderr, write while the
// test reads it. The zero Buffer is empty and ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Listen listens on a free loopback port, 127.0.0.1:0, until the test
// ends, or fails the test.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening on loopback: %v", err)
	}
	t.Cleanup(func() { lis.Close() })
	return lis
}

// Dial returns a gRPC client for addr without transport security, with
// opts besides, that closes when the test ends; it fails the test if
// grpc.NewClient refuses addr or opts. As with grpc.NewClient, it connects
// on first use.
func Dial(t testing.TB, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatalf("dialing %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
