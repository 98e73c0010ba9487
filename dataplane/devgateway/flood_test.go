//go:build linux

package devgateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kgate/kgate/activator"
	"github.com/kgate/kgate/dataplane/devgateway"
	"github.com/kgate/kgate/dataplane/inflight"
	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
)

// Issue 12: a flood at one slow revision took the whole of `kgate local`
// down, its gateway, activator and probes sharing one file limit. Here the
// dev gateway and the activator run in this process as in `kgate local`,
// with the defaults their options get from the process's file limit,
// lowered for the test; the flood comes from another process (this test
// binary again, TestFloodClient), so that its own connections do not count.

const (
	// floodFileLimit is the test process's file limit during the flood:
	// gateway connections 58, activator requests 29, 14 of one revision.
	floodFileLimit = 400
	floodWorkers   = 300
	// floodProbeWithin is how soon another revision must answer during the
	// flood.
	floodProbeWithin = 2 * time.Second
)

// The flood client's settings, from TestFloodAtOneSlowRevision.
const (
	floodAddrEnv = "KGATE_TEST_FLOOD_ADDR"
	floodHostEnv = "KGATE_TEST_FLOOD_HOST"
	// floodResultPrefix starts the line where the client prints what its
	// requests got.
	floodResultPrefix = "flood result: "
	// floodShed names the answer the flood should get beyond the ceilings.
	floodShed = "503 shed by the activator"
)

func TestFloodAtOneSlowRevision(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skipf("counting descriptors needs /proc/self/fd: %v", err)
	}
	lowerFileLimit(t, floodFileLimit)
	budget := inflight.DefaultBudget()
	if budget != inflight.BudgetFor(floodFileLimit) {
		t.Fatalf("budget %v, want the lowered limit's: %v", budget, inflight.BudgetFor(floodFileLimit))
	}

	// As kgate local wires them: one counter, default ceilings.
	counter := new(inflight.Counter)
	act := activator.New(activator.Options{Inflight: counter})
	actEndpoint := serveActivator(t, act)
	e := newEnv(t, envOptions{gateway: func(o *devgateway.Options) { o.Inflight = counter }})

	// slow takes one request at a time (containerConcurrency 1) and holds
	// each until the test releases them.
	release := make(chan struct{})
	slow := newBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
			fmt.Fprint(w, "slow")
		case <-r.Context().Done():
		}
	})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseAll) // before slow's server closes, which waits for its requests
	other, direct := newBackend(t, "other", nil), newBackend(t, "direct", nil)

	// slow and other behind the activator, direct served by its pod.
	cfg := apps(
		app{name: "slow", timeout: time.Minute, pods: []model.Endpoint{slow.endpoint}},
		app{name: "other", timeout: time.Minute, pods: []model.Endpoint{other.endpoint}},
		app{name: "direct", pods: []model.Endpoint{direct.endpoint}},
	)
	cfg.Revisions[0].ContainerConcurrency = 1
	for i := range cfg.Endpoints[:2] {
		cfg.Endpoints[i].Mode, cfg.Endpoints[i].Activators = model.Proxy, []model.Endpoint{actEndpoint}
	}
	e.update(cfg)
	act.SetRevision(revKey("slow-00001"), activator.RevisionConfig{ContainerConcurrency: 1, Timeout: time.Minute})
	act.SetEndpoints(revKey("slow-00001"), []model.Endpoint{slow.endpoint})
	act.SetRevision(revKey("other-00001"), activator.RevisionConfig{Timeout: time.Minute})
	act.SetEndpoints(revKey("other-00001"), []model.Endpoint{other.endpoint})
	ext := e.addr(translator.ExternalListener)
	probe := client(t)
	awaitBody(t, probe, ext, externalHost("other"), "/", "other")
	awaitBody(t, probe, ext, externalHost("direct"), "/", "direct")

	baseline := openFiles(t)
	if baseline >= budget.Reserve {
		t.Fatalf("%d files open before the flood: the test's own exceed the reserve (%d)", baseline, budget.Reserve)
	}
	peak := sampleOpenFiles(t)

	flood := startFlood(t, ext, externalHost("slow"))
	slowStats := func() activator.RevisionStats { return act.Stats()[revKey("slow-00001")] }
	testrun.Poll{Within: 30 * time.Second, Every: 10 * time.Millisecond}.Until(t, "the flood shed at slow's share", func() bool {
		s := slowStats()
		return s.Waiting == budget.HeldPerRevision-1 && s.Rejected >= 100
	})

	// Meanwhile, revisions behind the activator and served directly answer
	// at once, each request on a connection of its own.
	probe = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	for range 3 {
		for _, name := range []string{"other", "direct"} {
			start := time.Now()
			r, err := do(probe, http.MethodGet, ext, externalHost(name), "/", nil)
			took := time.Since(start)
			if err != nil || r.status != http.StatusOK || r.body != name || took > floodProbeWithin {
				t.Errorf("GET %s during the flood: %d %q, %v after %v; want 200 %q within %v", name, r.status, r.body, err, took, name, floodProbeWithin)
			}
		}
	}
	if s := slowStats(); s.Rejected < 100 {
		t.Errorf("the flood stopped before the probes ended: %+v", s)
	}

	results := flood.stop(t, releaseAll)
	maxFiles := peak()
	t.Logf("flood: %v; files open: %d before, at most %d during (%v)", results, baseline, maxFiles, budget)
	for outcome, n := range results {
		if outcome != "200 slow" && outcome != floodShed {
			t.Errorf("%d flood requests got %s; want only 200 slow or %s", n, outcome, floodShed)
		}
	}
	if results[floodShed] == 0 || results["200 slow"] == 0 {
		t.Errorf("flood results %v: want both answers held and shed", results)
	}
	if usable := budget.FileLimit - budget.Reserve; maxFiles-baseline > usable {
		t.Errorf("the flood opened up to %d files, over the %d the budget allows", maxFiles-baseline, usable)
	}
	eventually(t, "nothing in flight to slow", func() error {
		addr := net.JoinHostPort(slow.endpoint.Address, strconv.FormatUint(uint64(slow.endpoint.Port), 10))
		if n := counter.Count(addr); n != 0 {
			return fmt.Errorf("%d in flight", n)
		}
		return nil
	})
}

// lowerFileLimit sets the process's soft file limit to n until the test
// ends.
func lowerFileLimit(t *testing.T, n uint64) {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if old.Cur < n {
		t.Skipf("the file limit is %d already, under %d", old.Cur, n)
	}
	lowered := old
	lowered.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lowered); err != nil {
		t.Fatal(err)
	}
	// Registered first, so run last: once everything the test started
	// has stopped.
	t.Cleanup(func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
			t.Errorf("restoring the file limit: %v", err)
		}
	})
}

// serveActivator serves act on loopback until the test ends, and returns
// its endpoint.
func serveActivator(t *testing.T, act *activator.Activator) model.Endpoint {
	t.Helper()
	ln := testrun.Listen(t)
	srv := activator.NewServer("", act)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("activator shutdown: %v", err)
		}
		if err := act.Drain(ctx); err != nil {
			t.Error(err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("activator serve: %v", err)
		}
	})
	return endpointOf(ln.Addr())
}

// openFiles counts the process's open files.
func openFiles(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// sampleOpenFiles counts the open files every 5 ms until peak is called,
// which returns the most seen.
func sampleOpenFiles(t *testing.T) (peak func() int) {
	stop, done := make(chan struct{}), make(chan int, 1)
	go func() {
		most := 0
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			if entries, err := os.ReadDir("/proc/self/fd"); err == nil {
				most = max(most, len(entries))
			}
			select {
			case <-stop:
				done <- most
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	var most int
	peak = func() int {
		once.Do(func() {
			close(stop)
			most = <-done
		})
		return most
	}
	t.Cleanup(func() { peak() })
	return peak
}

// flood is the flood client running in its own process.
type flood struct {
	cmd    *exec.Cmd
	stdin  io.Closer
	out    *testrun.Buffer
	exited chan error
}

// startFlood starts TestFloodClient in a process of its own, sending
// floodWorkers requests at a time to host through the gateway at addr.
func startFlood(t *testing.T, addr, host string) *flood {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFloodClient$", "-test.v", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), floodAddrEnv+"="+addr, floodHostEnv+"="+host)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	f := &flood{cmd: cmd, stdin: stdin, out: &testrun.Buffer{}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = f.out, f.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { f.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // it has exited unless the test failed first
		<-f.exited
	})
	return f
}

// stop tells the client to stop, calls release for the requests still
// held, and returns how many requests got each answer.
func (f *flood) stop(t *testing.T, release func()) map[string]int {
	t.Helper()
	_ = f.stdin.Close()
	release()
	select {
	case err := <-f.exited:
		f.exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("flood client: %v\n%s", err, f.out)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the flood client did not stop within 30 s after it was told to:\n%s", f.out)
	}
	for line := range strings.Lines(f.out.String()) {
		if rest, ok := strings.CutPrefix(line, floodResultPrefix); ok {
			var results map[string]int
			if err := json.Unmarshal([]byte(rest), &results); err != nil {
				t.Fatalf("flood result %q: %v", rest, err)
			}
			return results
		}
	}
	t.Fatalf("the flood client printed no result:\n%s", f.out)
	return nil
}

// TestFloodClient is the flood of TestFloodAtOneSlowRevision, which runs it
// in a process of its own; otherwise it is skipped. floodWorkers send
// requests until stdin closes, and it prints how many got each answer.
func TestFloodClient(t *testing.T) {
	addr, host := os.Getenv(floodAddrEnv), os.Getenv(floodHostEnv)
	if addr == "" {
		t.Skip("the flood of TestFloodAtOneSlowRevision")
	}
	ctx, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	// Keep-alive connections, as load generators use: the gateway closes
	// them on a 503 and above its high-water mark.
	transport := &http.Transport{MaxIdleConnsPerHost: floodWorkers}
	defer transport.CloseIdleConnections()
	c := &http.Client{Transport: transport, Timeout: 90 * time.Second}
	var mu sync.Mutex
	results := map[string]int{}
	var wg sync.WaitGroup
	for range floodWorkers {
		wg.Go(func() {
			for ctx.Err() == nil {
				outcome := floodRequest(c, addr, host)
				mu.Lock()
				results[outcome]++
				mu.Unlock()
				// A client retrying after a 503, if not at once.
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	out, err := json.Marshal(results)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("\n%s%s\n", floodResultPrefix, out)
	t.Logf("outcomes: %v", slices.Sorted(maps.Keys(results)))
}

// floodRequest sends one request and names what it got.
func floodRequest(c *http.Client, addr, host string) string {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		return "error: " + err.Error()
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 200))
	switch {
	case err != nil:
		return "error reading the body: " + err.Error()
	case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get(activator.RejectedHeader) == "true" && resp.Close:
		return floodShed
	}
	return fmt.Sprintf("%d %s", resp.StatusCode, body)
}
