package folder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
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
//
// Manifests may be symlinks, to files anywhere: they are read through the
// links and the directories of every link and target on the way are
// watched, following the links as they change. That includes a mounted
// Kubernetes ConfigMap, whose visible files link through ..data, a link
// to a timestamped hidden folder that the kubelet swaps by rename.
type Folder struct {
	dirs  []string        // named directories, as given (read non-recursively)
	files map[string]bool // explicitly named files, as given
	opts  Options
	log   *slog.Logger
	fsw   *fsnotify.Watcher

	mu    sync.Mutex
	state map[string]*fileState // path → what it last produced
	// order hands the objects out with each key's incumbent file first.
	order   seniority
	objs    []manifest.Object // every object, in order's order
	scanned bool              // whether objs was arranged once
	// What the last scan found worth watching (see listing).
	paths, realDirs map[string]bool
	// reported are the subfolders already said not to be read.
	reported map[string]bool
}

// fileState is what a file last produced.
type fileState struct {
	data []byte
	objs []manifest.Object
}

// New watches paths (directories, read non-recursively for *.yaml, *.yml
// and *.json, as kubectl apply -f DIR without -R, and files; either may be
// a symlink) and loads them once, synchronously, so that Objects can be
// applied at once.
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
	f := &Folder{files: map[string]bool{}, opts: opts, log: opts.Logger, state: map[string]*fileState{}, reported: map[string]bool{}}
	for _, p := range paths {
		p = filepath.Clean(p)
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("watching manifests: %w", err)
		}
		if st.IsDir() {
			f.dirs = append(f.dirs, p)
		} else {
			f.files[p] = true
		}
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watching manifests: %w", err)
	}
	f.fsw = fsw
	f.mu.Lock()
	defer f.mu.Unlock()
	// What cannot be watched now is an error here; later, only a log line.
	if _, err := f.scan(); err != nil {
		fsw.Close()
		return nil, err
	}
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
			changed, err := f.scan()
			if err != nil {
				f.log.Error("watching manifests; their changes may go unseen until another change", "error", err)
			}
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

// relevant reports whether an event may change what the folder holds:
// it names a manifest, a link or a target on the way to one, or the entry
// of a named folder that a manifest or a new subfolder would be.
func (f *Folder) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	name := filepath.Clean(ev.Name)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.paths[name] || f.realDirs[name] {
		return true
	}
	if !f.realDirs[filepath.Dir(name)] {
		return false
	}
	base := filepath.Base(name)
	if manifestName(base) {
		return true
	}
	if ev.Has(fsnotify.Create) && !hidden(base) {
		// A new subfolder is said not to be read when first seen.
		st, err := os.Stat(name)
		return err == nil && st.IsDir()
	}
	return false
}

// manifestName reports whether a directory entry is read: *.yaml, *.yml or
// *.json, not hidden (editors' lock and swap files are, and so are a
// ConfigMap volume's ..data and timestamped folders, whose files are read
// once, by their visible names).
func manifestName(base string) bool {
	if hidden(base) {
		return false
	}
	switch strings.ToLower(filepath.Ext(base)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// hidden reports whether a directory entry's name hides it.
func hidden(base string) bool { return strings.HasPrefix(base, ".") }

// listing is what one look at the named paths found: the manifest files
// to read, and what to watch to see them change.
type listing struct {
	files []entry
	// watch are the real directories to watch: the named folders, and
	// those holding the links on the way to every manifest and the
	// manifests themselves.
	watch map[string]bool
	// paths are the real paths whose change may change a manifest: the
	// manifests' links, their targets, and the missing entries dangling
	// links wait for.
	paths map[string]bool
	// realDirs are the named folders' real paths: a manifest-named entry
	// appearing in one is a manifest.
	realDirs map[string]bool
}

// entry is a manifest to read: its path as listed (what objects and logs
// name) and the real file it leads to.
type entry struct {
	path, real string
	link       bool // whether path itself is a symlink
}

// follow adds what resolving a path met to what is watched; dir says the
// path is a named folder rather than a file.
func (l *listing) follow(c chain, dir bool) {
	for _, link := range c.links {
		l.paths[link] = true
		l.watch[filepath.Dir(link)] = true
	}
	if c.missing != "" {
		l.paths[c.missing] = true
		l.watch[filepath.Dir(c.missing)] = true
	}
	switch {
	case c.real == "":
	case dir:
		l.realDirs[c.real] = true
		l.watch[c.real] = true
	default:
		l.paths[c.real] = true
		l.watch[filepath.Dir(c.real)] = true
	}
}

// list finds the manifest files present now, sorted by path, each real
// file once (by its own name when that is listed, else by its first
// path): a file named explicitly and found in a named folder, or linked
// to twice, is one file. A directory that cannot be read keeps the files
// it had (reported, not forgotten). Subfolders are not read, as kubectl
// apply -f DIR without -R does not; each is reported once.
func (f *Folder) list() listing {
	l := listing{watch: map[string]bool{}, paths: map[string]bool{}, realDirs: map[string]bool{}}
	var found []entry
	file := func(p string, link bool, c chain, err error) {
		l.follow(c, false)
		if err != nil {
			return // a dangling link: nothing to read until it resolves
		}
		if st, err := os.Stat(c.real); err == nil && st.Mode().IsRegular() {
			found = append(found, entry{path: p, real: c.real, link: link})
		}
	}
	for p := range f.files {
		c, err := resolve(p)
		st, lerr := os.Lstat(p)
		file(p, lerr == nil && st.Mode()&fs.ModeSymlink != 0, c, err)
	}
	for _, d := range f.dirs {
		// A named folder removed is watched for from where it was.
		c, _ := resolve(d)
		l.follow(c, true)
		entries, err := os.ReadDir(d)
		if err != nil {
			f.log.Error("reading manifest folder; keeping its objects", "dir", d, "error", err)
			for p := range f.state {
				if filepath.Dir(p) == d {
					found = append(found, entry{path: p, real: p})
				}
			}
			continue
		}
		for _, e := range entries {
			name := e.Name()
			if hidden(name) {
				continue
			}
			p := filepath.Join(d, name)
			if manifestName(name) && c.real != "" {
				// d/name resolves as name in d's real path does.
				rc, err := resolveIn(c.real, name)
				file(p, e.Type()&fs.ModeSymlink != 0, rc, err)
			}
			if e.IsDir() || e.Type()&fs.ModeSymlink != 0 {
				f.subfolder(p)
			}
		}
	}
	// A file's own name first, so that a link to it does not rename its
	// objects; then by path.
	slices.SortFunc(found, func(a, b entry) int {
		if own := cmpBool(!a.link, !b.link); own != 0 {
			return own
		}
		return strings.Compare(a.path, b.path)
	})
	seen := map[string]bool{}
	for _, e := range found {
		if !seen[e.real] {
			seen[e.real] = true
			l.files = append(l.files, e)
		}
	}
	slices.SortFunc(l.files, func(a, b entry) int { return strings.Compare(a.path, b.path) })
	return l
}

// cmpBool orders true before false.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	}
	return 1
}

// subfolder reports, the first time it is seen, that p is not read if it
// is a folder (or a link to one).
func (f *Folder) subfolder(p string) {
	if f.reported[p] {
		return
	}
	if st, err := os.Stat(p); err != nil || !st.IsDir() {
		return
	}
	f.reported[p] = true
	f.log.Warn("subfolder not read: as with kubectl apply -f DIR without -R, only the folder's own files are applied", "dir", p)
}

// refresh lists the manifests and makes the watch cover exactly what they
// need, listing again when it watched something new: a link may have
// changed before its new directory was watched. It returns the last
// listing and what could not be watched.
func (f *Folder) refresh() (listing, error) {
	var l listing
	var err error
	for range 3 {
		l = f.list()
		var added bool
		if added, err = f.rewatch(l.watch); !added {
			break
		}
	}
	f.paths, f.realDirs = l.paths, l.realDirs
	return l, err
}

// rewatch makes the watch cover exactly dirs, and reports whether it
// added any. A directory gone meanwhile is not an error: its removal is
// itself an event that brings a new listing.
func (f *Folder) rewatch(dirs map[string]bool) (bool, error) {
	have := map[string]bool{}
	for _, d := range f.fsw.WatchList() {
		have[d] = true
	}
	added := false
	var errs []error
	for _, d := range slices.Sorted(maps.Keys(dirs)) {
		if have[d] {
			continue
		}
		if err := f.fsw.Add(d); err != nil {
			if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
				errs = append(errs, fmt.Errorf("watching manifests in %s: %w", d, err))
			}
			continue
		}
		added = true
	}
	for d := range have {
		if !dirs[d] {
			// Already gone with its directory, or no longer needed: either
			// way nothing more to do about it.
			_ = f.fsw.Remove(d)
		}
	}
	return added, errors.Join(errs...)
}

// scan rereads the files and reports whether any changed, and what could
// not be watched.
func (f *Folder) scan() (bool, error) {
	l, watchErr := f.refresh()
	changed := false
	present := map[string]bool{}
	for _, e := range l.files {
		p := e.path
		present[p] = true
		prev := f.state[p]
		data, err := os.ReadFile(e.real)
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
	return changed, watchErr
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
