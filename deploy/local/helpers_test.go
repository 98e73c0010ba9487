//go:build unix

package local

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/translator/model"
)

// record is a log record with its attributes as text.
type record struct {
	time  time.Time
	msg   string
	attrs map[string]string
}

// recorder is a slog.Handler that keeps every record.
type recorder struct {
	mu      *sync.Mutex
	records *[]record
	attrs   []slog.Attr
}

func newRecorder() *recorder { return &recorder{mu: &sync.Mutex{}, records: &[]record{}} }

func (h *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *recorder) WithGroup(string) slog.Handler            { return h }
func (h *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &recorder{mu: h.mu, records: h.records, attrs: append(h.attrs[:len(h.attrs):len(h.attrs)], as...)}
}

func (h *recorder) Handle(_ context.Context, r slog.Record) error {
	rec := record{time: r.Time, msg: r.Message, attrs: map[string]string{}}
	for _, a := range h.attrs {
		rec.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.records = append(*h.records, rec)
	return nil
}

// find returns the records whose message starts with prefix.
func (h *recorder) find(prefix string) []record {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []record
	for _, r := range *h.records {
		if strings.HasPrefix(r.msg, prefix) {
			out = append(out, r)
		}
	}
	return out
}

func (h *recorder) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	for _, r := range *h.records {
		b.WriteString(r.time.Format("15:04:05.000 ") + r.msg)
		for k, v := range r.attrs {
			b.WriteString(" " + k + "=" + v)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// fixture is a Deployer under test with what it logged and notified.
type fixture struct {
	*Deployer
	logs *recorder
	// changes receives, for each notification, the revision's ready
	// endpoints at that moment.
	changes chan []model.Endpoint
}

// newFixture returns a Deployer with opts (Logger and OnChange set by the
// fixture) that is closed, and its logs shown on failure, when the test
// ends.
func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	f := &fixture{logs: newRecorder(), changes: make(chan []model.Endpoint, 100)}
	opts.Logger = slog.New(f.logs)
	opts.OnChange = func(rev string) {
		select {
		case f.changes <- f.Ready(rev):
		default:
			t.Errorf("more notifications than the test can hold")
		}
	}
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.Deployer = d
	t.Cleanup(func() {
		d.Close()
		if t.Failed() {
			t.Logf("deployer logs:\n%s", f.logs)
		}
	})
	return f
}

// start sets rev and scales it to n replicas; it returns the revision's
// key.
func (f *fixture) start(t *testing.T, rev *servingv1.Revision, n int32) string {
	t.Helper()
	key := rev.Namespace + "/" + rev.Name
	if err := f.SetRevision(key, rev); err != nil {
		t.Fatal(err)
	}
	if err := f.Scale(t.Context(), key, n); err != nil {
		t.Fatal(err)
	}
	return key
}

// nextChange waits for a notification and returns the ready endpoints it
// saw.
func (f *fixture) nextChange(t *testing.T) []model.Endpoint {
	t.Helper()
	select {
	case eps := <-f.changes:
		return eps
	case <-time.After(15 * time.Second):
		t.Fatal("no change notified within 15 s")
		return nil
	}
}

// noChange fails if a notification is pending.
func (f *fixture) noChange(t *testing.T) {
	t.Helper()
	select {
	case eps := <-f.changes:
		t.Fatalf("unexpected notification: ready %v", eps)
	default:
	}
}

// pids returns the pids of the processes started so far, in order, and
// the latest of each replica by its number.
func (f *fixture) pids(t *testing.T) (all []int, latest map[string]int) {
	t.Helper()
	latest = map[string]int{}
	for _, r := range f.logs.find("replica started") {
		pid, err := strconv.Atoi(r.attrs["pid"])
		if err != nil {
			t.Fatalf("replica started without a pid: %v", r.attrs)
		}
		all = append(all, pid)
		latest[r.attrs["replica"]] = pid
	}
	return all, latest
}

// newRevision returns a defaulted revision default/name of Service svc
// running c.
func newRevision(name, svc string, c corev1.Container) *servingv1.Revision {
	if c.Name == "" {
		c.Name = "user-container"
	}
	rev := &servingv1.Revision{ObjectMeta: metav1.ObjectMeta{
		Namespace: "default", Name: name,
		Labels: map[string]string{labelService: svc, labelConfiguration: svc},
	}}
	rev.Spec.Containers = []corev1.Container{c}
	return rev
}

// testApp is a container running the test binary as runTestApp's mode.
func testApp(mode string, env ...corev1.EnvVar) corev1.Container {
	return corev1.Container{Image: "example.com/testapp", Command: []string{os.Args[0], "testapp", mode}, Env: env}
}

func env(name, value string) corev1.EnvVar { return corev1.EnvVar{Name: name, Value: value} }

// waitFor polls cond until it holds, failing after 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testrun.Poll{Within: 15 * time.Second, Every: 5 * time.Millisecond}.Until(t, what, cond)
}

// get GETs path from ep and returns the body of a 200.
func get(ep model.Endpoint, path string) (string, error) {
	resp, err := http.Get("http://" + ep.Address + ":" + strconv.Itoa(int(ep.Port)) + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", errors.New(resp.Status + ": " + string(b))
	}
	return string(b), nil
}

// alive says whether pid is a process that has not exited: a zombie
// waiting for a parent that does not reap it counts as exited.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	s := string(stat)
	rest := s[strings.LastIndexByte(s, ')')+1:]
	return !strings.HasPrefix(strings.TrimSpace(rest), "Z")
}

// ready waits until the revision has n ready replicas and returns them.
func (f *fixture) ready(t *testing.T, rev string, n int) []model.Endpoint {
	t.Helper()
	var eps []model.Endpoint
	waitFor(t, strconv.Itoa(n)+" ready replicas of "+rev, func() bool {
		eps = f.Ready(rev)
		return len(eps) == n
	})
	return eps
}
