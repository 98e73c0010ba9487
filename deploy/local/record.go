package local

import (
	"cmp"
	"crypto/rand"
	"slices"
)

// markVar is the environment variable that carries a process's Mark. Its
// children inherit it, so that Reap can tell the rest of a replica's group
// from strangers once the replica itself is gone.
const markVar = "KGATE_REPLICA_ID"

// Record is one live replica process, as Options.OnReplicas lists them for
// the caller to persist, and as Reap takes them back after a crash.
type Record struct {
	// Revision is the revision's key, "namespace/name".
	Revision string `json:"revision"`
	// PID is the process's id, which is also its process group's id.
	PID int `json:"pid"`
	// Started says which process PID was: a later process given the same
	// pid has another start.
	Started ProcessStart `json:"started"`
	// Mark is a random value in the process's environment (as
	// KGATE_REPLICA_ID), which the processes it starts inherit: what
	// tells its group's members once it has died itself.
	Mark string `json:"mark,omitempty"`
}

// ProcessStart identifies a process's start, so that a pid reused by
// another process never matches. On Linux it is the boot's id
// (/proc/sys/kernel/random/boot_id, so that nothing from before a reboot
// matches) and the start time in clock ticks since boot (field 22 of
// /proc/PID/stat); elsewhere it is empty, and matches nothing.
type ProcessStart struct {
	BootID string `json:"bootID,omitempty"`
	Ticks  uint64 `json:"ticks,omitempty"`
}

// newMark returns a value no other process carries.
func newMark() string { return rand.Text() }

// track adds a started process to the live ones.
func (d *Deployer) track(p *process, rec Record) {
	d.mu.Lock()
	d.live[p] = rec
	d.mu.Unlock()
	d.replicasChanged()
}

// untrack drops a process that has exited, its group gone, from the live
// ones.
func (d *Deployer) untrack(p *process) {
	d.mu.Lock()
	delete(d.live, p)
	d.mu.Unlock()
	d.replicasChanged()
}

// replicasChanged has the notifier call OnReplicas, unless it has a call
// pending already, which will see this change too: the replica goroutines
// never wait on the caller.
func (d *Deployer) replicasChanged() {
	if d.opts.OnReplicas == nil {
		return
	}
	select {
	case d.dirty <- struct{}{}:
	default:
	}
}

// notifyReplicas calls OnReplicas with the live processes after each
// change, from one goroutine, so that the calls come in order and the last
// one has the latest list. It returns once dirty is closed, which Close
// does after the last process is gone, and a change it signalled is
// delivered.
func (d *Deployer) notifyReplicas() {
	defer close(d.notified)
	for range d.dirty {
		d.opts.OnReplicas(d.records())
	}
}

// records is the live processes, by revision and pid.
func (d *Deployer) records() []Record {
	d.mu.Lock()
	out := make([]Record, 0, len(d.live))
	for _, rec := range d.live {
		out = append(out, rec)
	}
	d.mu.Unlock()
	slices.SortFunc(out, func(a, b Record) int {
		return cmp.Or(cmp.Compare(a.Revision, b.Revision), cmp.Compare(a.PID, b.PID))
	})
	return out
}
