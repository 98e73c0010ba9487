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
// httputil.ReverseProxy as the floor any Go proxy hop costs, in alternating
// rounds so that drift on a shared machine hits every way alike. It
// reports p50 and p99 latencies in ms, what the activator adds to them,
// throughputs and the ratios to direct.
//
// Three pods are measured. A zero-work pod (it answers "ok" at once) is the
// CPU-bound worst case: the load generator, the proxy and the pod share the
// machine's CPUs in one process (GOMAXPROCS is left at its default, the
// CPUs the process may use), so at concurrency 50 the machine is saturated,
// latency is mostly queueing and a proxy hop, which doubles the HTTP work
// per request, roughly halves throughput; concurrency 1 shows the hop
// alone. A pod sleeping 1 ms per request, as Knative's autoscale-go test
// image does with ?sleep=1, stands for an application whose time is spent
// waiting rather than computing; on 2 vCPUs 50 such clients still saturate
// the CPUs. A pod sleeping 10 ms keeps them below saturation, so that its
// figures show the hop when the pod, not the shared CPU, sets the pace.
//
// Each run sends a fixed number of requests each way (see overheadCases),
// whatever b.N and -benchtime: the figures always come from the same
// count, and a run takes a bounded time. A run takes over a second on
// 2 vCPUs, so the default -benchtime makes one run per -count; -benchtime
// 1x does so on any machine:
//
//	go test -run '^$' -bench Overhead -benchtime 1x -count 3 ./activator
func BenchmarkOverhead(b *testing.B) {
	for _, backend := range overheadCases {
		b.Run("backend="+backend.name, func(b *testing.B) {
			for _, c := range backend.loads {
				b.Run(fmt.Sprint("concurrency=", c.concurrency), func(b *testing.B) {
					benchmarkOverhead(b, backend.work, c.concurrency, c.requests)
				})
			}
		})
	}
}

// overheadCases are BenchmarkOverhead's pods and the loads each is measured
// under.
var overheadCases = []struct {
	name string
	// work is how long the pod sleeps per request; 0 answers at once.
	work  time.Duration
	loads []overheadLoad
}{
	{name: "zero-work", loads: []overheadLoad{{concurrency: 50, requests: 16000}, {concurrency: 1, requests: 4000}}},
	{name: "sleep-1ms", work: time.Millisecond, loads: []overheadLoad{{concurrency: 50, requests: 16000}}},
	{name: "sleep-10ms", work: 10 * time.Millisecond, loads: []overheadLoad{{concurrency: 50, requests: 8000}}},
}

// overheadLoad is a number of concurrent clients and how many requests they
// send each way in one run, sized for 2 to 10 s per run on
// 2 vCPUs: enough samples for a p99, little enough for -count 3 of the
// whole benchmark to take under two minutes.
type overheadLoad struct{ concurrency, requests int }

func benchmarkOverhead(b *testing.B, work time.Duration, concurrency, requests int) {
	const rounds = 4
	pod := startBackend(b, model.HTTP1, sleepThen(work, "ok"))
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
		n := requests/rounds + min(1, requests%rounds/(i+1)) // the remainder goes to the first rounds
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
// the activator's transport and buffer pool (without one, ReverseProxy
// allocates 32 KiB per response), and returns its URL.
func bareProxy(b *testing.B, target string) string {
	u, err := url.Parse(target)
	if err != nil {
		b.Fatal(err)
	}
	transport := newTransport()
	proxy := &httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		Transport:  transport,
		BufferPool: new(bufferPool),
	}
	srv := httptest.NewServer(proxy)
	b.Cleanup(func() {
		srv.Close()
		transport.CloseIdleConnections()
	})
	return srv.URL
}

// sleepThen answers every request with body after sleeping for work, which
// leaves the CPU free meanwhile; 0 answers at once.
func sleepThen(work time.Duration, body string) http.Handler {
	if work == 0 {
		return text(body)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(work)
		_, _ = io.WriteString(w, body)
	})
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
