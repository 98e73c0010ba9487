package folder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/kgate/kgate/api/manifest"
	"github.com/kgate/kgate/watcher"
)

// Options configure a Folder.
type Options struct {
	// Logger receives every problem found in reading the manifests; nil is
	// slog.Default().
	Logger *slog.Logger
	// Debounce is how long the folder must be quiet before it is reread
	// (editors write a file in several steps); 0 is 100 ms.
	Debounce time.Duration
	// Sink receives, from Run's goroutine, every declared object after
	// each reread that changed something (the pipeline).
	Sink Sink
}

// Sink takes the changes of a source: a watcher.Pipeline.
type Sink interface {
	Submit(watcher.Change)
}

// Folder is the local-mode source: a folder (or files) of manifests,
// watched with fsnotify. A file that fails to parse keeps the objects it
// last produced; a removed file removes its objects. What an object's
// invalid new version keeps serving is the pipeline's business.
type Folder struct {
	dirs  []string        // watched directories (non-recursive)
	files map[string]bool // explicitly named files
	opts  Options
	log   *slog.Logger
	fsw   *fsnotify.Watcher

	mu    sync.Mutex
	state map[string]*fileState // path → what it last produced
	// order hands the objects out with each key's incumbent file first.
	order   seniority
	objs    []manifest.Object // every object, in order's order
	scanned bool              // whether objs was arranged once
}

// fileState is what a file last produced.
type fileState struct {
	data []byte
	objs []manifest.Object
}

// New watches paths (directories, read non-recursively for *.yaml, *.yml
// and *.json, and files) and loads them once, synchronously, so that
// Objects can be applied at once.
func New(paths []string, opts Options) (*Folder, error) {
	if len(paths) == 0 {
		return nil, errors.New("watching manifests: no folder or file given")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	f := &Folder{files: map[string]bool{}, opts: opts, log: opts.Logger, state: map[string]*fileState{}}
	watch := map[string]bool{}
	for _, p := range paths {
		p = filepath.Clean(p)
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("watching manifests: %w", err)
		}
		if st.IsDir() {
			f.dirs = append(f.dirs, p)
			watch[p] = true
		} else {
			f.files[p] = true
			// The parent is watched, not the file: editors replace files by
			// renaming, which ends a watch on the file itself.
			watch[filepath.Dir(p)] = true
		}
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watching manifests: %w", err)
	}
	for d := range watch {
		if err := fsw.Add(d); err != nil {
			fsw.Close()
			return nil, fmt.Errorf("watching manifests in %s: %w", d, err)
		}
	}
	f.fsw = fsw
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scan()
	return f, nil
}

// Objects returns every declared object, in a stable order: for each
// object, the declaration of the file that has declared it longest first
// (at the first scan, the first by path), then the other declarations of
// it, which the pipeline reports as declared again; otherwise files by
// path, documents in file order.
func (f *Folder) Objects() []manifest.Object {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.objects()
}

// Close releases the watch of a Folder that will not Run (Run releases it
// when it returns).
func (f *Folder) Close() error { return f.fsw.Close() }

// Run watches until ctx ends, rereading the manifests after each burst of
// changes and handing every object to the Sink. It closes the watch when
// it returns.
func (f *Folder) Run(ctx context.Context) error {
	defer f.fsw.Close()
	timer := time.NewTimer(0) // catch changes made since New
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-f.fsw.Events:
			if !ok {
				return errors.New("watching manifests: watch closed")
			}
			if f.relevant(ev) {
				timer.Reset(f.opts.Debounce)
			}
		case err, ok := <-f.fsw.Errors:
			if !ok {
				return errors.New("watching manifests: watch closed")
			}
			// Overflow loses events: reread everything to be sure.
			f.log.Error("watching manifests", "error", err)
			timer.Reset(f.opts.Debounce)
		case <-timer.C:
			f.mu.Lock()
			var objs []manifest.Object
			changed := f.scan()
			if changed {
				objs = f.objects()
			}
			f.mu.Unlock()
			if changed && f.opts.Sink != nil {
				f.opts.Sink.Submit(watcher.Change{Objects: objs, Replace: true})
			}
		}
	}
}

// relevant reports whether an event may change what the folder holds.
func (f *Folder) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	name := filepath.Clean(ev.Name)
	if f.files[name] {
		return true
	}
	for _, d := range f.dirs {
		if name == d || (filepath.Dir(name) == d && manifestName(filepath.Base(name))) {
			return true
		}
	}
	return false
}

// manifestName reports whether a directory entry is read: *.yaml, *.yml or
// *.json, not hidden (editors' lock and swap files are).
func manifestName(base string) bool {
	if strings.HasPrefix(base, ".") {
		return false
	}
	switch strings.ToLower(filepath.Ext(base)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// list returns the manifest files present now, sorted. A directory that
// cannot be read keeps the files it had (reported, not forgotten).
func (f *Folder) list() []string {
	set := map[string]bool{}
	for p := range f.files {
		if _, err := os.Stat(p); err == nil {
			set[p] = true
		}
	}
	for _, d := range f.dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			f.log.Error("reading manifest folder; keeping its objects", "dir", d, "error", err)
			for p := range f.state {
				if filepath.Dir(p) == d {
					set[p] = true
				}
			}
			continue
		}
		for _, e := range entries {
			p := filepath.Join(d, e.Name())
			if !manifestName(e.Name()) {
				continue
			}
			if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
				continue // a dangling link or a directory
			}
			set[p] = true
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// scan rereads the files and reports whether any changed.
func (f *Folder) scan() bool {
	changed := false
	present := map[string]bool{}
	for _, p := range f.list() {
		present[p] = true
		prev := f.state[p]
		data, err := os.ReadFile(p)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) || prev != nil {
				f.log.Error("reading manifest; keeping the objects it last produced", "file", p, "error", err)
			}
			continue
		}
		if prev != nil && bytes.Equal(prev.data, data) {
			continue
		}
		if prev != nil && len(bytes.TrimSpace(data)) == 0 {
			// Most likely caught between an editor's truncate and write;
			// forgetting the objects would also forget their revisions.
			f.log.Warn("manifest is empty; keeping the objects it last produced until it is deleted or filled", "file", p)
			continue
		}
		changed = true
		f.state[p] = &fileState{data: data, objs: f.decode(p, data, prev)}
	}
	for p := range f.state {
		if !present[p] {
			delete(f.state, p)
			changed = true
			f.log.Info("manifest removed; its objects are deleted", "file", p)
		}
	}
	if changed || !f.scanned {
		f.scanned = true
		files := make(map[string][]manifest.Object, len(f.state))
		for p, st := range f.state {
			files[p] = st.objs
		}
		f.objs = f.order.arrange(files)
	}
	return changed
}

// decode parses a file, logging every error and warning. When some
// documents fail, the objects they last produced (those of the previous
// version not decoded now) are kept.
func (f *Folder) decode(path string, data []byte, prev *fileState) []manifest.Object {
	objs, errs := manifest.Decode(path, data)
	for _, o := range objs {
		for _, w := range o.Warnings {
			f.log.Warn(w, "file", o.File, "line", o.Line, "object", o.Kind+" "+o.Namespace+"/"+o.Name)
		}
	}
	if len(errs) == 0 {
		return objs
	}
	for _, err := range errs {
		var me *manifest.Error
		if errors.As(err, &me) {
			f.log.Error("manifest does not parse: "+me.Message, "file", me.File, "line", me.Line)
		} else {
			f.log.Error("manifest does not parse", "file", path, "error", err)
		}
	}
	if prev == nil {
		return objs
	}
	have := map[watcher.ObjectKey]bool{}
	for _, o := range objs {
		have[watcher.KeyOf(o)] = true
	}
	kept := 0
	for _, o := range prev.objs {
		if !have[watcher.KeyOf(o)] {
			objs = append(objs, o)
			kept++
		}
	}
	if kept > 0 {
		f.log.Warn("keeping the objects the broken documents last produced", "file", path, "objects", kept)
	}
	return objs
}

// objects returns every object in the order the last scan arranged.
func (f *Folder) objects() []manifest.Object {
	f.log.Info("manifests loaded", "files", len(f.state), "objects", len(f.objs))
	return slices.Clone(f.objs)
}
