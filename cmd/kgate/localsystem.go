package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/kgate/kgate/api/config"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/autoscale"
	"github.com/kgate/kgate/autoscale/loop"
	"github.com/kgate/kgate/deploy"
	"github.com/kgate/kgate/localstate"
	"github.com/kgate/kgate/watcher"
	"github.com/kgate/kgate/watcher/knative"
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

// ReasonHPAClassUnsupported is the revision condition reason when a
// revision is of Knative's HPA class, which Kubernetes' HorizontalPodAutoscaler
// scales: kgate local has none to hand it to, and its own autoscaler is the
// KPA.
const ReasonHPAClassUnsupported = "HPAClassUnsupported"

// hpaUnsupported is the message of ReasonHPAClassUnsupported.
const hpaUnsupported = "autoscaler class " + config.ClassHPA +
	" (autoscaling.knative.dev/class, or config-autoscaler's pod-autoscaler-class) is not supported by kgate local: " +
	"Kubernetes' HorizontalPodAutoscaler scales it, in Kubernetes mode (kgate controller); locally, use " + config.ClassKPA + ", the default"

// localSystem runs what the pipeline decides on this machine: each pass's
// revisions go to the deployer (what each runs) and the autoscaler loop
// (what to scale); what they learn later (a revision that cannot run, ready
// pods, a decision to stay at zero) goes back to the pipeline as a change.
type localSystem struct {
	log  *slog.Logger
	pipe *watcher.Pipeline
	dep  localDeployer
	loop *loop.Loop
	// store keeps each pass's objects for the next run.
	store *localstate.Store
	// https issues the certificates of the hosts served over TLS.
	https *localHTTPS

	// known are the revisions handed to the deployer; only apply, on the
	// pipeline's goroutine, touches it.
	known map[string]bool
}

// apply stores one pass's objects and hands its revisions to the deployer
// and the autoscaler.
func (s *localSystem) apply(ctx context.Context, res *knative.Result) {
	if err := s.store.SaveObjects(res, s.pipe.Declared()); err != nil {
		s.log.Error("not stored: a restart would not find this pass's objects", "error", err)
	}
	s.https.sync(tlsHosts(res.Model.Services))
	failed := map[string]knative.Failure{}
	live := map[string]bool{}
	for _, rev := range res.Revisions {
		key := rev.Namespace + "/" + rev.Name
		live[key] = true
		if autoscale.Class(res.Config.Autoscaler, rev.Annotations) == config.ClassHPA {
			failed[key] = knative.Failure{Reason: ReasonHPAClassUnsupported, Message: hpaUnsupported}
			continue
		}
		if err := s.dep.SetRevision(key, rev); err != nil {
			failed[key] = knative.Failure{Reason: ReasonCannotRun, Message: err.Error()}
		}
	}
	// Revisions to stop being scaled go to zero inside Configure; then the
	// deployer may forget them.
	for _, err := range s.loop.Configure(ctx, time.Now(), res.Config.Autoscaler, watcher.Scaled(res, failed)) {
		s.log.Error("not autoscaling a revision", "error", err)
	}
	for key := range s.known {
		if !live[key] {
			s.dep.Forget(key)
		}
	}
	s.known = live
	s.pipe.Submit(watcher.Change{Failed: failed}) // dropped when unchanged
}

// podsChanged is the deployer's notification: the loop reroutes, and a
// revision with ready pods is ready.
func (s *localSystem) podsChanged(rev string) {
	s.loop.EndpointsChanged(rev)
	if len(s.dep.Ready(rev)) > 0 {
		s.pipe.Submit(watcher.Change{Ready: []string{rev}})
	}
}

// decided is the loop's notification: a revision at zero by decision is
// Ready (Knative: Ready, not Active).
func (s *localSystem) decided(d autoscale.Decision) {
	if d.Replicas == 0 {
		s.pipe.Submit(watcher.Change{Ready: []string{d.Revision}})
	}
}

// snapshot is what the admin API serves: the objects of the latest pass,
// with each revision's replicas, routing mode and Active condition as the
// autoscaler and the deployer see them now.
func (s *localSystem) snapshot() objects {
	res := s.pipe.Current()
	decisions, modes := s.loop.Decisions(), s.loop.Modes()
	revs := make([]*servingv1.Revision, 0, len(res.Revisions))
	for _, r := range res.Revisions {
		key := r.Namespace + "/" + r.Name
		rev := *r // the pipeline's objects are shared: copy what changes
		rt := knative.Runtime{Actual: int32(len(s.dep.Ready(key)))}
		if d, ok := decisions[key]; ok {
			rt.Desired, rt.Mode = &d.Replicas, string(modes[key])
		}
		rev.Status = knative.WithRuntime(rev.Status, rt, rev.Status.Conditions, time.Now())
		revs = append(revs, &rev)
	}
	return objects{Services: res.Services, Configurations: res.Configurations, Revisions: revs, Routes: res.Routes, DomainMappings: res.DomainMappings}
}
