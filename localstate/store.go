// Package localstate is kgate local's state store: what a restart must find
// where, in Kubernetes, the API server keeps it. It holds the revision
// history and the objects' last statuses (knative.Stored, DomainMappings
// included: names, template
// digests, generations, creation times, each Route's last traffic, each
// object's last valid version), the replica processes running, and values
// kept across --reset (the local HTTPS certificate authority).
//
// It is a bbolt database (go.etcd.io/bbolt, etcd's own store): one file,
// pure Go, every write a transaction that is fsynced before it returns, so
// that a crash at any point leaves the state of the last write that
// returned, never a mix (docs/architecture.md says why bbolt).
package localstate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/watcher/knative"
)

// FileName is the database's name in a state folder.
const FileName = "state.db"

// Buckets. Objects are keyed "namespace/name", declared objects
// "Kind/namespace/name"; each value is JSON.
var (
	bucketServices       = []byte("services")
	bucketConfigurations = []byte("configurations")
	bucketRoutes         = []byte("routes")
	bucketRevisions      = []byte("revisions")
	bucketMappings       = []byte("domainmappings")
	bucketDeclared       = []byte("declared")
	bucketReplicas       = []byte("replicas")
	bucketKept           = []byte("kept")
	bucketMeta           = []byte("meta")

	// forgotten are what Reset empties: everything but the kept values.
	forgotten = [][]byte{bucketServices, bucketConfigurations, bucketRoutes, bucketRevisions, bucketMappings, bucketDeclared, bucketReplicas}
)

// keyReplicas is the replicas bucket's one key.
var keyReplicas = []byte("all")

// DefaultBase is where state folders live unless --state-dir says
// otherwise: $XDG_STATE_HOME/kgate, else ~/.local/state/kgate.
func DefaultBase() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "kgate"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the state folder (set --state-dir or XDG_STATE_HOME): %w", err)
	}
	return filepath.Join(home, ".local", "state", "kgate"), nil
}

// DirFor is the state folder under base of kgate local run on paths: one per
// set of -f paths (absolute, cleaned, in any order), so that two projects
// never share history and the manifests' own folders are never written to.
func DirFor(base string, paths []string) (string, error) {
	abs := make([]string, 0, len(paths))
	for _, p := range paths {
		a, err := filepath.Abs(p)
		if err != nil {
			return "", fmt.Errorf("naming the state folder of %s: %w", p, err)
		}
		abs = append(abs, filepath.Clean(a))
	}
	slices.Sort(abs)
	abs = slices.Compact(abs)
	sum := sha256.Sum256([]byte(strings.Join(abs, "\x00")))
	name := filepath.Base(abs[0])
	if name == "/" || name == "." {
		name = "root"
	}
	return filepath.Join(base, name+"-"+hex.EncodeToString(sum[:6])), nil
}

// Store is an open state store. Its methods may be called from any
// goroutine.
type Store struct {
	db  *bolt.DB
	dir string
	// written holds, by bucket and key, what SaveObjects last wrote, so
	// that a pass writes only what changed.
	written map[string][]byte
}

// OpenTimeout bounds the wait for another process's lock on the store.
const OpenTimeout = time.Second

// Open opens (creating) the store in dir. paths, recorded for people
// reading the folder, are the manifests it is for. Another process using
// the store is an error naming the folder.
func Open(dir string, paths []string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the state folder: %w", err)
	}
	file := filepath.Join(dir, FileName)
	db, err := bolt.Open(file, 0o600, &bolt.Options{Timeout: OpenTimeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("opening the state store %s: another kgate local is using it (stop it, or give this one another --state-dir)", file)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the state store %s (--reset starts it over): %w", file, err)
	}
	s := &Store{db: db, dir: dir, written: map[string][]byte{}}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range append(slices.Clone(forgotten), bucketKept, bucketMeta) {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		about, _ := json.Marshal(map[string]any{"paths": paths})
		return tx.Bucket(bucketMeta).Put([]byte("about"), about)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("preparing the state store %s: %w", file, err)
	}
	return s, nil
}

// Dir is the store's folder.
func (s *Store) Dir() string { return s.dir }

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// Reset forgets the objects, their history and the replicas, keeping the
// kept values (the local certificate authority users trust).
func (s *Store) Reset() error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range forgotten {
			if err := tx.DeleteBucket(b); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
				return err
			}
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("resetting the state store: %w", err)
	}
	s.written = map[string][]byte{}
	return nil
}

// Snapshot is what a restart restores.
type Snapshot struct {
	// Stored is for watcher.Pipeline.Restore.
	Stored knative.Stored
	// Ready are the stored revisions ("namespace/name") that were Ready.
	Ready []string
}

// Empty says whether nothing was stored.
func (sn Snapshot) Empty() bool {
	st := sn.Stored
	return len(st.Services)+len(st.Configurations)+len(st.Routes)+len(st.Revisions)+len(st.DomainMappings)+len(st.Declared) == 0
}

// Load reads what the store holds. A value that no longer decodes is an
// error naming it: the store is kgate's own, and skipping part of a
// revision history would rebind names.
func (s *Store) Load() (Snapshot, error) {
	var sn Snapshot
	err := s.db.View(func(tx *bolt.Tx) error {
		if err := load(tx, bucketServices, &sn.Stored.Services); err != nil {
			return err
		}
		if err := load(tx, bucketConfigurations, &sn.Stored.Configurations); err != nil {
			return err
		}
		if err := load(tx, bucketRoutes, &sn.Stored.Routes); err != nil {
			return err
		}
		if err := load(tx, bucketRevisions, &sn.Stored.Revisions); err != nil {
			return err
		}
		if err := load(tx, bucketMappings, &sn.Stored.DomainMappings); err != nil {
			return err
		}
		var declared []*knative.Declared
		if err := load(tx, bucketDeclared, &declared); err != nil {
			return err
		}
		for _, d := range declared {
			sn.Stored.Declared = append(sn.Stored.Declared, *d)
		}
		return nil
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("loading the state store %s: %w", s.dir, err)
	}
	for _, rev := range sn.Stored.Revisions {
		for _, c := range rev.Status.Conditions {
			if c.Type == servingv1.ConditionReady && c.Status == "True" {
				sn.Ready = append(sn.Ready, rev.Namespace+"/"+rev.Name)
			}
		}
	}
	return sn, nil
}

// load decodes every value of bucket b into a new *T appended to out.
func load[T any](tx *bolt.Tx, b []byte, out *[]*T) error {
	return tx.Bucket(b).ForEach(func(k, v []byte) error {
		x := new(T)
		if err := json.Unmarshal(v, x); err != nil {
			return fmt.Errorf("%s %s: %w", b, k, err)
		}
		*out = append(*out, x)
		return nil
	})
}

// SaveObjects stores one pass's objects and what the reconciler remembers
// of the declared ones, in one transaction: objects no longer there are
// deleted, and only what changed since the last save is written.
func (s *Store) SaveObjects(res *knative.Result, declared []knative.Declared) error {
	next := map[string]map[string][]byte{}
	add := func(b []byte, key string, v any) error {
		data, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encoding %s %s: %w", b, key, err)
		}
		if next[string(b)] == nil {
			next[string(b)] = map[string][]byte{}
		}
		next[string(b)][key] = data
		return nil
	}
	var err error
	for _, o := range res.Services {
		err = errors.Join(err, add(bucketServices, o.Namespace+"/"+o.Name, o))
	}
	for _, o := range res.Configurations {
		err = errors.Join(err, add(bucketConfigurations, o.Namespace+"/"+o.Name, o))
	}
	for _, o := range res.Routes {
		err = errors.Join(err, add(bucketRoutes, o.Namespace+"/"+o.Name, o))
	}
	for _, o := range res.Revisions {
		err = errors.Join(err, add(bucketRevisions, o.Namespace+"/"+o.Name, o))
	}
	for _, o := range res.DomainMappings {
		err = errors.Join(err, add(bucketMappings, o.Namespace+"/"+o.Name, o))
	}
	for _, d := range declared {
		err = errors.Join(err, add(bucketDeclared, d.Kind+"/"+d.Namespace+"/"+d.Name, d))
	}
	if err != nil {
		return fmt.Errorf("saving the state: %w", err)
	}

	changed := false
	written := map[string][]byte{}
	err = s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketServices, bucketConfigurations, bucketRoutes, bucketRevisions, bucketMappings, bucketDeclared} {
			bk := tx.Bucket(b)
			want := next[string(b)]
			// Deleting while iterating a bbolt cursor skips keys: collect first.
			var gone [][]byte
			if err := bk.ForEach(func(k, _ []byte) error {
				if _, ok := want[string(k)]; !ok {
					gone = append(gone, slices.Clone(k))
				}
				return nil
			}); err != nil {
				return err
			}
			for _, k := range gone {
				changed = true
				if err := bk.Delete(k); err != nil {
					return err
				}
			}
			for k, v := range want {
				id := string(b) + "\x00" + k
				written[id] = v
				if prev, ok := s.written[id]; ok && bytes.Equal(prev, v) {
					continue
				}
				changed = true
				if err := bk.Put([]byte(k), v); err != nil {
					return err
				}
			}
		}
		if !changed {
			// Nothing to commit: a rollback costs no fsync.
			return errUnchanged
		}
		return nil
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		return fmt.Errorf("saving the state to %s: %w", s.dir, err)
	}
	s.written = written
	return nil
}

// errUnchanged rolls back a save that would write nothing.
var errUnchanged = errors.New("unchanged")

// SaveReplicas stores the replica processes running (JSON of v, the
// deployer's records), replacing what was stored.
func (s *Store) SaveReplicas(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding the replicas: %w", err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketReplicas).Put(keyReplicas, data) }); err != nil {
		return fmt.Errorf("saving the replicas to %s: %w", s.dir, err)
	}
	return nil
}

// Replicas decodes the stored replica processes into v; it leaves v alone
// when none are stored.
func (s *Store) Replicas(v any) error {
	var data []byte
	_ = s.db.View(func(tx *bolt.Tx) error {
		data = slices.Clone(tx.Bucket(bucketReplicas).Get(keyReplicas))
		return nil
	})
	if data == nil {
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("loading the replicas from %s: %w", s.dir, err)
	}
	return nil
}

// Keep stores a value that Reset keeps (the local certificate authority).
func (s *Store) Keep(key string, value []byte) error {
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketKept).Put([]byte(key), value) }); err != nil {
		return fmt.Errorf("saving %s to %s: %w", key, s.dir, err)
	}
	return nil
}

// Kept returns a kept value, nil when there is none.
func (s *Store) Kept(key string) []byte {
	var v []byte
	_ = s.db.View(func(tx *bolt.Tx) error {
		v = slices.Clone(tx.Bucket(bucketKept).Get([]byte(key)))
		return nil
	})
	return v
}
