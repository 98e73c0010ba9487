package folder

import (
	"maps"
	"slices"

	"github.com/kgate/kgate/api/manifest"
	"github.com/kgate/kgate/watcher"
)

// seniority remembers, for each object key, since which scan each file has
// declared it. The pipeline keeps the first of two declarations of one
// object and reports the other; ordering by path alone would let a new
// file that sorts earlier (a-new.yaml beside good.yaml) take over an
// object that is serving, so the incumbent is put first instead.
type seniority struct {
	scan  uint64
	since map[watcher.ObjectKey]map[string]uint64 // key → file → first scan declaring it
}

// arrange returns the objects of files (path → objects in file order) in
// the order the pipeline reads them, and counts as one scan. First, for
// each key, one declaration of its owner: the file that has declared the
// key longest, path order deciding between files that began in the same
// scan (at the first scan, path order alone), and within the owner its
// first document declaring the key. Then every other declaration. Both
// parts keep files by path and documents in file order, so the order is
// stable while nothing changes.
func (s *seniority) arrange(files map[string][]manifest.Object) []manifest.Object {
	s.scan++
	paths := slices.Sorted(maps.Keys(files))
	since := map[watcher.ObjectKey]map[string]uint64{}
	for _, p := range paths {
		for _, o := range files[p] {
			k := watcher.KeyOf(o)
			if since[k] == nil {
				since[k] = map[string]uint64{}
			}
			if _, ok := since[k][p]; ok {
				continue
			}
			if began, ok := s.since[k][p]; ok {
				since[k][p] = began
			} else {
				since[k][p] = s.scan
			}
		}
	}
	// Files that stopped declaring a key are forgotten: declaring it again
	// later starts over.
	s.since = since

	owner := make(map[watcher.ObjectKey]string, len(since))
	for k, by := range since {
		best := ""
		for p, began := range by {
			if best == "" || began < by[best] || (began == by[best] && p < best) {
				best = p
			}
		}
		owner[k] = best
	}

	var lead, rest []manifest.Object
	placed := make(map[watcher.ObjectKey]bool, len(owner))
	for _, p := range paths {
		for _, o := range files[p] {
			k := watcher.KeyOf(o)
			if owner[k] == p && !placed[k] {
				placed[k] = true
				lead = append(lead, o)
			} else {
				rest = append(rest, o)
			}
		}
	}
	return append(lead, rest...)
}
