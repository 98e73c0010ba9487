package xdsclient_test

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/xds"
)

const (
	// waitFor bounds every wait for an update.
	waitFor = 10 * time.Second
	// quiet is how long a test listens to assert that nothing arrives.
	quiet = 300 * time.Millisecond
)

// fastBackoff keeps reconnection tests short.
var fastBackoff = xdsclient.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}

// xdsServer is a real xDS server and engine on loopback, which a test may
// restart on the same address.
type xdsServer struct {
	t    testing.TB
	addr string
	srv  *xds.Server
	eng  *xds.Engine
	logs logLines
	stop func()
}

// startXDS serves cfg on a new loopback address until the test ends.
func startXDS(t testing.TB, cfg model.Config) *xdsServer {
	t.Helper()
	s := &xdsServer{t: t, addr: "127.0.0.1:0"}
	s.start(cfg)
	t.Cleanup(func() { s.stop() })
	return s
}

// restart stops the server and serves cfg from a new one on its address,
// as a control plane restarted by its supervisor.
func (s *xdsServer) restart(cfg model.Config) {
	s.t.Helper()
	s.stop()
	s.start(cfg)
}

func (s *xdsServer) start(cfg model.Config) {
	s.t.Helper()
	lis, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatalf("listening on %s: %v", s.addr, err)
	}
	s.addr = lis.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	s.logs = make(logLines, 1000)
	s.srv = xds.NewServer(ctx, xds.ServerOptions{Logger: slog.New(slog.NewJSONHandler(s.logs, nil))})
	if s.eng, err = xds.NewEngine(s.srv, xds.EngineOptions{}); err != nil {
		s.t.Fatalf("NewEngine: %v", err)
	}
	s.must(s.eng.Update(cfg))
	stopServe := testrun.Go(s.t, ctx, "Serve", waitFor, func(ctx context.Context) error { return s.srv.Serve(ctx, lis) })
	s.stop = func() {
		cancel()
		stopServe()
	}
}

func (s *xdsServer) must(err error) {
	s.t.Helper()
	if err != nil {
		s.t.Fatal(err)
	}
}

// dial connects to addr; grpc's own reconnection is made fast too, so that
// a restarted server is reached within the test's patience.
func dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	return testrun.Dial(t, addr, grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, MaxDelay: 200 * time.Millisecond},
		MinConnectTimeout: time.Second,
	}))
}

// run runs f (a Client's or LoadReporter's Run) until the test ends, and
// checks that it returns once its context ends.
func run(t testing.TB, f func(context.Context) error) {
	t.Helper()
	testrun.Go(t, context.Background(), "Run", waitFor, f)
}

// recorder is a Handler that hands every update to the test and rejects
// those reject returns an error for.
type recorder struct {
	updates chan xdsclient.Update
	reject  func(xdsclient.Update) error
}

func newRecorder() *recorder {
	return &recorder{updates: make(chan xdsclient.Update, 100)}
}

func (r *recorder) handle(u xdsclient.Update) error {
	if r.reject != nil {
		if err := r.reject(u); err != nil {
			return err
		}
	}
	r.updates <- u
	return nil
}

// within returns the next accepted update that changes anything, if one
// arrives within d.
func (r *recorder) within(d time.Duration) (xdsclient.Update, bool) {
	deadline := time.After(d)
	for {
		select {
		case u := <-r.updates:
			if len(u.Resources)+len(u.Removed)+len(u.Absent) > 0 {
				return u, true
			}
		case <-deadline:
			return xdsclient.Update{}, false
		}
	}
}

// next returns the next accepted update that changes anything.
func (r *recorder) next(t testing.TB) xdsclient.Update {
	t.Helper()
	u, ok := r.within(waitFor)
	if !ok {
		t.Fatalf("no update within %s", waitFor)
	}
	return u
}

// none asserts that no update changing anything arrives for a while.
func (r *recorder) none(t testing.TB) {
	t.Helper()
	if u, ok := r.within(quiet); ok {
		t.Fatalf("unexpected update: %v removed %v absent %v", names(u), u.Removed, u.Absent)
	}
}

// names returns an update's resource names, sorted.
func names(u xdsclient.Update) []string {
	var out []string
	for _, r := range u.Resources {
		out = append(out, r.Name)
	}
	slices.Sort(out)
	return out
}

// expectUpdate checks an update's resource names and removals.
func expectUpdate(t testing.TB, u xdsclient.Update, updated, removed []string) {
	t.Helper()
	gotRemoved := slices.Sorted(slices.Values(u.Removed))
	if got := names(u); !slices.Equal(got, updated) || !slices.Equal(gotRemoved, removed) {
		t.Fatalf("update of %v removing %v, want %v removing %v", got, gotRemoved, updated, removed)
	}
}

// revision is a test revision in namespace default.
func revision(name string, cc int64) model.Revision {
	return model.Revision{Namespace: "default", Name: name, Protocol: model.HTTP1, Timeout: 30 * time.Second, ContainerConcurrency: cc}
}

// endpoints are a revision's pods, one per port, on loopback.
func endpoints(name string, ports ...uint32) model.RevisionEndpoints {
	ep := model.RevisionEndpoints{Revision: "default/" + name, Mode: model.Serve}
	for _, p := range ports {
		ep.Pods = append(ep.Pods, model.Endpoint{Address: "127.0.0.1", Port: p})
	}
	return ep
}

// logLines is the server's log, one JSON record per write, handed to the
// test; records beyond its buffer are dropped rather than block the
// server.
type logLines chan string

func (l logLines) Write(p []byte) (int, error) {
	select {
	case l <- string(p):
	default:
	}
	return len(p), nil
}

// await waits for a record containing every one of parts.
func (l logLines) await(t testing.TB, parts ...string) {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case line := <-l:
			if containsAll(line, parts) {
				return
			}
		case <-deadline:
			t.Fatalf("the server logged nothing with %q within %s", parts, waitFor)
		}
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// waitUntil polls cond until it holds, failing the test after waitFor.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testrun.Poll{Within: waitFor, Every: 5 * time.Millisecond}.Until(t, what, cond)
}
