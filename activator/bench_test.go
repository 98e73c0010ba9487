package activator

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kgate/kgate/translator/model"
)

// BenchmarkOverhead compares requests through the activator with requests
// straight to the same pod on loopback, and with a bare
// httputil.ReverseProxy as the floor any Go proxy hop costs: b.N requests
// each way, in alternating rounds so that drift on a shared machine hits
// every way alike. It reports p50 and p99 latencies in ms, what the
// activator adds to them, throughputs and the ratios to direct. At
// concurrency 50 the machine is saturated (load generator, proxy and pod
// share its CPUs) and latency is mostly queueing; concurrency 1 shows the
// hop alone.
//
//	go test -run '^$' -bench Overhead -benchtime 20000x ./activator
func BenchmarkOverhead(b *testing.B) {
	for _, concurrency := range []int{50, 1} {
		b.Run(fmt.Sprint("concurrency=", concurrency), func(b *testing.B) {
			benchmarkOverhead(b, concurrency)
		})
	}
}

func benchmarkOverhead(b *testing.B, concurrency int) {
	const rounds = 4
	pod := startBackend(b, model.HTTP1, text("ok"))
	podURL := "http://" + net.JoinHostPort(pod.Address, strconv.Itoa(int(pod.Port)))
	h := newHarness(b, Options{})
	h.act.SetRevision(testKey, RevisionConfig{})
	h.act.SetEndpoints(testKey, []model.Endpoint{pod})
	bare := bareProxy(b, podURL)

	ways := []func() *http.Request{
		func() *http.Request { return newGet(b, podURL) },
		func() *http.Request { return newGet(b, bare) },
		func() *http.Request { return h.request(context.Background(), b, "/") },
	}
	// Open every connection each way before measuring.
	for _, way := range ways {
		runLoad(b, h.client, way, concurrency, concurrency)
	}
	b.ResetTimer()
	measured := make([]load, len(ways))
	for i := range rounds {
		n := b.N/rounds + min(1, b.N%rounds/(i+1)) // the remainder goes to the first rounds
		for w, way := range ways {
			measured[w].add(runLoad(b, h.client, way, n, concurrency))
		}
	}
	b.StopTimer()
	if b.Failed() {
		return
	}

	direct, floor, act := measured[0], measured[1], measured[2]
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(direct.percentile(50)), "direct-p50-ms")
	b.ReportMetric(ms(act.percentile(50)), "activator-p50-ms")
	b.ReportMetric(ms(act.percentile(50)-direct.percentile(50)), "p50-overhead-ms")
	b.ReportMetric(ms(floor.percentile(50)-direct.percentile(50)), "reverseproxy-p50-overhead-ms")
	b.ReportMetric(ms(direct.percentile(99)), "direct-p99-ms")
	b.ReportMetric(ms(act.percentile(99)), "activator-p99-ms")
	b.ReportMetric(ms(act.percentile(99)-direct.percentile(99)), "p99-overhead-ms")
	b.ReportMetric(direct.throughput(), "direct-req/s")
	b.ReportMetric(act.throughput(), "activator-req/s")
	b.ReportMetric(act.throughput()/direct.throughput(), "throughput-ratio")
	b.ReportMetric(floor.throughput()/direct.throughput(), "reverseproxy-throughput-ratio")
	b.ReportMetric(0, "ns/op") // the time of all ways together means nothing
}

// bareProxy serves a plain httputil.ReverseProxy to target on loopback, with
// the activator's transport, and returns its URL.
func bareProxy(b *testing.B, target string) string {
	u, err := url.Parse(target)
	if err != nil {
		b.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		Transport: newTransport(),
	}
	srv := httptest.NewServer(proxy)
	b.Cleanup(srv.Close)
	return srv.URL
}

func newGet(b *testing.B, url string) *http.Request {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	return req
}

// load is what runs of requests measured.
type load struct {
	latencies []time.Duration
	elapsed   time.Duration
}

// add appends another run's measures.
func (l *load) add(run load) {
	l.latencies = append(l.latencies, run.latencies...)
	l.elapsed += run.elapsed
}

func (l load) percentile(p int) time.Duration {
	sorted := slices.Sorted(slices.Values(l.latencies))
	return sorted[(len(sorted)-1)*p/100]
}

func (l load) throughput() float64 {
	return float64(len(l.latencies)) / l.elapsed.Seconds()
}

// runLoad sends n requests made by newRequest from the given number of
// concurrent workers, each request after the previous one's body is read.
func runLoad(b *testing.B, client *http.Client, newRequest func() *http.Request, n, workers int) load {
	var (
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, n)
		wg        sync.WaitGroup
		next      = make(chan struct{}, n)
	)
	for range n {
		next <- struct{}{}
	}
	close(next)
	start := time.Now()
	for range workers {
		wg.Go(func() {
			req := newRequest()
			mine := make([]time.Duration, 0, n/workers+1)
			for range next {
				began := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
				mine = append(mine, time.Since(began))
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return load{latencies: latencies, elapsed: time.Since(start)}
}
