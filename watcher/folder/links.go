package folder

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxLinks is how many symlinks one resolution follows before it gives up,
// as Linux does (MAXSYMLINKS), so a loop of links ends.
const maxLinks = 40

// chain is what resolving a path met. Every path in it is real (no
// symlink among its directories), because fsnotify names what happens in
// a watched directory by the path the directory was watched under, and
// the folder watches real directories.
type chain struct {
	// real is the path the links lead to; "" when the walk stopped early.
	real string
	// links are the symlinks followed on the way, in order: a manifest
	// changes when any of them is replaced (a ConfigMap's ..data swap).
	links []string
	// missing is the entry whose absence stopped the walk (a dangling
	// link's target); its creation makes the path resolve.
	missing string
}

// resolve follows path's symlinks one component at a time, as the kernel
// does, recording every link on the way; filepath.EvalSymlinks gives only
// the end, and a ConfigMap volume's manifests change by a link in the
// middle (dir/foo.yaml -> ..data/foo.yaml, ..data -> ..2026_...).
func resolve(path string) (chain, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return chain{}, fmt.Errorf("resolving %s: %w", path, err)
	}
	vol := filepath.VolumeName(abs)
	return walk(path, vol+string(filepath.Separator), components(abs[len(vol):]))
}

// resolveIn resolves the entry name of dir, a real directory (one that
// resolve returned), without walking dir's own path again.
func resolveIn(dir, name string) (chain, error) {
	return walk(filepath.Join(dir, name), dir, []string{name})
}

// walk resolves the names todo from cur, a real directory; path is what
// is being resolved, for errors.
func walk(path, cur string, todo []string) (chain, error) {
	var c chain
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case ".":
			continue
		case "..":
			// cur is real, so its parent is the kernel's "..", which a
			// lexical Clean of the unresolved path would not be.
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, name)
		info, err := os.Lstat(next)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				c.missing = next
			}
			return c, fmt.Errorf("resolving %s: %w", path, err)
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if len(c.links) == maxLinks {
			return c, fmt.Errorf("resolving %s: more than %d symbolic links", path, maxLinks)
		}
		c.links = append(c.links, next)
		target, err := os.Readlink(next)
		if err != nil {
			return c, fmt.Errorf("resolving %s: %w", path, err)
		}
		if vol := filepath.VolumeName(target); filepath.IsAbs(target) {
			cur = vol + string(filepath.Separator)
			target = target[len(vol):]
		}
		todo = append(components(target), todo...)
	}
	c.real = cur
	return c, nil
}

// components splits a path into its names, dropping empty ones (the root,
// repeated separators).
func components(path string) []string {
	var out []string
	for _, name := range strings.Split(path, string(filepath.Separator)) {
		if name != "" {
			out = append(out, name)
		}
	}
	return out
}
