package main

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"time"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/autoscale"
	"github.com/kgate/kgate/autoscale/loop"
	"github.com/kgate/kgate/deploy"
	"github.com/kgate/kgate/watcher"
	"github.com/kgate/kgate/xds"
)

// localDeployer runs revisions on this machine.
type localDeployer interface {
	deploy.Deployer
	// SetRevision says what a revision runs; an error says why it cannot
	// run (an image with no local command, say), for its status.
	SetRevision(key string, rev *servingv1.Revision) error
	// Forget drops a revision that no longer exists; it has been scaled to
	// zero.
	Forget(key string)
}

// ReasonCannotRun is the revision condition reason when kgate local cannot
// run a revision's container.
const ReasonCannotRun = "ContainerNotRunnable"

// localSystem ties the manifests to the running system: it hands each
// reconciliation to the xDS engine (routing), the deployer (what each
// revision runs) and the autoscaler loop (what to scale), and feeds back
// what the deployer and the autoscaler know into the objects' status.
type localSystem struct {
	log    *slog.Logger
	engine *xds.Engine
	dep    localDeployer
	loop   *loop.Loop

	// folder is set once, before any reconciliation is applied.
	folder *watcher.Folder

	mu sync.Mutex
	// failed are the revisions the deployer cannot run.
	failed map[string]watcher.Failure
	// ready are the revisions that have been ready once: a revision at
	// zero stays Ready in Knative, only not Active.
	ready map[string]bool
	// known are the revisions handed to the deployer.
	known map[string]bool
}

func newLocalSystem(log *slog.Logger, engine *xds.Engine, dep localDeployer) *localSystem {
	return &localSystem{
		log: log, engine: engine, dep: dep,
		failed: map[string]watcher.Failure{}, ready: map[string]bool{}, known: map[string]bool{},
	}
}

// apply hands one reconciliation to the running system. It runs on the
// folder's goroutine, one reconciliation at a time.
func (s *localSystem) apply(ctx context.Context, res *watcher.Result) {
	if err := s.engine.UpdateRouting(res.Model.Services, res.Model.Revisions); err != nil {
		s.log.Error("pushing the new routing", "error", err)
	}
	s.folder.MarkConflicts(res, s.engine.Conflicts())

	failed := map[string]watcher.Failure{}
	live := map[string]bool{}
	var revs []loop.Revision
	for _, rev := range res.Revisions {
		key := rev.Namespace + "/" + rev.Name
		live[key] = true
		if err := s.dep.SetRevision(key, rev); err != nil {
			failed[key] = watcher.Failure{Reason: ReasonCannotRun, Message: err.Error()}
			continue
		}
		var cc int64
		if rev.Spec.ContainerConcurrency != nil {
			cc = *rev.Spec.ContainerConcurrency
		}
		revs = append(revs, loop.Revision{Key: key, Spec: autoscale.RevisionSpec{
			Annotations:          rev.Annotations,
			ContainerConcurrency: cc,
			Unreachable:          !res.Routed[key],
		}})
	}
	// Revisions to stop being scaled go to zero inside Configure; then the
	// deployer may forget them.
	for _, err := range s.loop.Configure(ctx, time.Now(), res.Config.Autoscaler, revs) {
		s.log.Error("not autoscaling a revision", "error", err)
	}

	s.mu.Lock()
	gone := []string{}
	for key := range s.known {
		if !live[key] {
			gone = append(gone, key)
			delete(s.known, key)
			delete(s.ready, key)
		}
	}
	for key := range live {
		s.known[key] = true
	}
	changed := !maps.Equal(failed, s.failed)
	s.failed = failed
	s.mu.Unlock()
	for _, key := range gone {
		s.dep.Forget(key)
	}
	if changed {
		// This reconciles again: with the same failures, it settles.
		s.folder.SetFailed(maps.Clone(failed))
	}
}

// podsChanged is the deployer's notification: the loop reroutes, and a
// revision ready for the first time turns Ready.
func (s *localSystem) podsChanged(rev string) {
	s.loop.EndpointsChanged(rev)
	if len(s.dep.Ready(rev)) > 0 {
		s.markReady(rev)
	}
}

// decided is the loop's notification: a revision at zero by decision is
// Ready (Knative: Ready, not Active).
func (s *localSystem) decided(d autoscale.Decision) {
	if d.Replicas == 0 {
		s.markReady(d.Revision)
	}
}

func (s *localSystem) markReady(rev string) {
	s.mu.Lock()
	if s.ready[rev] || !s.known[rev] {
		s.mu.Unlock()
		return
	}
	s.ready[rev] = true
	ready := maps.Clone(s.ready)
	s.mu.Unlock()
	s.folder.SetReady(ready)
}

// snapshot is what the admin API serves: the objects of the latest
// reconciliation, with each revision's replicas, routing mode and Active
// condition as the autoscaler and the deployer see them now.
func (s *localSystem) snapshot() objects {
	res := s.folder.Current()
	decisions, modes := s.loop.Decisions(), s.loop.Modes()
	revs := make([]*servingv1.Revision, 0, len(res.Revisions))
	for _, r := range res.Revisions {
		key := r.Namespace + "/" + r.Name
		rev := *r // the folder's objects are shared: copy what changes
		rt := watcher.Runtime{Actual: int32(len(s.dep.Ready(key)))}
		if d, ok := decisions[key]; ok {
			rt.Desired, rt.Mode = &d.Replicas, string(modes[key])
		}
		rev.Status = watcher.WithRuntime(rev.Status, rt, rev.Status.Conditions, time.Now())
		revs = append(revs, &rev)
	}
	return objects{Services: res.Services, Configurations: res.Configurations, Revisions: revs, Routes: res.Routes}
}
