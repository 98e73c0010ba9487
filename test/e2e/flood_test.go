package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A flood at one slow revision, under a low file limit, is shed with 503s
// before it takes what the rest needs: another Service keeps answering and
// `kgate get` keeps working.
func TestFloodAtOneSlowRevision(t *testing.T) {
	const nofile, clients = 1024, 600
	slow := `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: slow
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/min-scale: "1"
        autoscaling.knative.dev/max-scale: "1"
    spec:
      containerConcurrency: 1
      containers:
        - image: gcr.io/knative-samples/autoscale-go
`
	k := newKgate(t, map[string]string{"slow.yaml": slow, "other.yaml": hello("other", "other")})
	// bash's ulimit sets the soft and the hard limit: Go cannot raise it.
	k.prefix = []string{"sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, nofile)}
	k.launch()
	t.Cleanup(k.stop)
	k.ready("other", host("other"), "Hello other!", 60*time.Second)
	k.eventually("slow answers", 60*time.Second, func() error {
		code, body, err := k.request(context.Background(), host("slow"), "/?sleep=1")
		if err != nil || code != 200 {
			return fmt.Errorf("%d %q %v", code, body, err)
		}
		return nil
	})

	// The flood: clients keep-alive, each sending one slow request after
	// another for 8 s.
	ctx, stop := context.WithTimeout(context.Background(), 8*time.Second)
	defer stop()
	flood := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		Proxy: nil, MaxIdleConnsPerHost: clients, MaxConnsPerHost: 0,
	}}
	defer flood.CloseIdleConnections()
	var ok, shed, other atomic.Int64
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+k.http+"/?sleep=3000", nil)
				req.Host = host("slow")
				resp, err := flood.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						mu.Lock()
						failures = append(failures, err.Error())
						mu.Unlock()
						time.Sleep(50 * time.Millisecond)
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case 200:
					ok.Add(1)
				case 503:
					shed.Add(1)
				default:
					other.Add(1)
				}
			}
		})
	}

	// Meanwhile: the other Service answers, and kgate get works.
	time.Sleep(2 * time.Second)
	for i := range 3 {
		start := time.Now()
		k.eventually(fmt.Sprintf("another Service answers during the flood (%d)", i+1), 3*time.Second, func() error {
			code, body, err := k.request(context.Background(), host("other"), "/")
			if err != nil || code != 200 || body != "Hello other!" {
				return fmt.Errorf("%d %q %v", code, body, err)
			}
			return nil
		})
		t.Logf("another Service answered in %s during the flood", time.Since(start).Round(time.Millisecond))
		if out := k.table("ksvc"); !strings.Contains(out, "other") {
			t.Errorf("kgate get ksvc during the flood:\n%s", out)
		}
	}
	wg.Wait()
	t.Logf("flood of %d clients: %d answered, %d shed with 503, %d other answers, %d client errors", clients, ok.Load(), shed.Load(), other.Load(), len(failures))
	if other.Load() > 0 {
		t.Errorf("%d answers to the flood were neither 200 nor 503", other.Load())
	}
	if shed.Load() == 0 {
		t.Errorf("nothing was shed: the flood did not reach the limits")
	}
	if len(failures) > 0 {
		t.Errorf("%d flood requests failed outright (connection errors), e.g. %s", len(failures), failures[0])
	}
	if strings.Contains(k.logs.String(), "too many open files") {
		t.Errorf("kgate ran out of file descriptors")
	}
}
