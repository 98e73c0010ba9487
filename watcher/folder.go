package watcher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/api/manifest"
	"github.com/kgate/kgate/translator"
)

// FolderOptions configure a Folder.
type FolderOptions struct {
	// Logger receives every problem found in the manifests; nil is slog.Default().
	Logger *slog.Logger
	// Now is the clock of the statuses; nil is time.Now.
	Now func() time.Time
	// Debounce is how long the folder must be quiet before it is reread
	// (editors write a file in several steps); 0 is 100 ms.
	Debounce time.Duration
	// OnChange is called, from Run's goroutine, with the result of every
	// reconciliation after the initial load whose input changed.
	OnChange func(*Result)
	// Base, when set, is the configuration of absent ConfigMaps (see
	// Reconciler.SetBase).
	Base *config.Config
	// Ready is the initial revision readiness (see Input.Ready): nil when no
	// deploy is attached; a deploy passes an empty map, then SetReady.
	Ready map[string]bool
}

// Folder is the local-mode source: a folder (or files) of manifests,
// watched with fsnotify. A file that fails to parse keeps the objects it
// last produced; an object whose new version is invalid keeps its last
// valid version (the Reconciler's doing); a removed file removes its objects.
type Folder struct {
	dirs  []string        // watched directories (non-recursive)
	files map[string]bool // explicitly named files
	opts  FolderOptions
	log   *slog.Logger
	fsw   *fsnotify.Watcher
	kick  chan struct{}

	mu      sync.Mutex
	rec     *Reconciler
	state   map[string]*fileState // path → what it last produced
	ready   map[string]bool
	failed  map[string]Failure
	current *Result
	logged  map[string]bool // problems logged, so each is logged once
}

// fileState is what a file last produced.
type fileState struct {
	data []byte
	objs []manifest.Object
}

// NewFolder watches paths (directories, read non-recursively for *.yaml,
// *.yml and *.json, and files) and loads them once, synchronously, so that
// Current can be served at once.
func NewFolder(paths []string, opts FolderOptions) (*Folder, error) {
	if len(paths) == 0 {
		return nil, errors.New("watching manifests: no folder or file given")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	f := &Folder{
		files: map[string]bool{}, opts: opts, log: opts.Logger,
		kick: make(chan struct{}, 1), rec: NewReconciler(opts.Now),
		state: map[string]*fileState{}, logged: map[string]bool{},
		ready: opts.Ready,
	}
	if opts.Base != nil {
		f.rec.SetBase(*opts.Base)
	}
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
	f.reconcile()
	return f, nil
}

// Current returns the latest result.
func (f *Folder) Current() *Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.current
}

// SetFailed replaces the revisions the deployer cannot run (see
// Input.Failed) and has Run reconcile again.
func (f *Folder) SetFailed(failed map[string]Failure) {
	f.mu.Lock()
	f.failed = failed
	f.mu.Unlock()
	f.wake()
}

// SetReady replaces the revision readiness (see Input.Ready) and has Run
// reconcile again.
func (f *Folder) SetReady(ready map[string]bool) {
	f.mu.Lock()
	f.ready = ready
	f.mu.Unlock()
	f.wake()
}

// wake has Run reconcile again.
func (f *Folder) wake() {
	select {
	case f.kick <- struct{}{}:
	default: // a reconciliation is already due
	}
}

// MarkConflicts reports the translator's host conflicts on res (see
// Reconciler.MarkConflicts) and logs each new one.
func (f *Folder) MarkConflicts(res *Result, conflicts []translator.Conflict) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rec.MarkConflicts(res, conflicts)
	now := map[string]bool{}
	for _, c := range conflicts {
		key := "conflict " + c.Service + " " + c.Host + " " + c.Owner
		now[key] = true
		if !f.logged[key] {
			f.logged[key] = true
			f.log.Warn("host already claimed by an earlier Service; this one does not serve it",
				"service", c.Service, "host", c.Host, "owner", c.Owner)
		}
	}
	for k := range f.logged {
		if strings.HasPrefix(k, "conflict ") && !now[k] {
			delete(f.logged, k)
		}
	}
}

// Close releases the watch of a Folder that will not Run (Run releases it
// when it returns).
func (f *Folder) Close() error { return f.fsw.Close() }

// Run watches until ctx ends, rereading the manifests after each burst of
// changes and calling OnChange. It closes the watch when it returns.
func (f *Folder) Run(ctx context.Context) error {
	defer f.fsw.Close()
	timer := time.NewTimer(0) // catch changes made since NewFolder
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
			changed := f.scan()
			var res *Result
			if changed {
				res = f.reconcile()
			}
			f.mu.Unlock()
			if res != nil && f.opts.OnChange != nil {
				f.opts.OnChange(res)
			}
		case <-f.kick:
			f.mu.Lock()
			res := f.reconcile()
			f.mu.Unlock()
			if f.opts.OnChange != nil {
				f.opts.OnChange(res)
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
	have := map[string]bool{}
	for _, o := range objs {
		have[objectKey(o.Kind, o.Namespace, o.Name)] = true
	}
	kept := 0
	for _, o := range prev.objs {
		if !have[objectKey(o.Kind, o.Namespace, o.Name)] {
			objs = append(objs, o)
			kept++
		}
	}
	if kept > 0 {
		f.log.Warn("keeping the objects the broken documents last produced", "file", path, "objects", kept)
	}
	return objs
}

// reconcile runs the Reconciler over every file's objects and logs the
// problems not logged before.
func (f *Folder) reconcile() *Result {
	paths := make([]string, 0, len(f.state))
	for p := range f.state {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var objs []manifest.Object
	for _, p := range paths {
		objs = append(objs, f.state[p].objs...)
	}
	res := f.rec.Reconcile(Input{Objects: objs, Ready: f.ready, Failed: f.failed})
	now := map[string]bool{}
	for _, p := range res.Problems {
		key := p.String()
		now[key] = true
		if !f.logged[key] {
			f.log.Warn(p.Message, "file", p.File, "line", p.Line,
				"object", p.Kind+" "+p.Namespace+"/"+p.Name, "field", p.Field)
		}
	}
	for k := range f.logged {
		if !now[k] && !strings.HasPrefix(k, "conflict ") {
			delete(f.logged, k)
		}
	}
	for k := range now {
		f.logged[k] = true
	}
	f.current = res
	f.log.Info("manifests loaded", "services", len(res.Services), "routes", len(res.Routes),
		"revisions", len(res.Revisions), "problems", len(res.Problems))
	return res
}
