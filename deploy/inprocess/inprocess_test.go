package inprocess

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/kgate/kgate/translator/model"
)

// get fetches http://ep/path and returns the body.
func get(t *testing.T, ep model.Endpoint, path string) string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://%s:%d%s", ep.Address, ep.Port, path))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestScaleUpAndDown(t *testing.T) {
	release := make(chan struct{})
	changes := make(chan string, 16)
	d, err := New(Options{
		Handler: func(rev string) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/slow" {
					<-release
				}
				fmt.Fprint(w, rev)
			})
		},
		StartDelay: 50 * time.Millisecond,
		StopDelay:  20 * time.Millisecond,
		OnChange:   func(rev string) { changes <- rev },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	const rev = "default/hello-00001"
	waitReady := func(want int) []model.Endpoint {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			if eps := d.Ready(rev); len(eps) == want {
				return eps
			}
			select {
			case <-changes:
			case <-deadline:
				t.Fatalf("%d pods ready, want %d", len(d.Ready(rev)), want)
			}
		}
	}

	if err := d.Scale(context.Background(), rev, 3); err != nil {
		t.Fatal(err)
	}
	if got := len(d.Ready(rev)); got != 0 {
		t.Errorf("%d pods ready before the start delay, want 0", got)
	}
	if got := d.Replicas(rev); got != 3 {
		t.Errorf("replicas %d, want 3", got)
	}
	eps := waitReady(3)
	for _, ep := range eps {
		if body := get(t, ep, "/"); body != rev {
			t.Errorf("pod %v answered %q, want %q", ep, body, rev)
		}
	}

	// A request in flight on the pod that goes completes.
	newest := eps[2]
	var wg sync.WaitGroup
	wg.Add(1)
	var slow string
	go func() { defer wg.Done(); slow = get(t, newest, "/slow") }()
	time.Sleep(20 * time.Millisecond) // let the request reach the pod
	if err := d.Scale(context.Background(), rev, 1); err != nil {
		t.Fatal(err)
	}
	if got := d.Ready(rev); len(got) != 1 || got[0] != eps[0] {
		t.Errorf("after scaling to 1, ready %v, want the oldest pod %v", got, eps[0])
	}
	close(release)
	wg.Wait()
	if slow != rev {
		t.Errorf("the in-flight request got %q, want %q", slow, rev)
	}

	if err := d.Scale(context.Background(), rev, 0); err != nil {
		t.Fatal(err)
	}
	if got := d.Ready(rev); len(got) != 0 {
		t.Errorf("after scaling to 0, ready %v", got)
	}
}

func TestScaleErrors(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without a handler: no error")
	}
	d, err := New(Options{Handler: func(string) http.Handler { return http.NotFoundHandler() }})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Scale(context.Background(), "default/x", -1); err == nil {
		t.Error("Scale(-1): no error")
	}
	d.Close()
	if err := d.Scale(context.Background(), "default/x", 1); err == nil {
		t.Error("Scale after Close: no error")
	}
}

// TestCloseWhilePodsStart: closing the deployer while its pods are still
// starting stops them; none of them turns ready after, and nothing
// panics (a pod's start used to find its revision gone).
func TestCloseWhilePodsStart(t *testing.T) {
	for i := range 50 {
		d, err := New(Options{
			Handler:    func(string) http.Handler { return http.NotFoundHandler() },
			StartDelay: time.Duration(i%5) * 100 * time.Microsecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		const rev = "default/hello-00001"
		if err := d.Scale(t.Context(), rev, 3); err != nil {
			t.Fatal(err)
		}
		d.Close()
		if eps := d.Ready(rev); len(eps) != 0 {
			t.Fatalf("ready after Close: %v", eps)
		}
	}
}
