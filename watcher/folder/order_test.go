package folder

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kgate/kgate/api/manifest"
	"github.com/kgate/kgate/watcher/knative"
)

// decl is a declaration for arrange: "file:line Kind name" (namespace
// default unless the name is "ns/name").
func decl(s string) manifest.Object {
	var file, kind, name string
	var line int
	if _, err := fmt.Sscanf(strings.Replace(s, ":", " ", 1), "%s %d %s %s", &file, &line, &kind, &name); err != nil {
		panic(s + ": " + err.Error())
	}
	o := manifest.Object{File: file, Line: line, Kind: kind, Name: name}
	if ns, n, ok := strings.Cut(name, "/"); ok {
		o.Namespace, o.Name = ns, n
	}
	return o
}

func TestSeniorityArrange(t *testing.T) {
	// Each scan is the files' declarations, and the order arrange must
	// hand them out in.
	type scan struct{ files, want []string }
	for _, tc := range []struct {
		name  string
		scans []scan
	}{
		{name: "first scan: path order, owners' objects before the others", scans: []scan{{
			files: []string{"b.yaml:1 Service x", "b.yaml:5 Service y", "a.yaml:1 Service x"},
			want:  []string{"a.yaml:1 Service x", "b.yaml:5 Service y", "b.yaml:1 Service x"},
		}}},
		{name: "a newcomer sorting first does not take over, across rescans", scans: []scan{
			{files: []string{"good.yaml:1 Service good"}, want: []string{"good.yaml:1 Service good"}},
			{files: []string{"good.yaml:1 Service good", "a-new.yaml:1 Service good"},
				want: []string{"good.yaml:1 Service good", "a-new.yaml:1 Service good"}},
			{files: []string{"good.yaml:3 Service good", "a-new.yaml:7 Service good"},
				want: []string{"good.yaml:3 Service good", "a-new.yaml:7 Service good"}},
		}},
		{name: "the incumbent gone, the longest-declaring file owns", scans: []scan{
			{files: []string{"good.yaml:1 Service x", "z-old.yaml:1 Service x"},
				want: []string{"good.yaml:1 Service x", "z-old.yaml:1 Service x"}},
			{files: []string{"good.yaml:1 Service x", "z-old.yaml:1 Service x", "a-new.yaml:1 Service x"},
				want: []string{"good.yaml:1 Service x", "a-new.yaml:1 Service x", "z-old.yaml:1 Service x"}},
			{files: []string{"z-old.yaml:1 Service x", "a-new.yaml:1 Service x"},
				want: []string{"z-old.yaml:1 Service x", "a-new.yaml:1 Service x"}},
		}},
		{name: "the incumbent gone, path order among newcomers of one scan", scans: []scan{
			{files: []string{"m.yaml:1 Service x"}, want: []string{"m.yaml:1 Service x"}},
			{files: []string{"m.yaml:1 Service x", "z.yaml:1 Service x", "b.yaml:1 Service x"},
				want: []string{"m.yaml:1 Service x", "b.yaml:1 Service x", "z.yaml:1 Service x"}},
			{files: []string{"z.yaml:1 Service x", "b.yaml:1 Service x"},
				want: []string{"b.yaml:1 Service x", "z.yaml:1 Service x"}},
		}},
		{name: "a file that stopped declaring a key starts over", scans: []scan{
			{files: []string{"a.yaml:1 Service x", "b.yaml:1 Service x"},
				want: []string{"a.yaml:1 Service x", "b.yaml:1 Service x"}},
			{files: []string{"a.yaml:1 Service y", "b.yaml:1 Service x"},
				want: []string{"a.yaml:1 Service y", "b.yaml:1 Service x"}},
			{files: []string{"a.yaml:1 Service x", "b.yaml:1 Service x"},
				want: []string{"b.yaml:1 Service x", "a.yaml:1 Service x"}},
		}},
		{name: "one file declaring a key twice: its first document owns", scans: []scan{{
			files: []string{"a.yaml:1 Service x", "a.yaml:9 Service x", "a.yaml:5 Route x"},
			want:  []string{"a.yaml:1 Service x", "a.yaml:5 Route x", "a.yaml:9 Service x"},
		}}},
		{name: "kind and namespace tell keys apart; no namespace is default", scans: []scan{
			{files: []string{"b.yaml:1 Service x", "b.yaml:2 Service other/x", "b.yaml:3 Route x"},
				want: []string{"b.yaml:1 Service x", "b.yaml:2 Service other/x", "b.yaml:3 Route x"}},
			{files: []string{"a.yaml:1 Service default/x", "b.yaml:1 Service x", "b.yaml:2 Service other/x", "b.yaml:3 Route x"},
				want: []string{"b.yaml:1 Service x", "b.yaml:2 Service other/x", "b.yaml:3 Route x", "a.yaml:1 Service default/x"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s seniority
			for i, sc := range tc.scans {
				files := map[string][]manifest.Object{}
				for _, d := range sc.files {
					o := decl(d)
					files[o.File] = append(files[o.File], o)
				}
				// Documents in file order, as decode gives them.
				for _, objs := range files {
					slices.SortFunc(objs, func(a, b manifest.Object) int { return a.Line - b.Line })
				}
				var got []string
				for _, o := range s.arrange(files) {
					name := o.Name
					if o.Namespace != "" {
						name = o.Namespace + "/" + name
					}
					got = append(got, fmt.Sprintf("%s:%d %s %s", o.File, o.Line, o.Kind, name))
				}
				if !slices.Equal(got, sc.want) {
					t.Errorf("scan %d: order\n  %v\nwant\n  %v", i+1, got, sc.want)
				}
			}
		})
	}
}

// duplicate returns the "declared again" problem of Service name in file.
func duplicate(r *knative.Result, file, name string) *knative.Problem {
	for i, p := range r.Problems {
		if p.File == file && p.Kind == "Service" && p.Name == name && strings.Contains(p.Message, "declared again") {
			return &r.Problems[i]
		}
	}
	return nil
}

// declarer is the file whose declaration of Service name the folder hands
// out first.
func declarer(f *Folder, name string) string {
	for _, o := range f.Objects() {
		if o.Kind == "Service" && o.Name == name {
			return filepath.Base(o.File)
		}
	}
	return ""
}

func image(r *knative.Result, svc string) string {
	s := findService(r, svc)
	if s == nil || len(s.Spec.Template.Spec.Containers) == 0 {
		return ""
	}
	return s.Spec.Template.Spec.Containers[0].Image
}

func TestFolderDuplicateStaysWithIncumbent(t *testing.T) {
	h := startFolder(t, dirOnly, false, map[string]string{"good.yaml": service("good", "img:good")})
	newcomer := filepath.Join(h.dir, "a-new.yaml")

	// A new file sorting first declares the same Service: it is the one
	// reported, and nothing switches. Each round edits both files, with the
	// newcomer's document moved down a line so that its report shows the
	// rescan happened.
	for i := range 3 {
		if i > 0 {
			h.write("good.yaml", service("good", fmt.Sprintf("img:good%d", i)))
			h.await("the incumbent's edit to apply", serves("good", fmt.Sprintf("good-%05d", i+1)))
		}
		h.write("a-new.yaml", strings.Repeat("# moved down\n", i)+service("good", fmt.Sprintf("img:new%d", i)))
		r := h.await("the newcomer to be reported", func(r *knative.Result) bool {
			d := duplicate(r, newcomer, "good")
			return d != nil && d.Line == i+1
		})
		if d := duplicate(r, newcomer, "good"); !strings.Contains(d.Message, filepath.Join(h.dir, "good.yaml")) {
			t.Errorf("round %d: report %q does not name the incumbent's file", i, d.Message)
		}
		want := "img:good"
		if i > 0 {
			want = fmt.Sprintf("img:good%d", i)
		}
		if got := image(r, "good"); got != want {
			t.Errorf("round %d: good's image %q, want the incumbent's %q", i, got, want)
		}
		if !serves("good", fmt.Sprintf("good-%05d", i+1))(r) {
			t.Errorf("round %d: good routes %v, want good-%05d", i, routedRevisions(r, "good"), i+1)
		}
		if got := declarer(h.folder, "good"); got != "good.yaml" {
			t.Errorf("round %d: first declaration from %s, want good.yaml", i, got)
		}
	}

	// The incumbent's file removed: the newcomer owns the Service now.
	if err := os.Remove(filepath.Join(h.dir, "good.yaml")); err != nil {
		t.Fatal(err)
	}
	r := h.await("the newcomer to take over", func(r *knative.Result) bool { return image(r, "good") == "img:new2" })
	if d := duplicate(r, newcomer, "good"); d != nil {
		t.Errorf("after the incumbent's removal: still reported %+v", d)
	}
	if got := declarer(h.folder, "good"); got != "a-new.yaml" {
		t.Errorf("after the incumbent's removal: first declaration from %s, want a-new.yaml", got)
	}
	if !serves("good", "good-00004")(r) {
		t.Errorf("after the incumbent's removal: good routes %v, want the newcomer's good-00004", routedRevisions(r, "good"))
	}
}
