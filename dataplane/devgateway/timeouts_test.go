package devgateway_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kgate/kgate/internal/pacer"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
)

// outcome is what a client saw: a status and body, or a response cut
// after its headers (cut), and when.
type outcome struct {
	status int
	body   string
	cut    bool
	took   time.Duration
}

func (o outcome) String() string {
	if o.cut {
		return fmt.Sprintf("%d %q then cut, after %v", o.status, o.body, o.took.Round(time.Millisecond))
	}
	return fmt.Sprintf("%d %q after %v", o.status, o.body, o.took.Round(time.Millisecond))
}

func fetchTimed(t *testing.T, c *http.Client, addr, host, path string) outcome {
	t.Helper()
	start := time.Now()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", host, path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	o := outcome{status: res.StatusCode, body: string(body), took: time.Since(start)}
	if err != nil {
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("GET %s%s: reading the body: %v", host, path, err)
		}
		o.cut = true
	}
	return o
}

// The revision timeouts as the translator emits them and the gateway
// enforces them (docs/timeouts.md): timeoutSeconds is the route timeout,
// idleTimeoutSeconds the route's idle_timeout, responseStartTimeoutSeconds
// the retry policy's per_try_idle_timeout. Durations are scaled down to a
// few hundred milliseconds.
func TestRevisionTimeouts(t *testing.T) {
	const unit = 300 * time.Millisecond
	type timeouts struct{ timeout, start, idle time.Duration }
	cases := []struct {
		name     string
		timeouts timeouts
		path     string
		want     outcome // took: about when it ends
	}{
		{"response start: 504 when no response started in time",
			timeouts{timeout: 20 * unit, start: unit}, "/?delay=900ms",
			outcome{status: 504, body: "upstream request timeout", took: unit}},
		{"response start: a response started in time streams on",
			timeouts{timeout: 20 * unit, start: unit}, "/?delay=100ms&pause=100ms",
			outcome{status: 200, body: "ab", took: 200 * time.Millisecond}},
		{"response start: a later silence as long ends the response too (per_try_idle_timeout)",
			timeouts{timeout: 20 * unit, start: unit}, "/?pause=900ms",
			outcome{status: 200, body: "a", cut: true, took: unit}},
		{"response start longer than the idle timeout: the idle timeout decides",
			timeouts{timeout: 20 * unit, start: 2 * unit, idle: unit}, "/?delay=900ms",
			outcome{status: 504, body: "stream timeout", took: unit}},
		{"idle: a stream silent for longer is cut",
			timeouts{timeout: 20 * unit, idle: unit}, "/?pause=900ms",
			outcome{status: 200, body: "a", cut: true, took: unit}},
		{"idle: a stream never silent for as long completes",
			timeouts{timeout: 20 * unit, idle: unit}, "/?pause=100ms",
			outcome{status: 200, body: "ab", took: 100 * time.Millisecond}},
		{"idle: 504 when the response has not started within it",
			timeouts{timeout: 20 * unit, idle: unit}, "/?delay=900ms",
			outcome{status: 504, body: "stream timeout", took: unit}},
		{"timeout: 504 when the response has not started within it",
			timeouts{timeout: unit}, "/?delay=900ms",
			outcome{status: 504, body: "upstream request timeout", took: unit}},
		{"timeout: bounds the whole request, a response under way is cut",
			timeouts{timeout: unit}, "/?pause=900ms",
			outcome{status: 200, body: "a", cut: true, took: unit}},
	}
	e := newEnv(t, envOptions{})
	app := newBackend(t, "paced", pacer.ServeHTTP)
	var cfg model.Config
	for i, tc := range cases {
		name := fmt.Sprintf("case%d", i)
		rev := name + "-00001"
		route := prefixRoute("/", tc.timeouts.timeout, split(rev, 100))
		route.ResponseStartTimeout, route.IdleTimeout = tc.timeouts.start, tc.timeouts.idle
		cfg.Services = append(cfg.Services, service(name, route))
		cfg.Revisions = append(cfg.Revisions, revision(rev, model.HTTP1, tc.timeouts.timeout))
		cfg.Endpoints = append(cfg.Endpoints, serving(rev, app))
	}
	e.update(cfg)
	c, ext := client(t), e.addr(translator.ExternalListener)
	for i := range cases {
		awaitBody(t, c, ext, externalHost(fmt.Sprintf("case%d", i)), "/", "ab")
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := fetchTimed(t, c, ext, externalHost(fmt.Sprintf("case%d", i)), tc.path)
			t.Logf("%v", got)
			if got.status != tc.want.status || got.body != tc.want.body || got.cut != tc.want.cut {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			// Late by a loaded machine's scheduling, never early.
			if got.took < tc.want.took-20*time.Millisecond || got.took > tc.want.took+400*time.Millisecond {
				t.Errorf("ended after %v, want about %v", got.took, tc.want.took)
			}
		})
	}
}

// The connection manager's stream_idle_timeout bounds a stream whose route
// sets no idle_timeout, and a route's idle_timeout replaces it.
func TestStreamIdleTimeout(t *testing.T) {
	e := newEnv(t, envOptions{translator: translator.Options{Limits: translator.Limits{StreamIdleTimeout: 300 * time.Millisecond}}})
	app := newBackend(t, "paced", pacer.ServeHTTP)
	listener := prefixRoute("/", 0, split("listener-00001", 100))
	route := prefixRoute("/", 0, split("route-00001", 100))
	route.IdleTimeout = time.Second
	e.update(model.Config{
		Services:  []model.Service{service("listener", listener), service("route", route)},
		Revisions: []model.Revision{revision("listener-00001", model.HTTP1, 0), revision("route-00001", model.HTTP1, 0)},
		Endpoints: []model.RevisionEndpoints{serving("listener-00001", app), serving("route-00001", app)},
	})
	c, ext := client(t), e.addr(translator.ExternalListener)
	awaitBody(t, c, ext, externalHost("listener"), "/", "ab")
	awaitBody(t, c, ext, externalHost("route"), "/", "ab")

	if got := fetchTimed(t, c, ext, externalHost("listener"), "/?pause=900ms"); !got.cut || got.body != "a" {
		t.Errorf("stream_idle_timeout 300ms, a 900ms pause: got %v, want the response cut after \"a\"", got)
	}
	if got := fetchTimed(t, c, ext, externalHost("route"), "/?pause=600ms"); got.cut || got.body != "ab" {
		t.Errorf("route idle_timeout 1s over stream_idle_timeout 300ms, a 600ms pause: got %v, want \"ab\"", got)
	}
}

// A request body that keeps arriving keeps the stream alive: the idle
// timer counts bytes in both directions, as Envoy's does.
func TestIdleTimeoutCountsRequestBytes(t *testing.T) {
	e := newEnv(t, envOptions{})
	echo := newBackend(t, "echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})
	route := prefixRoute("/", 0, split("echo-00001", 100))
	route.IdleTimeout = 300 * time.Millisecond
	e.update(model.Config{
		Services:  []model.Service{service("echo", route)},
		Revisions: []model.Revision{revision("echo-00001", model.HTTP1, 0)},
		Endpoints: []model.RevisionEndpoints{serving("echo-00001", echo)},
	})
	c, ext := client(t), e.addr(translator.ExternalListener)
	awaitBody(t, c, ext, externalHost("echo"), "/", "")

	pr, pw := io.Pipe()
	go func() {
		for _, part := range []string{"one ", "two ", "three"} {
			pw.Write([]byte(part))
			time.Sleep(200 * time.Millisecond) // 600ms in all, never 300ms silent
		}
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, "http://"+ext+"/", pr)
	req.Host = externalHost("echo")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "one two three") {
		t.Errorf("a body arriving in 200ms steps under a 300ms idle timeout: %d %q %v, want 200 \"one two three\"", res.StatusCode, body, err)
	}
}
