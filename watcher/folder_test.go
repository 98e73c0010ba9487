package watcher

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
)

// logBuffer collects log output safely across goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

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

// folderHarness runs a Folder over a temp dir.
type folderHarness struct {
	t       *testing.T
	dir     string
	logs    *logBuffer
	folder  *Folder
	results chan *Result
}

func startFolder(t *testing.T, paths func(dir string) []string, ready map[string]bool, files map[string]string) *folderHarness {
	t.Helper()
	h := &folderHarness{t: t, dir: t.TempDir(), logs: &logBuffer{}, results: make(chan *Result, 100)}
	for name, text := range files {
		h.write(name, text)
	}
	f, err := NewFolder(paths(h.dir), FolderOptions{
		Logger:   slog.New(slog.NewTextHandler(h.logs, nil)),
		Debounce: 20 * time.Millisecond,
		OnChange: func(r *Result) { h.results <- r },
		Ready:    ready,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.folder = f
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	return h
}

func (h *folderHarness) write(name, text string) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.dir, name), []byte(text), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// await waits (at most 5 s) for a result satisfying ok.
func (h *folderHarness) await(what string, ok func(*Result) bool) *Result {
	h.t.Helper()
	deadline := time.After(5 * time.Second)
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

func routedRevisions(r *Result, svc string) []string {
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

func dirOnly(dir string) []string { return []string{dir} }

func TestFolderLifecycle(t *testing.T) {
	h := startFolder(t, dirOnly, nil, map[string]string{
		"hello.yaml":  service("hello", "img:1"),
		"notes.txt":   "not a manifest",
		".hello.yaml": "ignored: editors' hidden files",
	})

	// The initial load is synchronous.
	if got := routedRevisions(h.folder.Current(), "hello"); len(got) != 1 || got[0] != "default/hello-00001" {
		t.Fatalf("initial load routes %v, want [default/hello-00001]", got)
	}

	// A change of template makes a new revision.
	h.write("hello.yaml", service("hello", "img:2"))
	h.await("hello-00002 to serve", func(r *Result) bool {
		got := routedRevisions(r, "hello")
		return len(got) == 1 && got[0] == "default/hello-00002"
	})

	// An invalid version keeps the last good serving, reported not Ready and
	// logged with the file and the field.
	h.write("hello.yaml", service("hello", "img:3")+"\n  traffic:\n    - latestRevision: true\n      percent: 40")
	r := h.await("hello to be reported invalid", func(r *Result) bool {
		s := findService(r, "hello")
		return s != nil && !isReady(s.Status.Conditions)
	})
	if got := routedRevisions(r, "hello"); len(got) != 1 || got[0] != "default/hello-00002" {
		t.Errorf("invalid version: routes %v, want the last good [default/hello-00002]", got)
	}
	if c := condOf(t, findService(r, "hello").Status.Conditions, servingv1.ConditionReady); c.Reason != ReasonInvalidSpec || !strings.Contains(c.Message, "spec.traffic") {
		t.Errorf("Ready = %+v, want InvalidSpec naming spec.traffic", c)
	}
	if len(h.logs.lines("hello.yaml", "field=spec.traffic", "Traffic targets sum to 40")) == 0 {
		t.Errorf("no log line names the file and field; logs:\n%s", h.logs.String())
	}

	// A file that no longer parses keeps the objects it last produced.
	h.write("hello.yaml", "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: hello\n spec: [")
	h.await("the parse error to be logged", func(*Result) bool { return true })
	if len(h.logs.lines("hello.yaml", "line=", "does not parse")) == 0 {
		t.Errorf("parse error not logged with file and line; logs:\n%s", h.logs.String())
	}
	if got := routedRevisions(h.folder.Current(), "hello"); len(got) != 1 || got[0] != "default/hello-00002" {
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
	h.await("hello-00003 to serve", func(r *Result) bool {
		s := findService(r, "hello")
		got := routedRevisions(r, "hello")
		return s != nil && isReady(s.Status.Conditions) && len(got) == 1 && got[0] == "default/hello-00003"
	})

	// Deleting the file deletes its objects.
	if err := os.Remove(filepath.Join(h.dir, "hello.yaml")); err != nil {
		t.Fatal(err)
	}
	r = h.await("hello to be removed", func(r *Result) bool { return findService(r, "hello") == nil })
	if len(r.Model.Services)+len(r.Revisions) != 0 {
		t.Errorf("after deletion: model %+v, revisions %v; want nothing", r.Model, names(r.Revisions))
	}
	t.Logf("logs:\n%s", h.logs)
}

func TestFolderExplicitFileAndReadiness(t *testing.T) {
	// A deploy is attached: no revision is ready at first.
	h := startFolder(t, func(dir string) []string { return []string{filepath.Join(dir, "a.yaml")} },
		map[string]bool{}, map[string]string{"a.yaml": service("a", "img"), "b.yaml": service("b", "img")})
	r := h.folder.Current()
	if findService(r, "a") == nil || findService(r, "b") != nil {
		t.Fatalf("explicit file: services %d, want only a", len(r.Services))
	}
	if len(r.Model.Services) != 0 {
		t.Errorf("nothing ready: model services %+v, want none", r.Model.Services)
	}
	if c := condOf(t, findService(r, "a").Status.Conditions, servingv1.ConditionReady); c.Status != corev1.ConditionUnknown {
		t.Errorf("not-ready revision: Service Ready = %+v, want Unknown", c)
	}

	h.folder.SetReady(map[string]bool{"default/a-00001": true})
	h.await("a to serve", func(r *Result) bool { return len(routedRevisions(r, "a")) == 1 })

	// As in Knative, latestReadyRevisionName never moves back: a revision
	// that stops being ready keeps its traffic, reported not Ready.
	h.folder.SetReady(map[string]bool{})
	r = h.await("a's revision to be reported not ready", func(r *Result) bool {
		return !isReady(findService(r, "a").Status.Conditions)
	})
	if got := routedRevisions(r, "a"); len(got) != 1 {
		t.Errorf("revision no longer ready: routes %v, want it kept", got)
	}
}

func TestNewFolderErrors(t *testing.T) {
	if _, err := NewFolder(nil, FolderOptions{}); err == nil {
		t.Error("NewFolder with no paths: no error")
	}
	missing := filepath.Join(t.TempDir(), "missing")
	if _, err := NewFolder([]string{missing}, FolderOptions{}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("NewFolder(missing) error = %v, want one naming the path", err)
	}
}

// isReady reports whether a condition list has Ready True.
func isReady(cs []servingv1.Condition) bool {
	c := find(cs, servingv1.ConditionReady)
	return c != nil && c.Status == corev1.ConditionTrue
}
