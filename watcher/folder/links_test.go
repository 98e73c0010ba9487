package folder

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/watcher/knative"
)

// realTempDir is a temp dir by its real path (on some systems the temp
// folder itself is reached through a link).
func realTempDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// relink points link at target atomically, by renaming a new link over it.
func relink(t *testing.T, target, link string) {
	t.Helper()
	tmp := link + ".tmp"
	symlink(t, target, tmp)
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
}

// atomicWrite updates dir as the kubelet's AtomicWriter updates a ConfigMap
// volume: the files go to a new timestamped hidden folder, a new ..data
// link to it is renamed over the old one, visible links (name ->
// ..data/name) are made for new files and removed for gone ones, and the
// old folder is removed.
func atomicWrite(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	old, err := os.Readlink(filepath.Join(dir, "..data"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	ts, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		writeFile(t, filepath.Join(ts, name), text)
	}
	symlink(t, filepath.Base(ts), filepath.Join(dir, "..data_tmp"))
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		if _, err := os.Lstat(filepath.Join(dir, name)); os.IsNotExist(err) {
			symlink(t, filepath.Join("..data", name), filepath.Join(dir, name))
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, keep := files[e.Name()]; !keep && !strings.HasPrefix(e.Name(), ".") {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			t.Fatal(err)
		}
	}
}

// awaitWatching waits (at most 3 s) until the folder watches exactly dirs.
func (h *folderHarness) awaitWatching(dirs ...string) {
	h.t.Helper()
	slices.Sort(dirs)
	var got []string
	testrun.Poll{Within: 3 * time.Second, Every: 10 * time.Millisecond}.Until(h.t, "watching "+strings.Join(dirs, ", "), func() bool {
		got = h.folder.fsw.WatchList()
		slices.Sort(got)
		return slices.Equal(got, dirs)
	})
}

func TestResolve(t *testing.T) {
	base := realTempDir(t)
	at := func(p string) string { return filepath.Join(base, p) }
	writeFile(t, at("plain.yaml"), "")
	writeFile(t, at("elsewhere/target.yaml"), "")
	symlink(t, at("elsewhere/target.yaml"), at("abs.yaml"))
	if err := os.Mkdir(at("dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	symlink(t, "../elsewhere/target.yaml", at("dir/rel.yaml"))
	writeFile(t, at("cm/..2026_12_04_21_00_00.123/foo.yaml"), "")
	symlink(t, "..2026_12_04_21_00_00.123", at("cm/..data"))
	symlink(t, "..data/foo.yaml", at("cm/foo.yaml"))
	symlink(t, "elsewhere", at("linkdir"))
	symlink(t, "nowhere/x.yaml", at("dangling.yaml"))
	symlink(t, "loop-b", at("loop-a"))
	symlink(t, "loop-a", at("loop-b"))

	for _, tc := range []struct {
		name, path string
		want       chain
		err        string
	}{
		{name: "plain file", path: at("plain.yaml"), want: chain{real: at("plain.yaml")}},
		{name: "absolute link", path: at("abs.yaml"),
			want: chain{real: at("elsewhere/target.yaml"), links: []string{at("abs.yaml")}}},
		{name: "relative link with ..", path: at("dir/rel.yaml"),
			want: chain{real: at("elsewhere/target.yaml"), links: []string{at("dir/rel.yaml")}}},
		{name: "ConfigMap volume: through ..data", path: at("cm/foo.yaml"),
			want: chain{real: at("cm/..2026_12_04_21_00_00.123/foo.yaml"), links: []string{at("cm/foo.yaml"), at("cm/..data")}}},
		{name: "linked folder", path: at("linkdir/target.yaml"),
			want: chain{real: at("elsewhere/target.yaml"), links: []string{at("linkdir")}}},
		{name: "dangling link", path: at("dangling.yaml"), err: "no such file",
			want: chain{links: []string{at("dangling.yaml")}, missing: at("nowhere")}},
		{name: "missing file", path: at("gone.yaml"), err: "no such file", want: chain{missing: at("gone.yaml")}},
		{name: "loop", path: at("loop-a"), err: "more than 40 symbolic links"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolve(tc.path)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("resolve(%s) error = %v, want %q", tc.path, err, tc.err)
			}
			if tc.name == "loop" {
				return // its links are the loop, 40 times
			}
			if got.real != tc.want.real || got.missing != tc.want.missing || !slices.Equal(got.links, tc.want.links) {
				t.Errorf("resolve(%s) = %+v, want %+v", tc.path, got, tc.want)
			}
		})
	}

	// Resolving inside a real folder meets the same links from there on.
	got, err := resolveIn(at("cm"), "foo.yaml")
	if err != nil || got.real != at("cm/..2026_12_04_21_00_00.123/foo.yaml") || !slices.Equal(got.links, []string{at("cm/foo.yaml"), at("cm/..data")}) {
		t.Errorf("resolveIn(cm, foo.yaml) = %+v, %v", got, err)
	}
}

func TestFolderSymlinkedManifest(t *testing.T) {
	h := newHarness(t)
	elsewhere, other, later := realTempDir(t), realTempDir(t), realTempDir(t)
	writeFile(t, filepath.Join(elsewhere, "hello.yaml"), service("hello", "img:1"))
	symlink(t, filepath.Join(elsewhere, "hello.yaml"), filepath.Join(h.dir, "hello.yaml"))
	h.start(dirOnly(h.dir), false)

	// Read through the link, under the link's name.
	if got := routedRevisions(h.pipe.Current(), "hello"); len(got) != 1 || got[0] != "default/hello-00001" {
		t.Fatalf("initial load routes %v, want [default/hello-00001]", got)
	}
	if objs := h.folder.Objects(); len(objs) != 1 || objs[0].File != filepath.Join(h.dir, "hello.yaml") {
		t.Fatalf("objects %+v, want one, from the link's name", objs)
	}

	// The target edited in place, then replaced by rename as editors save.
	writeFile(t, filepath.Join(elsewhere, "hello.yaml"), service("hello", "img:2"))
	h.await("the target's edit to apply", serves("hello", "hello-00002"))
	writeFile(t, filepath.Join(elsewhere, "hello.yaml.swp"), service("hello", "img:3"))
	if err := os.Rename(filepath.Join(elsewhere, "hello.yaml.swp"), filepath.Join(elsewhere, "hello.yaml")); err != nil {
		t.Fatal(err)
	}
	h.await("the target's rename-on-save to apply", serves("hello", "hello-00003"))

	// The link pointed elsewhere: the watch follows it to the new target's
	// folder and leaves the old one.
	writeFile(t, filepath.Join(other, "hello.yaml"), service("hello", "img:4"))
	relink(t, filepath.Join(other, "hello.yaml"), filepath.Join(h.dir, "hello.yaml"))
	h.await("the new target to apply", serves("hello", "hello-00004"))
	h.awaitWatching(h.dir, other)
	writeFile(t, filepath.Join(other, "hello.yaml"), service("hello", "img:5"))
	h.await("the new target's edit to apply", serves("hello", "hello-00005"))

	// A dangling link applies once its target appears.
	symlink(t, filepath.Join(later, "sub", "late.yaml"), filepath.Join(h.dir, "late.yaml"))
	h.awaitWatching(h.dir, other, later)
	writeFile(t, filepath.Join(later, "sub", "late.yaml"), service("late", "img"))
	h.await("the dangling link's target to apply", serves("late", "late-00001"))
}

func TestFolderNamedPathIsSymlink(t *testing.T) {
	for _, tc := range []struct {
		name string
		// link makes the named path, a link to (something in) real.
		link func(t *testing.T, dir, real string) string
	}{
		{name: "file", link: func(t *testing.T, dir, real string) string {
			symlink(t, filepath.Join(real, "hello.yaml"), filepath.Join(dir, "hello-link.yaml"))
			return filepath.Join(dir, "hello-link.yaml")
		}},
		{name: "folder", link: func(t *testing.T, dir, real string) string {
			symlink(t, real, filepath.Join(dir, "manifests"))
			return filepath.Join(dir, "manifests")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			real, next := realTempDir(t), realTempDir(t)
			writeFile(t, filepath.Join(real, "hello.yaml"), service("hello", "img:1"))
			named := tc.link(t, h.dir, real)
			h.start([]string{named}, false)
			if got := routedRevisions(h.pipe.Current(), "hello"); len(got) != 1 || got[0] != "default/hello-00001" {
				t.Fatalf("initial load routes %v, want [default/hello-00001]", got)
			}

			writeFile(t, filepath.Join(real, "hello.yaml"), service("hello", "img:2"))
			h.await("the target's edit to apply", serves("hello", "hello-00002"))

			// The named link pointed elsewhere is followed there.
			target := next
			if tc.name == "file" {
				target = filepath.Join(next, "hello.yaml")
			}
			writeFile(t, filepath.Join(next, "hello.yaml"), service("hello", "img:3"))
			relink(t, target, named)
			h.await("the link's new target to apply", serves("hello", "hello-00003"))
			h.awaitWatching(h.dir, next)
			writeFile(t, filepath.Join(next, "hello.yaml"), service("hello", "img:4"))
			h.await("the new target's edit to apply", serves("hello", "hello-00004"))
		})
	}
}

func TestFolderConfigMapVolume(t *testing.T) {
	h := newHarness(t)
	atomicWrite(t, h.dir, map[string]string{"hello.yaml": service("hello", "img:1")})
	h.start(dirOnly(h.dir), false)

	// The file is read once, by its visible name, not through ..data or
	// the timestamped folder.
	if objs := h.folder.Objects(); len(objs) != 1 || objs[0].File != filepath.Join(h.dir, "hello.yaml") {
		t.Fatalf("objects %+v, want one, from hello.yaml", objs)
	}

	// Each update is a new folder and a ..data swap; each applies, and the
	// watch moves to the new folder.
	for i, img := range []string{"img:2", "img:3", "img:4"} {
		atomicWrite(t, h.dir, map[string]string{"hello.yaml": service("hello", img)})
		rev := "hello-0000" + string(rune('2'+i))
		r := h.await(rev+" to serve after the swap", serves("hello", rev))
		if len(r.Problems) != 0 {
			t.Errorf("after swap %d: problems %v, want none (nothing declared twice)", i+1, r.Problems)
		}
		if objs := h.folder.Objects(); len(objs) != 1 {
			t.Errorf("after swap %d: %d objects, want 1", i+1, len(objs))
		}
		data, err := os.Readlink(filepath.Join(h.dir, "..data"))
		if err != nil {
			t.Fatal(err)
		}
		h.awaitWatching(h.dir, filepath.Join(h.dir, data))
	}

	// A key added, then the first removed, as the ConfigMap changes.
	atomicWrite(t, h.dir, map[string]string{"hello.yaml": service("hello", "img:4"), "bye.yaml": service("bye", "img")})
	h.await("the added key to apply", serves("bye", "bye-00001"))
	atomicWrite(t, h.dir, map[string]string{"bye.yaml": service("bye", "img")})
	h.await("the removed key's objects to go", func(r *knative.Result) bool { return findService(r, "hello") == nil })
	if objs := h.folder.Objects(); len(objs) != 1 || objs[0].File != filepath.Join(h.dir, "bye.yaml") {
		t.Errorf("objects %+v, want one, from bye.yaml", objs)
	}
}
