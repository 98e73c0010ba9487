package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/kgate/kgate/deploy/local"
	"github.com/kgate/kgate/localstate"
)

// stateFolder is kgate local's state folder: --state-dir, else the one of
// this set of -f paths.
func stateFolder(cfg localConfig) (string, error) {
	if cfg.stateDir != "" {
		return cfg.stateDir, nil
	}
	if len(cfg.paths) == 0 {
		return "", fmt.Errorf("-f: the manifests kgate local runs on name its state folder (or give --state-dir)")
	}
	base, err := localstate.DefaultBase()
	if err != nil {
		return "", err
	}
	return localstate.DirFor(base, cfg.paths)
}

// openState opens kgate local's state store (--state-dir, else the folder
// of this set of -f paths), forgets it first with --reset, and loads what
// a restart restores; it stops the replicas a crashed run left.
func openState(ctx context.Context, log *slog.Logger, cfg localConfig) (*localstate.Store, localstate.Snapshot, error) {
	dir, err := stateFolder(cfg)
	if err != nil {
		return nil, localstate.Snapshot{}, err
	}
	st, err := localstate.Open(dir, cfg.paths)
	if err != nil {
		return nil, localstate.Snapshot{}, fmt.Errorf("--state-dir: %w", err)
	}
	if cfg.reset {
		if err := st.Reset(); err != nil {
			st.Close()
			return nil, localstate.Snapshot{}, err
		}
		log.Info("state reset: objects, revision history and replicas forgotten", "state", dir)
	}
	sn, err := st.Load()
	if err != nil {
		st.Close()
		return nil, localstate.Snapshot{}, fmt.Errorf("%w (--reset starts over, forgetting the revision history)", err)
	}
	// Replicas a crashed run left are stopped before any starts.
	var recs []local.Record
	if err := st.Replicas(&recs); err != nil {
		log.Error("the replicas of the last run are unknown; any still running are left alone", "error", err)
	} else if n := local.Reap(ctx, recs, log); n > 0 {
		log.Warn("stopped replicas a crashed run left running", "replicas", n)
	}
	if !sn.Empty() {
		log.Info("restored the state of the last run", "state", dir, "services", len(sn.Stored.Services),
			"routes", len(sn.Stored.Routes), "revisions", len(sn.Stored.Revisions))
	} else {
		log.Info("state", "state", dir)
	}
	return st, sn, nil
}
