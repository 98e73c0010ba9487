package devgateway_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
)

// An 80/20 split sends 80 % and 20 % of the requests (within ±5 points
// over 1,000, about 4 standard deviations), and a 0 % target nothing.
func TestTrafficSplit(t *testing.T) {
	e := newEnv(t, envOptions{})
	a, b, zero := newBackend(t, "a", nil), newBackend(t, "b", nil), newBackend(t, "zero", nil)
	e.update(model.Config{
		Services: []model.Service{service("split", prefixRoute("/", 0,
			split("split-00001", 80), split("split-00002", 20), split("split-00003", 0)))},
		Revisions: []model.Revision{
			revision("split-00001", model.HTTP1, 0), revision("split-00002", model.HTTP1, 0), revision("split-00003", model.HTTP1, 0),
		},
		Endpoints: []model.RevisionEndpoints{serving("split-00001", a), serving("split-00002", b), serving("split-00003", zero)},
	})
	c, ext := client(t), e.addr(translator.ExternalListener)
	eventually(t, "both targets served", func() error {
		r := get(t, c, ext, externalHost("split"), "/", nil)
		if r.status != http.StatusOK {
			return fmt.Errorf("got %d", r.status)
		}
		if a.hits.Load() == 0 || b.hits.Load() == 0 {
			return fmt.Errorf("a %d, b %d", a.hits.Load(), b.hits.Load())
		}
		return nil
	})

	const n = 1000
	counts := map[string]int{}
	for range n {
		r := get(t, c, ext, externalHost("split"), "/", nil)
		if r.status != http.StatusOK {
			t.Fatalf("got %d %q", r.status, r.body)
		}
		counts[r.body]++
		if want := map[string]string{"a": "split-00001", "b": "split-00002"}[r.body]; r.header.Get("Req-Knative-Serving-Revision") != want {
			t.Fatalf("%s got Knative-Serving-Revision %q, want %q", r.body, r.header.Get("Req-Knative-Serving-Revision"), want)
		}
	}
	t.Logf("over %d requests: a (80 %%) %d, b (20 %%) %d, zero (0 %%) %d", n, counts["a"], counts["b"], counts["zero"])
	if share := float64(counts["a"]) / n; math.Abs(share-0.8) > 0.05 {
		t.Errorf("80 %% target got %.1f %%", 100*share)
	}
	if share := float64(counts["b"]) / n; math.Abs(share-0.2) > 0.05 {
		t.Errorf("20 %% target got %.1f %%", 100*share)
	}
	if zero.hits.Load() != 0 {
		t.Errorf("the 0 %% target got %d requests", zero.hits.Load())
	}
}

// Moving endpoints and changing the split under continuous load move the
// traffic without failing a single request.
func TestChangesUnderLoad(t *testing.T) {
	e := newEnv(t, envOptions{})
	first, second, next := newBackend(t, "first", nil), newBackend(t, "second", nil), newBackend(t, "next", nil)
	revs := []model.Revision{revision("load-00001", model.HTTP1, 0), revision("load-00002", model.HTTP1, 0)}
	cfg := model.Config{
		Services:  []model.Service{service("load", prefixRoute("/", 0, split("load-00001", 100)))},
		Revisions: revs,
		Endpoints: []model.RevisionEndpoints{serving("load-00001", first), serving("load-00002", next)},
	}
	e.update(cfg)
	c, ext := client(t), e.addr(translator.ExternalListener)
	awaitBody(t, c, ext, externalHost("load"), "/", "first")

	load := startLoad(c, ext, externalHost("load"), 8)
	// settled waits until only the backends in on get requests.
	settled := func(what string, on []*backend, off []*backend) {
		t.Helper()
		eventually(t, what, func() error {
			before := make([]int64, len(off))
			for i, b := range off {
				before[i] = b.hits.Load()
			}
			onBefore := make([]int64, len(on))
			for i, b := range on {
				onBefore[i] = b.hits.Load()
			}
			time.Sleep(100 * time.Millisecond)
			for i, b := range off {
				if got := b.hits.Load() - before[i]; got != 0 {
					return fmt.Errorf("%s still got %d requests", b.name, got)
				}
			}
			for i, b := range on {
				if b.hits.Load() == onBefore[i] {
					return fmt.Errorf("%s got no request", b.name)
				}
			}
			return nil
		})
	}

	// The revision's pods move.
	cfg.Endpoints[0] = serving("load-00001", second)
	e.update(cfg)
	settled("endpoints moved to second", []*backend{second}, []*backend{first, next})

	// Half the traffic to the next revision, then all of it.
	cfg.Services = []model.Service{service("load", prefixRoute("/", 0, split("load-00001", 50), split("load-00002", 50)))}
	e.update(cfg)
	settled("split 50/50", []*backend{second, next}, []*backend{first})
	cfg.Services = []model.Service{service("load", prefixRoute("/", 0, split("load-00002", 100)))}
	e.update(cfg)
	settled("all to next", []*backend{next}, []*backend{first, second})

	sent, failed, firstErr := load.stop()
	t.Logf("%d requests, %d failed, during one endpoint move and two split changes", sent, failed)
	if failed != 0 {
		t.Errorf("%d of %d requests failed; first: %v", failed, sent, firstErr)
	}
}

// load is clients sending GETs to a host back to back.
type load struct {
	cancel       context.CancelFunc
	wg           sync.WaitGroup
	sent, failed atomic.Int64
	first        atomic.Value // the first failure
}

func startLoad(c *http.Client, addr, host string, clients int) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel}
	for range clients {
		l.wg.Go(func() {
			for ctx.Err() == nil {
				r, err := do(c, http.MethodGet, addr, host, "/", nil)
				l.sent.Add(1)
				if err == nil && r.status != http.StatusOK {
					err = fmt.Errorf("%d %q", r.status, r.body)
				}
				if err != nil {
					l.failed.Add(1)
					l.first.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	return l
}

// stop ends the load and returns what it sent and saw fail.
func (l *load) stop() (sent, failed int64, first any) {
	l.cancel()
	l.wg.Wait()
	return l.sent.Load(), l.failed.Load(), l.first.Load()
}
