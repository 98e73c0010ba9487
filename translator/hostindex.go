package translator

import (
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kgate/kgate/translator/model"
)

// HostIndex tracks which Service owns each host: for each host the earliest
// (Created, then key) claimant owns it; a Service that does not own all of
// its hosts is in conflict and serves nothing (it is not translated). A
// Service in conflict still claims its hosts: ownership of a host depends on
// its claimants only, so one change never cascades through unrelated hosts.
//
// It is not safe for concurrent use.
type HostIndex struct {
	services  map[string]claim   // by key
	claimants map[string][]claim // by host, ordered: owner first
	conflicts map[string]Conflict
}

type claim struct {
	key     string
	created time.Time
	hosts   []string // sorted, unique
}

func (c claim) before(d claim) bool {
	if !c.created.Equal(d.created) {
		return c.created.Before(d.created)
	}
	return c.key < d.key
}

// NewHostIndex returns an empty index.
func NewHostIndex() *HostIndex {
	return &HostIndex{
		services:  map[string]claim{},
		claimants: map[string][]claim{},
		conflicts: map[string]Conflict{},
	}
}

// Set adds or replaces a Service. It returns the keys, sorted, whose
// Conflict changed (into or out of conflict, or to another host or owner),
// possibly including svc's own.
func (x *HostIndex) Set(svc model.Service) (changed []string) {
	key := svc.Key()
	hosts := make([]string, 0, len(svc.VirtualHosts))
	for _, vh := range svc.VirtualHosts {
		hosts = append(hosts, vh.Host)
	}
	slices.Sort(hosts)
	hosts = slices.Compact(hosts)
	c := claim{key: key, created: svc.Created, hosts: hosts}

	affected := x.remove(key)
	x.services[key] = c
	for _, h := range hosts {
		cs := x.claimants[h]
		i := sort.Search(len(cs), func(i int) bool { return c.before(cs[i]) })
		x.claimants[h] = slices.Insert(cs, i, c)
		affected = append(affected, h)
	}
	return x.refresh(affected, key)
}

// Delete removes a Service. It returns the keys, sorted, whose Conflict
// changed, including key's own if it was in conflict.
func (x *HostIndex) Delete(key string) (changed []string) {
	affected := x.remove(key)
	return x.refresh(affected, key)
}

// remove drops key's claims and returns the hosts it claimed.
func (x *HostIndex) remove(key string) []string {
	old, ok := x.services[key]
	if !ok {
		return nil
	}
	delete(x.services, key)
	for _, h := range old.hosts {
		cs := slices.DeleteFunc(x.claimants[h], func(c claim) bool { return c.key == key })
		if len(cs) == 0 {
			delete(x.claimants, h)
		} else {
			x.claimants[h] = cs
		}
	}
	return slices.Clone(old.hosts)
}

// refresh recomputes the conflicts of key and of every claimant of the
// affected hosts, returning those that changed.
func (x *HostIndex) refresh(hosts []string, key string) []string {
	keys := map[string]bool{key: true}
	for _, h := range hosts {
		for _, c := range x.claimants[h] {
			keys[c.key] = true
		}
	}
	var changed []string
	for k := range keys {
		before, was := x.conflicts[k]
		now, is := x.compute(k)
		if is {
			x.conflicts[k] = now
		} else {
			delete(x.conflicts, k)
		}
		if was != is || before != now {
			changed = append(changed, k)
		}
	}
	slices.Sort(changed)
	return changed
}

// compute reports key's first lost host (in host order) and its owner.
func (x *HostIndex) compute(key string) (Conflict, bool) {
	c, ok := x.services[key]
	if !ok {
		return Conflict{}, false
	}
	for _, h := range c.hosts {
		if owner := x.claimants[h][0]; owner.key != key {
			return Conflict{Service: key, Host: h, Owner: owner.key}, true
		}
	}
	return Conflict{}, false
}

// Conflict reports whether the Service with this key is in conflict, and
// the first host (in host order) it lost.
func (x *HostIndex) Conflict(key string) (Conflict, bool) {
	c, ok := x.conflicts[key]
	return c, ok
}

// Conflicts returns every Service in conflict, sorted by Service key.
func (x *HostIndex) Conflicts() []Conflict {
	var out []Conflict
	for _, c := range x.conflicts {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Conflict) int { return strings.Compare(a.Service, b.Service) })
	return out
}

// Keys returns the keys of every Service in the index, sorted.
func (x *HostIndex) Keys() []string {
	return slices.Sorted(maps.Keys(x.services))
}
