package testrun

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/connectivity"
)

// fakeT records what a helper reports. Fatalf ends the goroutine, as
// testing's does; Cleanup holds the functions for cleanup to run.
type fakeT struct {
	testing.TB
	mu       sync.Mutex
	failures []string
	cleanups []func()
}

func (f *fakeT) Helper() {}

func (f *fakeT) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, fmt.Sprintf(format, args...))
}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}

func (f *fakeT) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

// cleanup runs the cleanups, last registered first, as testing does.
func (f *fakeT) cleanup() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func (f *fakeT) reported() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.failures, "\n")
}

// onGoroutine runs fn as a test body: on a goroutine of its own, so that
// Fatalf can end it.
func onGoroutine(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

func TestGoStopsAtCleanup(t *testing.T) {
	ft := &fakeT{}
	started := make(chan struct{})
	var ended bool
	Go(ft, context.Background(), "Serve", time.Second, func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		ended = true
		return nil
	})
	<-started
	ft.cleanup()
	if !ended || ft.reported() != "" {
		t.Errorf("ended %v, reported %q", ended, ft.reported())
	}
}

func TestGoReportsAnError(t *testing.T) {
	ft := &fakeT{}
	stop := Go(ft, context.Background(), "Serve", time.Second, func(ctx context.Context) error {
		<-ctx.Done()
		return errors.New("boom")
	})
	stop()
	stop()
	ft.cleanup()
	if got := ft.reported(); got != "Serve: boom" {
		t.Errorf("reported %q, want it once", got)
	}
}

func TestGoReportsAHang(t *testing.T) {
	ft := &fakeT{}
	release := make(chan struct{})
	defer close(release)
	Go(ft, context.Background(), "Run", 10*time.Millisecond, func(context.Context) error {
		<-release
		return nil
	})
	ft.cleanup()
	if got := ft.reported(); got != "Run did not return within 10ms of its context ending" {
		t.Errorf("reported %q", got)
	}
}

func TestGoFollowsItsParent(t *testing.T) {
	ft := &fakeT{}
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan struct{})
	Go(ft, ctx, "Run", time.Second, func(ctx context.Context) error {
		<-ctx.Done()
		close(ended)
		return nil
	})
	cancel()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("f's context did not end with its parent")
	}
	ft.cleanup()
	if got := ft.reported(); got != "" {
		t.Errorf("reported %q", got)
	}
}

func TestPoll(t *testing.T) {
	p := Poll{Within: time.Second, Every: time.Millisecond}
	n := 0
	ft := &fakeT{}
	onGoroutine(func() { p.Until(ft, "three", func() bool { n++; return n == 3 }) })
	if n != 3 || ft.reported() != "" {
		t.Errorf("Until checked %d times, reported %q", n, ft.reported())
	}

	p = Poll{Within: 20 * time.Millisecond, Every: time.Millisecond}
	onGoroutine(func() { p.Until(ft, "never", func() bool { return false }) })
	if got := ft.reported(); got != "never: not within 20ms" {
		t.Errorf("Until reported %q", got)
	}
	ft = &fakeT{}
	onGoroutine(func() { p.Eventually(ft, "never", func() error { return errors.New("not yet") }) })
	if got := ft.reported(); got != "never: not within 20ms: not yet" {
		t.Errorf("Eventually reported %q", got)
	}
	ft = &fakeT{}
	onGoroutine(func() { p.Eventually(ft, "at once", func() error { return nil }) })
	if got := ft.reported(); got != "" {
		t.Errorf("Eventually reported %q", got)
	}
}

func TestBuffer(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { fmt.Fprint(&b, "x") })
	}
	wg.Wait()
	if got := b.String(); got != strings.Repeat("x", 10) {
		t.Errorf("String() = %q", got)
	}
}

func TestListenAndDial(t *testing.T) {
	ft := &fakeT{}
	lis := Listen(ft)
	conn := Dial(ft, lis.Addr().String())
	accepted := make(chan error, 1)
	go func() {
		c, err := lis.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	conn.Connect()
	select {
	case err := <-accepted:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Dial's client never connected to Listen's listener")
	}
	ft.cleanup()
	if _, err := lis.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after cleanup: %v, want the listener closed", err)
	}
	if s := conn.GetState(); s != connectivity.Shutdown {
		t.Errorf("the connection is %v after cleanup, want closed", s)
	}
	if ft.reported() != "" {
		t.Errorf("reported %q", ft.reported())
	}
}
