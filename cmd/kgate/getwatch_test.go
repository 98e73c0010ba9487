package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/watcher/knative"
)

// get -w prints the list, then a row each time an object's row changes,
// as kubectl get -w does: the seeds' `kubectl get pods -w` while hey runs.
func TestGetWatch(t *testing.T) {
	var mu sync.Mutex
	snap := examplesSnapshot(t)
	srv := httptest.NewServer(adminHandler(func() objects {
		mu.Lock()
		defer mu.Unlock()
		return snap
	}))
	t.Cleanup(srv.Close)
	admin := strings.TrimPrefix(srv.URL, "http://")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := newRootCommand()
	var out syncBuffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"get", "revisions", "-w", "--watch-interval", "10ms", "--admin-address", admin})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	waitFor := func(what string, lines int) []string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(got) >= lines && got[0] != "" {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: output %q", what, out.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	n := 1 + len(snap.Revisions)
	got := waitFor("the list", n)
	time.Sleep(50 * time.Millisecond) // several polls: nothing changed, nothing printed
	if got := strings.Split(strings.TrimSpace(out.String()), "\n"); len(got) != n {
		t.Fatalf("unchanged objects printed again: %q", got)
	}
	if fields := strings.Fields(got[0]); fields[0] != "NAME" || fields[len(fields)-1] != "MODE" {
		t.Errorf("header %q", got[0])
	}
	// The revision scales up and goes Serve: one new row says so.
	mu.Lock()
	three := int32(3)
	rev := snap.Revisions[0].DeepCopy()
	rev.Status.ActualReplicas, rev.Status.DesiredReplicas = &three, &three
	rev.Status.Annotations = map[string]string{knative.AnnotationRoutingMode: "Serve"}
	snap.Revisions = append([]*servingv1.Revision{rev}, snap.Revisions[1:]...)
	mu.Unlock()
	got = waitFor("the changed row", n+1)
	if len(got) != n+1 {
		t.Fatalf("want one new row, got %q", got[n:])
	}
	if !strings.HasPrefix(got[n], got[1][:strings.Index(got[1], "hello ")]) {
		t.Errorf("the new row %q does not line up with the first ones:\n%s", got[n], out.String())
	}
	if f := strings.Fields(got[n]); f[0] != "hello-00001" || f[len(f)-3] != "3" || f[len(f)-2] != "3" || f[len(f)-1] != "Serve" {
		t.Errorf("changed row %q, want hello-00001 at 3/3 Serve", got[n])
	}
	if strings.Count(out.String(), "\nNAME ") != 0 || !strings.HasPrefix(out.String(), "NAME ") {
		t.Errorf("header printed more than once:\n%s", out.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("interrupted watch: %v, want a clean end", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
