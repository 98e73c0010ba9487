//go:build !linux

package local

import (
	"context"
	"log/slog"
)

// Reap does nothing outside Linux, and returns 0: the processes' starts
// are not read there (ProcessStart is empty), so a recorded pid could be
// any process now, and none is killed. Replicas there outlive a kgate
// killed without a chance to stop them (see groupAttr).
func Reap(ctx context.Context, recs []Record, log *slog.Logger) (reaped int) { return 0 }

// processStart is empty outside Linux: see Reap.
func processStart(int) (ProcessStart, error) { return ProcessStart{}, nil }
