package devgateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kgate/kgate/dataplane/devgateway"
	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/internal/promtest"
	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/xds"
)

// observed is a control plane and a dev gateway serving one app, "hello",
// whose revision hello-00001 is the backend b; it works for benchmarks as
// for tests.
type observed struct {
	ext string
	b   *backend
}

func newObserved(tb testing.TB, topts translator.Options, gopts func(*devgateway.Options)) *observed {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := xds.NewServer(ctx, xds.ServerOptions{})
	eng, err := xds.NewEngine(srv, xds.EngineOptions{Translator: topts})
	if err != nil {
		tb.Fatal(err)
	}
	lis := testrun.Listen(tb)
	o := devgateway.Options{
		Node:                 xdsclient.Node{ID: nodeID, Cluster: "kgate"},
		ListenAddress:        func(string, string) string { return "127.0.0.1:0" },
		DrainTimeout:         2 * time.Second,
		DisableLoadReporting: true,
		Backoff:              xdsclient.Backoff{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond},
	}
	if gopts != nil {
		gopts(&o)
	}
	gw, err := devgateway.New(testrun.Dial(tb, lis.Addr().String()), o)
	if err != nil {
		tb.Fatal(err)
	}
	testrun.Go(tb, ctx, "xDS Serve", waitFor, func(ctx context.Context) error { return srv.Serve(ctx, lis) })
	testrun.Go(tb, ctx, "gateway Run", waitFor, gw.Run)
	tb.Cleanup(cancel)

	b := newBackendTB(tb, "hello")
	if err := eng.Update(apps(app{name: "hello", pods: []model.Endpoint{b.endpoint}})); err != nil {
		tb.Fatal(err)
	}
	poll := testrun.Poll{Within: waitFor, Every: 10 * time.Millisecond}
	var ext string
	poll.Eventually(tb, "the external listener answers", func() error {
		if ext = gw.Addr(translator.ExternalListener); ext == "" {
			return fmt.Errorf("not bound")
		}
		r, err := do(http.DefaultClient, http.MethodGet, ext, externalHost("hello"), "/", nil)
		if err != nil {
			return err
		}
		return expect(r, http.StatusOK, "hello")
	})
	return &observed{ext: ext, b: b}
}

// newBackendTB is a backend answering its name, for tests and benchmarks.
func newBackendTB(tb testing.TB, name string) *backend {
	if t, ok := tb.(*testing.T); ok {
		return newBackend(t, name, nil)
	}
	b := &backend{name: name}
	srv := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, name) })}
	lis := testrun.Listen(tb)
	go srv.Serve(lis)
	tb.Cleanup(func() { srv.Close() })
	b.endpoint = endpointOf(lis.Addr())
	return b
}

// probed waits for the line of newObserved's last request, which found
// the app, and returns the log's length.
func probed(t *testing.T, buf *testrun.Buffer) int {
	t.Helper()
	eventually(t, "the probe's line", func() error {
		if !strings.Contains(buf.String(), `"hello-00001"`) && !strings.Contains(buf.String(), `"revision":"hello-00001"`) {
			return fmt.Errorf("log %q", buf.String())
		}
		return nil
	})
	return len(buf.String())
}

// lines waits for n access log lines in buf after its first from bytes
// and returns them.
func lines(t *testing.T, buf *testrun.Buffer, from, n int) []string {
	t.Helper()
	var got []string
	eventually(t, fmt.Sprintf("%d access log lines", n), func() error {
		s := buf.String()[from:]
		got = strings.Split(strings.TrimSuffix(s, "\n"), "\n")
		if s == "" {
			got = nil
		}
		if len(got) != n {
			return fmt.Errorf("%d lines: %q", len(got), got)
		}
		return nil
	})
	return got
}

// One text line per request in the default format, with host, method,
// path, code, duration, upstream cluster and host, and the revision the
// route picked; a request no route takes is NR with no upstream.
func TestAccessLogText(t *testing.T) {
	buf := &testrun.Buffer{}
	o := newObserved(t, translator.Options{}, func(o *devgateway.Options) { o.AccessLog = buf })
	from := probed(t, buf)
	c := client(t)
	for range 3 {
		if r := get(t, c, o.ext, externalHost("hello"), "/path?q=1", http.Header{"User-Agent": {"kgate-test"}}); r.status != 200 {
			t.Fatalf("got %d", r.status)
		}
	}
	if r := get(t, c, o.ext, "nobody.example.com", "/x", nil); r.status != 404 {
		t.Fatalf("got %d", r.status)
	}
	got := lines(t, buf, from, 4)
	upstream := fmt.Sprintf("%s:%d", o.b.endpoint.Address, o.b.endpoint.Port)
	for _, l := range got[:3] {
		for _, want := range []string{`"GET /path?q=1 HTTP/1.1" 200 - 0 5 `, `"kgate-test"`, `"hello.default.example.com"`,
			`"` + upstream + `" default/hello-00001 "hello-00001"`} {
			if !strings.Contains(l, want) {
				t.Errorf("line %q lacks %q", l, want)
			}
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000Z", l[1:25]); err != nil || l[0] != '[' {
			t.Errorf("line %q: no start time: %v", l, err)
		}
	}
	if want := `"GET /x HTTP/1.1" 404 NR 0 0 `; !strings.Contains(got[3], want) || !strings.HasSuffix(got[3], `"nobody.example.com" "-" - "-"`) {
		t.Errorf("no-route line %q", got[3])
	}
}

// JSON lines: one object per request, numbers as numbers, no value as
// null.
func TestAccessLogJSON(t *testing.T) {
	buf := &testrun.Buffer{}
	o := newObserved(t, translator.Options{AccessLog: translator.AccessLog{JSON: true}}, func(o *devgateway.Options) { o.AccessLog = buf })
	from := probed(t, buf)
	c := client(t)
	get(t, c, o.ext, externalHost("hello"), "/a", nil)
	get(t, c, o.ext, "nobody.example.com", "/b", nil)
	got := lines(t, buf, from, 2)
	var ok, missing map[string]any
	if err := json.Unmarshal([]byte(got[0]), &ok); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(got[1]), &missing); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"authority": "hello.default.example.com", "method": "GET", "path": "/a", "protocol": "HTTP/1.1",
		"response_code": 200.0, "bytes_sent": 5.0, "upstream_cluster": "default/hello-00001", "revision": "hello-00001",
		"upstream_host": fmt.Sprintf("%s:%d", o.b.endpoint.Address, o.b.endpoint.Port), "response_flags": nil} {
		if ok[k] != want {
			t.Errorf("%s = %#v, want %#v (line %s)", k, ok[k], want, got[0])
		}
	}
	if d, isNum := ok["duration"].(float64); !isNum || d < 0 {
		t.Errorf("duration %#v", ok["duration"])
	}
	if len(ok) != len(translator.DefaultAccessLogJSON) {
		t.Errorf("%d keys, want %d: %s", len(ok), len(translator.DefaultAccessLogJSON), got[0])
	}
	for k, want := range map[string]any{"response_code": 404.0, "response_flags": "NR", "upstream_cluster": nil, "revision": nil} {
		if missing[k] != want {
			t.Errorf("no route: %s = %#v, want %#v", k, missing[k], want)
		}
	}
}

// A listener without access_log writes nothing, whatever the writer.
func TestAccessLogDisabled(t *testing.T) {
	buf := &testrun.Buffer{}
	o := newObserved(t, translator.Options{AccessLog: translator.AccessLog{Disabled: true}}, func(o *devgateway.Options) { o.AccessLog = buf })
	get(t, client(t), o.ext, externalHost("hello"), "/", nil)
	time.Sleep(50 * time.Millisecond)
	if buf.String() != "" {
		t.Errorf("logged %q", buf.String())
	}
}

// After N requests the counter, scraped and parsed as Prometheus does,
// says N, by cluster and code; the latency histogram counted as many.
func TestRequestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	o := newObserved(t, translator.Options{}, func(o *devgateway.Options) { o.Metrics = reg })
	url := promtest.Serve(t, reg)
	base := 1.0 // the readiness probe's request that found the app
	ok := map[string]string{"cluster": "default/hello-00001", "response_code": "200"}
	noRoute := map[string]string{"cluster": "", "response_code": "404"}
	var noRouteBase float64 // the probe's requests before the routes came
	eventually(t, "the probe counted", func() error {
		f, err := promtest.ScrapeErr(url)
		if err != nil {
			return err
		}
		if v, _ := f.Value(devgateway.RequestsMetric, ok); v != base {
			return fmt.Errorf("%v", v)
		}
		noRouteBase, _ = f.Value(devgateway.RequestsMetric, noRoute)
		return nil
	})
	c := client(t)
	const n = 7
	for range n {
		get(t, c, o.ext, externalHost("hello"), "/", nil)
	}
	for range 2 {
		get(t, c, o.ext, "nobody.example.com", "/", nil)
	}
	eventually(t, "the counters", func() error {
		f, err := promtest.ScrapeErr(url)
		if err != nil {
			return err
		}
		if v, _ := f.Value(devgateway.RequestsMetric, ok); v != base+n {
			return fmt.Errorf("%s%v = %v, want %v", devgateway.RequestsMetric, ok, v, base+n)
		}
		if v, _ := f.Value(devgateway.RequestsMetric, noRoute); v != noRouteBase+2 {
			return fmt.Errorf("%s%v = %v, want %v", devgateway.RequestsMetric, noRoute, v, noRouteBase+2)
		}
		h := f.Find(devgateway.RequestDurationMetric, ok)
		if len(h) != 1 || h[0].GetHistogram().GetSampleCount() != uint64(base+n) {
			return fmt.Errorf("%s%v: %v", devgateway.RequestDurationMetric, ok, h)
		}
		return nil
	})
}

// BenchmarkGatewayObserve is the request path through the dev gateway with
// the access log (formatted, written to io.Discard) and the metrics off
// and on. Compare with benchstat over interleaved runs.
func BenchmarkGatewayObserve(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			o := newObserved(b, translator.Options{}, func(o *devgateway.Options) {
				if on {
					o.AccessLog = io.Discard
					o.Metrics = prometheus.NewRegistry()
				}
			})
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			b.Cleanup(tr.CloseIdleConnections)
			c := &http.Client{Transport: tr}
			req, _ := http.NewRequest(http.MethodGet, "http://"+o.ext+"/", nil)
			req.Host = externalHost("hello")
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				res, err := c.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					b.Fatalf("status %d", res.StatusCode)
				}
			}
		})
	}
}

// BenchmarkGatewayObservePaired interleaves the two request paths of
// BenchmarkGatewayObserve request by request, each in its own gateway and
// in turn first, so that a busy machine slows both alike: it reports each
// path's time per request and their ratio (on/off).
func BenchmarkGatewayObservePaired(b *testing.B) {
	type path struct {
		req     *http.Request
		c       *http.Client
		elapsed time.Duration
	}
	var paths [2]*path
	for i, on := range []bool{false, true} {
		o := newObserved(b, translator.Options{}, func(o *devgateway.Options) {
			if on {
				o.AccessLog = io.Discard
				o.Metrics = prometheus.NewRegistry()
			}
		})
		tr := &http.Transport{MaxIdleConnsPerHost: 64}
		b.Cleanup(tr.CloseIdleConnections)
		req, _ := http.NewRequest(http.MethodGet, "http://"+o.ext+"/", nil)
		req.Host = externalHost("hello")
		paths[i] = &path{req: req, c: &http.Client{Transport: tr}}
	}
	send := func(p *path) {
		start := time.Now()
		res, err := p.c.Do(p.req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		p.elapsed += time.Since(start)
		if res.StatusCode != http.StatusOK {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
	n := 0
	b.ResetTimer()
	for b.Loop() {
		first := n % 2
		send(paths[first])
		send(paths[1-first])
		n++
	}
	off, on := float64(paths[0].elapsed)/float64(n), float64(paths[1].elapsed)/float64(n)
	b.ReportMetric(off, "off-ns/req")
	b.ReportMetric(on, "on-ns/req")
	b.ReportMetric(on/off, "on/off")
}
