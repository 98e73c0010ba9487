package knative

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kgate/kgate/api/manifest"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/translator/model"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/out")

// t0 is the fake clock's start; each step of a case runs one minute later.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// step is one reconciliation of a golden case: the folder's whole content at
// that moment.
type step struct {
	name  string
	ready map[string]bool
	data  []byte // the step's lines, earlier lines blanked so lines keep their numbers
}

var (
	stepLine  = regexp.MustCompile(`^# step:\s*(.*)$`)
	readyLine = regexp.MustCompile(`^# ready:\s*(.*)$`)
)

// readSteps cuts a case file into steps at "# step: NAME" lines; a
// "# ready: ns/name ..." line (or "# ready: none") in a step makes only the
// listed revisions ready. Without step lines the file is one step.
func readSteps(t *testing.T, data []byte) []step {
	t.Helper()
	lines := strings.Split(string(data), "\n")
	var steps []step
	cur := &step{name: "apply"}
	start := 0
	flush := func(end int) {
		var b bytes.Buffer
		for i := range lines[:end] {
			if i >= start {
				b.WriteString(lines[i])
			}
			if i < end-1 {
				b.WriteByte('\n')
			}
		}
		cur.data = b.Bytes()
		steps = append(steps, *cur)
	}
	seen := false
	for i, l := range lines {
		if m := stepLine.FindStringSubmatch(l); m != nil {
			if seen {
				flush(i)
			}
			seen = true
			cur = &step{name: m[1]}
			start = i
			continue
		}
		if m := readyLine.FindStringSubmatch(l); m != nil {
			cur.ready = map[string]bool{}
			for _, k := range strings.Fields(m[1]) {
				if k != "none" {
					cur.ready[k] = true
				}
			}
		}
	}
	flush(len(lines))
	return steps
}

// goldenOut is what a case renders: every step's errors, then the final
// model and statuses.
type goldenOut struct {
	Steps          []goldenStep               `json:"steps"`
	Model          model.Config               `json:"model"`
	Services       map[string]goldenObject    `json:"services,omitempty"`
	Configurations map[string]goldenObject    `json:"configurations,omitempty"`
	Routes         map[string]goldenObject    `json:"routes,omitempty"`
	DomainMappings map[string]goldenObject    `json:"domainMappings,omitempty"`
	Revisions      map[string]*goldenRevision `json:"revisions,omitempty"`
}

type goldenStep struct {
	Step         string   `json:"step"`
	DecodeErrors []string `json:"decodeErrors,omitempty"`
	Problems     []string `json:"problems,omitempty"`
}

type goldenObject struct {
	Generation int64 `json:"generation,omitempty"`
	Status     any   `json:"status"`
}

type goldenRevision struct {
	Labels      map[string]string        `json:"labels,omitempty"`
	Annotations map[string]string        `json:"annotations,omitempty"`
	Created     string                   `json:"created"`
	Spec        servingv1.RevisionSpec   `json:"spec"`
	Status      servingv1.RevisionStatus `json:"status"`
}

// TestGolden runs every testdata/in case through a Reconciler and compares
// the result with testdata/out (go test ./watcher/knative -update rewrites them; the cases live in watcher/testdata).
func TestGolden(t *testing.T) {
	ins, err := filepath.Glob("../testdata/in/*.yaml")
	if err != nil || len(ins) == 0 {
		t.Fatalf("no cases in testdata/in: %v", err)
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			clock := &fakeClock{t: t0}
			r := NewReconciler(clock.now)
			var out goldenOut
			var res *Result
			for i, s := range readSteps(t, data) {
				clock.t = t0.Add(time.Duration(i) * time.Minute)
				objs, errs := manifest.Decode(filepath.Base(in), s.data)
				gs := goldenStep{Step: s.name}
				for _, e := range errs {
					gs.DecodeErrors = append(gs.DecodeErrors, e.Error())
				}
				res = r.Reconcile(Input{Objects: objs, Ready: s.ready})
				for _, p := range res.Problems {
					gs.Problems = append(gs.Problems, p.String())
				}
				out.Steps = append(out.Steps, gs)
			}
			out.fill(res)
			got, err := yaml.Marshal(out)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("..", "testdata", "out", name+".yaml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./watcher -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the reconciler's output; diff the files after go test ./watcher -update:\n%s", golden, lineDiff(string(want), string(got)))
			}
		})
	}
}

func (g *goldenOut) fill(res *Result) {
	g.Model = res.Model
	g.Services = map[string]goldenObject{}
	for _, s := range res.Services {
		g.Services[s.Namespace+"/"+s.Name] = goldenObject{Generation: s.Generation, Status: s.Status}
	}
	g.Configurations = map[string]goldenObject{}
	for _, c := range res.Configurations {
		g.Configurations[c.Namespace+"/"+c.Name] = goldenObject{Generation: c.Generation, Status: c.Status}
	}
	g.Routes = map[string]goldenObject{}
	for _, r := range res.Routes {
		g.Routes[r.Namespace+"/"+r.Name] = goldenObject{Generation: r.Generation, Status: r.Status}
	}
	for _, d := range res.DomainMappings {
		if g.DomainMappings == nil {
			g.DomainMappings = map[string]goldenObject{}
		}
		g.DomainMappings[d.Namespace+"/"+d.Name] = goldenObject{Generation: d.Generation, Status: d.Status}
	}
	g.Revisions = map[string]*goldenRevision{}
	for _, r := range res.Revisions {
		g.Revisions[r.Namespace+"/"+r.Name] = &goldenRevision{
			Labels: r.Labels, Annotations: r.Annotations, Spec: r.Spec, Status: r.Status,
			Created: r.CreationTimestamp.UTC().Format(time.RFC3339),
		}
	}
}

// lineDiff shows the first differing lines of two texts.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n- %s\n+ %s\n", i+1, wl, gl)
			if shown++; shown == 10 {
				break
			}
		}
	}
	return b.String()
}
