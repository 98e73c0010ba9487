package folder

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/watcher"
	"github.com/kgate/kgate/watcher/knative"
)

// logBuffer collects log output safely across goroutines.
type logBuffer struct{ testrun.Buffer }

// lines returns the log lines containing every one of the substrings.
func (l *logBuffer) lines(subs ...string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		ok := line != ""
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// folderHarness runs a Folder feeding a pipeline, over a temp dir.
type folderHarness struct {
	t       *testing.T
	dir     string
	logs    *logBuffer
	folder  *Folder
	pipe    *watcher.Pipeline
	results chan *knative.Result
}

// discard is a Routing that serves nothing.
type discard struct{}

func (discard) UpdateRouting([]model.Service, []model.Revision) error { return nil }

// startFolder runs a Folder over paths, and a pipeline (deployed: revisions
// are ready only once reported so) applying what it reads.
func startFolder(t *testing.T, paths func(dir string) []string, deployed bool, files map[string]string) *folderHarness {
	t.Helper()
	h := newHarness(t)
	for name, text := range files {
		h.write(name, text)
	}
	h.start(paths(h.dir), deployed)
	return h
}

// newHarness makes a harness over a temp dir, for a test to fill before
// start.
func newHarness(t *testing.T) *folderHarness {
	return &folderHarness{t: t, dir: t.TempDir(), logs: &logBuffer{}, results: make(chan *knative.Result, 100)}
}

// start runs a Folder over paths, and a pipeline (deployed: revisions are
// ready only once reported so) applying what it reads.
func (h *folderHarness) start(paths []string, deployed bool) {
	t := h.t
	t.Helper()
	log := slog.New(slog.NewTextHandler(h.logs, nil))
	h.pipe = watcher.New(watcher.Options{Routing: discard{}, Deployed: deployed, Logger: log})
	f, err := New(paths, Options{Logger: log, Debounce: 20 * time.Millisecond, Sink: h.pipe})
	if err != nil {
		t.Fatal(err)
	}
	h.folder = f
	h.pipe.Apply(watcher.Change{Objects: f.Objects(), Replace: true})
	testrun.Go(t, context.Background(), "the folder's Run", 5*time.Second, f.Run)
	testrun.Go(t, context.Background(), "the pipeline's Run", 5*time.Second, func(ctx context.Context) error {
		return h.pipe.Run(ctx, func(r *knative.Result) { h.results <- r })
	})
}

func (h *folderHarness) write(name, text string) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.dir, name), []byte(text), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// await waits (at most 3 s: a change must apply within 2 s) for a result
// satisfying ok.
func (h *folderHarness) await(what string, ok func(*knative.Result) bool) *knative.Result {
	h.t.Helper()
	deadline := time.After(3 * time.Second)
	for {
		select {
		case r := <-h.results:
			if ok(r) {
				return r
			}
		case <-deadline:
			h.t.Fatalf("timed out waiting for %s; logs:\n%s", what, h.logs.String())
		}
	}
}

func routedRevisions(r *knative.Result, svc string) []string {
	var out []string
	for _, s := range r.Model.Services {
		if s.Name != svc {
			continue
		}
		for _, rt := range s.VirtualHosts[0].Routes {
			for _, sp := range rt.Splits {
				out = append(out, sp.Revision)
			}
		}
	}
	return out
}

// serves is a result in which svc routes all its traffic to rev.
func serves(svc, rev string) func(*knative.Result) bool {
	return func(r *knative.Result) bool {
		got := routedRevisions(r, svc)
		return len(got) == 1 && got[0] == "default/"+rev
	}
}

func dirOnly(dir string) []string { return []string{dir} }

func TestFolderLifecycle(t *testing.T) {
	h := startFolder(t, dirOnly, false, map[string]string{
		"hello.yaml":  service("hello", "img:1"),
		"notes.txt":   "not a manifest",
		".hello.yaml": "ignored: editors' hidden files",
	})

	// The initial load is synchronous.
	if got := routedRevisions(h.pipe.Current(), "hello"); len(got) != 1 || got[0] != "default/hello-00001" {
		t.Fatalf("initial load routes %v, want [default/hello-00001]", got)
	}

	// A change of template makes a new revision.
	h.write("hello.yaml", service("hello", "img:2"))
	h.await("hello-00002 to serve", func(r *knative.Result) bool {
		got := routedRevisions(r, "hello")
		return len(got) == 1 && got[0] == "default/hello-00002"
	})

	// An invalid version keeps the last good serving, reported not Ready and
	// logged with the file and the field.
	h.write("hello.yaml", service("hello", "img:3")+"\n  traffic:\n    - latestRevision: true\n      percent: 40")
	r := h.await("hello to be reported invalid", func(r *knative.Result) bool {
		s := findService(r, "hello")
		return s != nil && !isReady(s.Status.Conditions)
	})
	if got := routedRevisions(r, "hello"); len(got) != 1 || got[0] != "default/hello-00002" {
		t.Errorf("invalid version: routes %v, want the last good [default/hello-00002]", got)
	}
	if c := condOf(t, findService(r, "hello").Status.Conditions, servingv1.ConditionReady); c.Reason != knative.ReasonInvalidSpec || !strings.Contains(c.Message, "spec.traffic") {
		t.Errorf("Ready = %+v, want InvalidSpec naming spec.traffic", c)
	}
	if len(h.logs.lines("hello.yaml", "field=spec.traffic", "Traffic targets sum to 40")) == 0 {
		t.Errorf("no log line names the file and field; logs:\n%s", h.logs.String())
	}

	// A file that no longer parses keeps the objects it last produced.
	h.write("hello.yaml", "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: hello\n spec: [")
	h.await("the parse error to be logged", func(*knative.Result) bool { return true })
	if len(h.logs.lines("hello.yaml", "line=", "does not parse")) == 0 {
		t.Errorf("parse error not logged with file and line; logs:\n%s", h.logs.String())
	}
	if got := routedRevisions(h.pipe.Current(), "hello"); len(got) != 1 || got[0] != "default/hello-00002" {
		t.Errorf("broken file: routes %v, want the last good [default/hello-00002]", got)
	}

	// Fixed again, via rename-on-save as editors do.
	tmp := filepath.Join(h.dir, "hello.yaml.swp")
	if err := os.WriteFile(tmp, []byte(service("hello", "img:4")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(h.dir, "hello.yaml")); err != nil {
		t.Fatal(err)
	}
	h.await("hello-00003 to serve", func(r *knative.Result) bool {
		s := findService(r, "hello")
		got := routedRevisions(r, "hello")
		return s != nil && isReady(s.Status.Conditions) && len(got) == 1 && got[0] == "default/hello-00003"
	})

	// Deleting the file deletes its objects.
	if err := os.Remove(filepath.Join(h.dir, "hello.yaml")); err != nil {
		t.Fatal(err)
	}
	r = h.await("hello to be removed", func(r *knative.Result) bool { return findService(r, "hello") == nil })
	if len(r.Model.Services)+len(r.Revisions) != 0 {
		t.Errorf("after deletion: model %+v, revisions %v; want nothing", r.Model, names(r.Revisions))
	}
	t.Logf("logs:\n%s", h.logs)
}

func TestFolderExplicitFileAndReadiness(t *testing.T) {
	// A deploy is attached: no revision is ready at first.
	h := startFolder(t, func(dir string) []string { return []string{filepath.Join(dir, "a.yaml")} },
		true, map[string]string{"a.yaml": service("a", "img"), "b.yaml": service("b", "img")})
	r := h.pipe.Current()
	if findService(r, "a") == nil || findService(r, "b") != nil {
		t.Fatalf("explicit file: services %d, want only a", len(r.Services))
	}
	if len(r.Model.Services) != 0 {
		t.Errorf("nothing ready: model services %+v, want none", r.Model.Services)
	}
	if c := condOf(t, findService(r, "a").Status.Conditions, servingv1.ConditionReady); c.Status != corev1.ConditionUnknown {
		t.Errorf("not-ready revision: Service Ready = %+v, want Unknown", c)
	}

	h.pipe.Submit(watcher.Change{Ready: []string{"default/a-00001"}})
	r = h.await("a to serve", func(r *knative.Result) bool { return len(routedRevisions(r, "a")) == 1 })
	if !isReady(findService(r, "a").Status.Conditions) {
		t.Errorf("a's Service is not Ready once its revision is")
	}

	// Editing b.yaml, which is not watched, changes nothing.
	h.write("b.yaml", service("b", "img:2"))
	h.write("a.yaml", service("a", "img:2"))
	r = h.await("a-00002", func(r *knative.Result) bool { return len(r.Revisions) == 2 })
	if findService(r, "b") != nil {
		t.Errorf("b.yaml, not named, was read")
	}
}

func TestNewFolderErrors(t *testing.T) {
	if _, err := New(nil, Options{}); err == nil {
		t.Error("New with no paths: no error")
	}
	missing := filepath.Join(t.TempDir(), "missing")
	if _, err := New([]string{missing}, Options{}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("New(missing) error = %v, want one naming the path", err)
	}
}

func service(name, image string) string {
	return `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: ` + name + `
spec:
  template:
    spec:
      containers:
        - image: ` + image
}

func findService(res *knative.Result, name string) *servingv1.Service {
	for _, s := range res.Services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func find(cs []servingv1.Condition, typ servingv1.ConditionType) *servingv1.Condition {
	for i := range cs {
		if cs[i].Type == typ {
			return &cs[i]
		}
	}
	return nil
}

func condOf(t *testing.T, cs []servingv1.Condition, typ servingv1.ConditionType) servingv1.Condition {
	t.Helper()
	c := find(cs, typ)
	if c == nil {
		t.Fatalf("no %s condition in %+v", typ, cs)
	}
	return *c
}

func names(revs []*servingv1.Revision) []string {
	var out []string
	for _, r := range revs {
		out = append(out, r.Name)
	}
	return out
}

// isReady reports whether a condition list has Ready True.
func isReady(cs []servingv1.Condition) bool {
	c := find(cs, servingv1.ConditionReady)
	return c != nil && c.Status == corev1.ConditionTrue
}

func TestFolderSubfoldersAreNotRead(t *testing.T) {
	h := newHarness(t)
	linked := realTempDir(t)
	h.write("hello.yaml", service("hello", "img:1"))
	writeFile(t, filepath.Join(h.dir, "sub", "inner.yaml"), service("inner", "img"))
	writeFile(t, filepath.Join(h.dir, ".hidden", "secret.yaml"), service("secret", "img"))
	writeFile(t, filepath.Join(linked, "linked.yaml"), service("linked", "img"))
	symlink(t, linked, filepath.Join(h.dir, "linked"))
	h.start(dirOnly(h.dir), false)

	said := func(sub string) int {
		return len(h.logs.lines("subfolder not read", "kubectl apply -f DIR without -R", "dir="+filepath.Join(h.dir, sub)))
	}
	check := func(when string, subs ...string) {
		t.Helper()
		r := h.pipe.Current()
		for _, svc := range []string{"inner", "secret", "linked", "late"} {
			if findService(r, svc) != nil {
				t.Errorf("%s: Service %s, in a subfolder, was read", when, svc)
			}
		}
		for _, sub := range subs {
			if n := said(sub); n != 1 {
				t.Errorf("%s: subfolder %s said not read %d times, want once; logs:\n%s", when, sub, n, h.logs)
			}
		}
		if n := said(".hidden"); n != 0 {
			t.Errorf("%s: hidden subfolder reported %d times, want never", when, n)
		}
	}
	check("at start", "sub", "linked")

	// Rescans do not say it again.
	for i, img := range []string{"img:2", "img:3"} {
		h.write("hello.yaml", service("hello", img))
		h.await("the edit to apply", serves("hello", "hello-0000"+string(rune('2'+i))))
	}
	check("after rescans", "sub", "linked")

	// A subfolder made while running is said not read as it appears, once.
	writeFile(t, filepath.Join(h.dir, "later", "late.yaml"), service("late", "img"))
	testrun.Poll{Within: 3 * time.Second, Every: 10 * time.Millisecond}.Until(t, "the new subfolder to be reported", func() bool { return said("later") > 0 })
	h.write("hello.yaml", service("hello", "img:4"))
	h.await("the edit to apply", serves("hello", "hello-00004"))
	check("after a subfolder appeared", "sub", "linked", "later")
}
