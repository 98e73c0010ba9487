// Package watcher is the one path the declared Knative objects take, from
// any source to the gateways: a Pipeline takes what changed (objects from
// a source, and what arrives later: revisions that became ready, revisions
// that cannot run, gateways that applied a Route) and, in one pass, hands
// the model to the xDS engine and returns every object's final status,
// host conflicts and the gateways' readiness included.
//
// The sources live beside it: watcher/folder (a folder of manifests, for
// kgate local and kgate xds) and watcher/kube (the Kubernetes API server,
// for kgate controller). watcher/knative is the pure reconciler at its
// core: Knative's object graph and condition sets.
package watcher

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/api/manifest"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/watcher/knative"
)

// Routing is where each pass's model goes: the xDS engine.
type Routing interface {
	// UpdateRouting replaces the Services and Revisions served.
	UpdateRouting(services []model.Service, revisions []model.Revision) error
}

// RoutingPatcher is a Routing that also takes part of a model (the xDS
// engine): a pass that knows what it changed (knative.Result.Changed)
// pushes only that.
type RoutingPatcher interface {
	Routing
	// PatchRouting adds or replaces the Services and Revisions given and
	// removes the deleted keys, leaving the others alone.
	PatchRouting(services []model.Service, deletedServices []string, revisions []model.Revision, deletedRevisions []string) error
}

// Gateways says whether every gateway that counts serves a Service as
// given (see knative.Input.Waiting): hold while one does not, with why;
// a message without hold names gateways left behind and not waited for.
type Gateways interface {
	Waiting(svc model.Service) (msg string, hold bool)
}

// Options configure a Pipeline.
type Options struct {
	// Routing receives the model of every pass; required.
	Routing Routing
	// Gateways, when set, holds a Route's readiness until every gateway
	// serves it; nil makes a Route ready once it is in the model.
	Gateways Gateways
	// Recheck, when set, is how soon a pass that left a Route held runs
	// again by itself: a gateway that stays behind stops holding Routes
	// after a time (xds.ServerOptions.StaleAfter), which no event marks.
	Recheck time.Duration
	// Certificate, when set, says how far the certificate of a Route's or
	// DomainMapping's hosts served over TLS has come
	// (knative.Input.Certificate); nil counts every certificate
	// provisioned.
	Certificate func(kind, namespace, name string, local bool) knative.CertificateState
	// Deployed says the revisions run somewhere that reports readiness
	// (Change.Ready): a revision is Ready once reported. Without a deploy
	// (the control plane alone) every revision counts as ready.
	Deployed bool
	// StartsAtZero, with Deployed, says which new revisions the autoscaler
	// starts at zero: Ready from the pass that makes them
	// (knative.Input.StartsAtZero). nil: a revision is Ready once reported.
	StartsAtZero func(now time.Time, cfg config.Autoscaler, annotations map[string]string, containerConcurrency int64) bool
	// Base is the configuration of absent ConfigMaps; nil is Knative's
	// defaults.
	Base *config.Config
	// ReplicaCeiling is the max-scale-limit where config-autoscaler sets
	// none (kgate local's, config.LocalMaxScaleLimit); 0 is Knative's:
	// none.
	ReplicaCeiling int32
	// AutocreateDomainClaims is autocreate-cluster-domain-claims where
	// config-network does not set it: false is Knative's default (a
	// cluster administrator delegates domains with ClusterDomainClaims);
	// kgate's file-driven modes, with one user, set true.
	AutocreateDomainClaims bool
	// FullEvery is how often a pass recomputes every object whatever
	// changed (knative.Input.Full), the safety net under the passes that
	// recompute only what changed; 0 is DefaultFullEvery.
	FullEvery time.Duration
	// Now is the clock of the statuses; nil is time.Now.
	Now func() time.Time
	// Logger receives each problem and host conflict once, when it
	// appears, and each ConfigMap key kgate ignores once per value; nil is
	// slog.Default().
	Logger *slog.Logger
}

// DefaultFullEvery is Options.FullEvery's default.
const DefaultFullEvery = 10 * time.Minute

// ObjectKey names a declared object.
type ObjectKey struct {
	Kind, Namespace, Name string
}

// KeyOf is the key of a declared object (the default namespace when it names none).
func KeyOf(o manifest.Object) ObjectKey {
	ns := o.Namespace
	if ns == "" {
		ns = manifest.DefaultNamespace
	}
	return ObjectKey{Kind: o.Kind, Namespace: ns, Name: o.Name}
}

// Change is what changed since the last pass. The zero Change changes
// nothing but still runs a pass: what the gateways serve is read in every
// pass, so a gateway's ACK is applied by an empty Change.
type Change struct {
	// Objects are declared objects, added or updated. With Replace they
	// are every declared object, in a stable order in which the first of
	// two declaring one object wins; those not among them are deleted.
	Objects []manifest.Object
	Replace bool
	// Deleted are declared objects no longer declared.
	Deleted []ObjectKey
	// Ready are revisions ("namespace/name") that have ready pods now, or
	// are at zero by the autoscaler's decision. A revision once ready stays
	// Ready, only not Active, at zero, as in Knative.
	Ready []string
	// Failed, when not nil, replaces the revisions that cannot run, with
	// why: they are not Ready.
	Failed map[string]knative.Failure
	// Base, when set, replaces the configuration of absent ConfigMaps.
	Base *config.Config
	// Challenges, when not nil, replace the ACME HTTP-01 challenges being
	// solved (knative.Input.Challenges).
	Challenges []knative.Challenge
	// NoGC, with Replace, replaces the revisions whose live object is
	// marked no-gc (knative.Input.NoGC).
	NoGC map[string]bool
	// Full makes the pass recompute every object (knative.Input.Full):
	// something the reconciler reads through Options changed for all of
	// them (a certificate issuer, say).
	Full bool

	// forced makes an otherwise empty change run a pass (Refresh).
	forced bool
}

// Pipeline runs every change through the reconciler, decides host
// conflicts and the gateways' readiness in the same pass, and pushes the
// model. Apply and Run may be called from any goroutine; passes run one at
// a time.
type Pipeline struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex // held for a pass
	rec     *knative.Reconciler
	objects []manifest.Object
	ready   map[string]bool
	live    map[string]bool // forget's scratch: the revisions of a pass
	// readySince are the keys made ready since the last forget.
	readySince []string
	failed     map[string]knative.Failure
	// challenges are the ACME HTTP-01 challenges (Change.Challenges), and
	// solvers the solvers' endpoints pushed (see pushSolvers).
	challenges []knative.Challenge
	noGC       map[string]bool // Change.NoGC
	solvers    map[string]model.RevisionEndpoints
	current    *knative.Result
	logged     map[string]bool // problems and conflicts logged, so each shows once
	lastFull   time.Time       // when a pass last recomputed everything
	fullNext   bool            // the next pass recomputes everything (Change.Full)

	// qmu guards the queued change, apart from mu, so that Submit never
	// waits for a pass (the autoscaler submits under its own lock).
	qmu     sync.Mutex
	queued  Change
	pending bool // queued holds more than a Refresh
	// knownReady and knownFail are what the pipeline knows once the queued
	// changes are applied: Submit drops what repeats them.
	knownReady map[string]bool
	knownFail  map[string]knative.Failure
	wake       chan struct{} // signalled when a change is queued
	// rechecking is set while a Recheck is scheduled, and recheck is its
	// timer (guarded by mu).
	rechecking atomic.Bool
	recheck    *time.Timer
	// wakeup runs the pass that no event will: the earlier of a gradual
	// rollout's next step (knative.Result.NextStep) and the next revision
	// turning old enough for garbage collection
	// (knative.Result.NextCollection); guarded by mu.
	wakeup *time.Timer
	// stopped is set by Stop: no timer is armed any more; guarded by mu.
	stopped bool
}

// New returns a Pipeline that has run no pass yet.
func New(opts Options) *Pipeline {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.FullEvery <= 0 {
		opts.FullEvery = DefaultFullEvery
	}
	p := &Pipeline{
		opts: opts, log: opts.Logger,
		rec:   knative.NewReconciler(opts.Now),
		ready: map[string]bool{}, failed: map[string]knative.Failure{},
		logged:     map[string]bool{},
		knownReady: map[string]bool{}, knownFail: map[string]knative.Failure{},
		wake: make(chan struct{}, 1),
	}
	p.rec.SetReplicaCeiling(opts.ReplicaCeiling)
	p.rec.SetAutocreateDomainClaims(opts.AutocreateDomainClaims)
	if opts.Base != nil {
		p.rec.SetBase(*opts.Base)
	}
	return p
}

// Restore loads what an earlier instance stored (see
// knative.Reconciler.Restore) before the first pass; ready are the stored
// revisions that were Ready.
func (p *Pipeline) Restore(st knative.Stored, ready []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rec.Restore(st)
	for _, r := range ready {
		p.ready[r] = true
	}
	p.qmu.Lock()
	maps.Copy(p.knownReady, p.ready)
	p.qmu.Unlock()
}

// Declared is what the reconciler remembers of the declared objects beyond
// the latest result (knative.Reconciler.Declared), for a state store.
func (p *Pipeline) Declared() []knative.Declared {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rec.Declared()
}

// Submit queues a change for the next pass (Run's, or the next Apply's)
// and never waits for a pass. A change that repeats what is known (a
// revision already ready, the same failures) is dropped.
func (p *Pipeline) Submit(ch Change) {
	p.qmu.Lock()
	ch.Ready = slices.DeleteFunc(slices.Clone(ch.Ready), func(r string) bool { return p.knownReady[r] })
	if ch.Failed != nil && maps.Equal(ch.Failed, p.knownFail) {
		ch.Failed = nil
	}
	changes := ch.Objects != nil || ch.Replace || len(ch.Deleted) > 0 || len(ch.Ready) > 0 || ch.Failed != nil || ch.Base != nil || ch.Challenges != nil || ch.Full
	if !changes && !ch.forced {
		p.qmu.Unlock()
		return
	}
	for _, r := range ch.Ready {
		p.knownReady[r] = true
	}
	if ch.Failed != nil {
		p.knownFail = maps.Clone(ch.Failed)
	}
	p.queued = merge(p.queued, ch)
	p.pending = p.pending || changes
	p.qmu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default: // a pass is due already
	}
}

// Refresh queues an empty change: the next pass re-reads what the
// gateways serve.
func (p *Pipeline) Refresh() { p.Submit(Change{forced: true}) }

// Pending says whether a change other than a Refresh is queued for the
// next pass: something declared or reported that the next pass routes.
func (p *Pipeline) Pending() bool {
	p.qmu.Lock()
	defer p.qmu.Unlock()
	return p.pending
}

// Queued is signalled when a change is queued: a source running its own
// loop (Kubernetes) runs a pass then.
func (p *Pipeline) Queued() <-chan struct{} { return p.wake }

// Run runs a pass for each queued change until ctx ends, handing each
// result to then. When ctx ends it calls Stop: no timer of the pipeline
// fires after Run has returned.
func (p *Pipeline) Run(ctx context.Context, then func(*knative.Result)) error {
	defer p.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
			res := p.Apply(Change{})
			if then != nil {
				then(res)
			}
		}
	}
}

// Stop stops the timers that queue passes no event asks for (a rollout's
// next step, a garbage collection, a Recheck), some of them hours ahead,
// and arms none after: Run calls it when it returns, and a mode that runs
// its passes itself (Queued, Apply) calls it when it is done. Apply still
// runs a pass after Stop; nothing else queues one.
func (p *Pipeline) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	p.wakeAt(time.Time{})
	if p.recheck != nil {
		p.recheck.Stop()
		p.recheck = nil
	}
}

// Apply runs one pass over the queued changes and ch, and returns its
// result: the model has been handed to Routing, and every status is final.
func (p *Pipeline) Apply(ch Change) *knative.Result { return p.ApplyScaling(ch, nil) }

// ApplyScaling is Apply, with scale (when not nil) given the pass's Result
// before its model is pushed: an autoscaler configured there pushes a new
// revision's endpoints before the routes that name it, so that the
// engine's make-before-break waits for them too. scale may Submit.
func (p *Pipeline) ApplyScaling(ch Change, scale func(*knative.Result)) *knative.Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.qmu.Lock()
	queued := p.queued
	p.queued, p.pending = Change{}, false
	select {
	case <-p.wake: // this pass takes what was queued
	default:
	}
	p.qmu.Unlock()
	p.apply(merge(queued, ch))
	return p.pass(scale)
}

// Current is the latest pass's result; nil before the first.
func (p *Pipeline) Current() *knative.Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.current
}

// merge folds b into a: b's objects after a's (a Replace starts over), the
// union of the revisions ready, b's failures and base when set.
func merge(a, b Change) Change {
	if b.Replace {
		a.Objects, a.Replace, a.Deleted = b.Objects, true, nil
		a.NoGC = b.NoGC
	} else {
		a.Deleted = append(a.Deleted, b.Deleted...)
		a.Objects = append(a.Objects, b.Objects...)
	}
	a.Ready = append(a.Ready, b.Ready...)
	if b.Failed != nil {
		a.Failed = b.Failed
	}
	if b.Base != nil {
		a.Base = b.Base
	}
	if b.Challenges != nil {
		a.Challenges = b.Challenges
	}
	a.forced = a.forced || b.forced
	a.Full = a.Full || b.Full
	return a
}

// apply folds a change into the pipeline's state.
func (p *Pipeline) apply(ch Change) {
	if ch.Replace {
		p.objects = slices.Clone(ch.Objects)
		p.noGC = maps.Clone(ch.NoGC)
	} else {
		p.upsert(ch.Deleted, ch.Objects)
	}
	for _, r := range ch.Ready {
		if !p.ready[r] {
			p.ready[r] = true
			p.readySince = append(p.readySince, r)
		}
	}
	if ch.Failed != nil {
		p.failed = maps.Clone(ch.Failed)
	}
	if ch.Challenges != nil {
		p.challenges = slices.Clone(ch.Challenges)
	}
	// What Submit compares with follows a change applied without it.
	p.qmu.Lock()
	for _, r := range ch.Ready {
		p.knownReady[r] = true
	}
	if ch.Failed != nil {
		p.knownFail = maps.Clone(ch.Failed)
	}
	p.qmu.Unlock()
	if ch.Base != nil {
		p.rec.SetBase(*ch.Base)
	}
	p.fullNext = p.fullNext || ch.Full
}

// upsert removes the deleted objects, then replaces each object in place
// (keeping its rank) or appends it.
func (p *Pipeline) upsert(deleted []ObjectKey, objs []manifest.Object) {
	if len(deleted) == 0 && len(objs) == 0 {
		return
	}
	// The reconciler keeps the last pass's slice (knative.Input.Objects):
	// a new one, not that one changed.
	p.objects = slices.Clone(p.objects)
	if len(deleted) > 0 {
		gone := map[ObjectKey]bool{}
		for _, k := range deleted {
			gone[k] = true
		}
		p.objects = slices.DeleteFunc(p.objects, func(o manifest.Object) bool { return gone[KeyOf(o)] })
	}
	if len(objs) == 0 {
		return
	}
	at := make(map[ObjectKey]int, len(p.objects))
	for i, o := range p.objects {
		if _, dup := at[KeyOf(o)]; !dup {
			at[KeyOf(o)] = i
		}
	}
	for _, o := range objs {
		if i, ok := at[KeyOf(o)]; ok {
			p.objects[i] = o
			continue
		}
		at[KeyOf(o)] = len(p.objects)
		p.objects = append(p.objects, o)
	}
}

// pass reconciles, gives the Result to scale (when not nil), pushes the
// model and logs what is new.
func (p *Pipeline) pass(scale func(*knative.Result)) *knative.Result {
	in := knative.Input{Objects: p.objects, Failed: p.failed, Certificate: p.opts.Certificate, Challenges: p.challenges, NoGC: p.noGC}
	if p.opts.Deployed {
		in.Ready, in.StartsAtZero = p.ready, p.opts.StartsAtZero
	}
	var waiting []model.Service
	if gw := p.opts.Gateways; gw != nil {
		in.Waiting = func(svc model.Service) (string, bool) {
			msg, hold := gw.Waiting(svc)
			if hold {
				waiting = append(waiting, svc)
			}
			return msg, hold
		}
	}
	if now := p.opts.Now(); p.fullNext || now.Sub(p.lastFull) >= p.opts.FullEvery {
		in.Full, p.lastFull, p.fullNext = true, now, false
	}
	res := p.rec.Reconcile(in)
	if len(res.ReadyAtZero) > 0 {
		// Ready as if reported: the autoscaler saying so is no news.
		p.qmu.Lock()
		for _, r := range res.ReadyAtZero {
			p.ready[r], p.knownReady[r] = true, true
		}
		p.qmu.Unlock()
	}
	if scale != nil {
		scale(res)
	}
	p.wakeAt(nextPass(res))
	gone := p.pushSolvers(res.Model.Endpoints)
	if err := p.route(res); err != nil {
		p.log.Error("pushing the new routing", "error", err)
	}
	gone()
	// A Route whose new model changed nothing the gateways receive is
	// served as soon as it is pushed, and no ACK will say so: pass again.
	for _, svc := range waiting {
		if _, hold := p.opts.Gateways.Waiting(svc); !hold {
			p.Refresh()
			break
		}
	}
	if len(waiting) > 0 && p.opts.Recheck > 0 && !p.stopped && p.rechecking.CompareAndSwap(false, true) {
		p.recheck = time.AfterFunc(p.opts.Recheck, func() {
			p.rechecking.Store(false)
			p.Refresh()
		})
	}
	p.forget(res)
	p.logNew(res)
	p.current = res
	return res
}

// route pushes a pass's model: only what it changed when the pass knows
// and Routing takes parts, else the whole.
func (p *Pipeline) route(res *knative.Result) error {
	r, ok := p.opts.Routing.(RoutingPatcher)
	if !ok || res.Changed == nil {
		return p.opts.Routing.UpdateRouting(res.Model.Services, res.Model.Revisions)
	}
	var svcs []model.Service
	var revs []model.Revision
	var goneSvcs, goneRevs []string
	for _, key := range slices.Sorted(maps.Keys(res.Changed.Services)) {
		if i, found := slices.BinarySearchFunc(res.Model.Services, key, func(s model.Service, k string) int { return strings.Compare(s.Key(), k) }); found {
			svcs = append(svcs, res.Model.Services[i])
		} else {
			goneSvcs = append(goneSvcs, key)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(res.Changed.Revisions)) {
		if i, found := slices.BinarySearchFunc(res.Model.Revisions, key, func(r model.Revision, k string) int { return strings.Compare(r.Key(), k) }); found {
			revs = append(revs, res.Model.Revisions[i])
		} else {
			goneRevs = append(goneRevs, key)
		}
	}
	return r.PatchRouting(svcs, goneSvcs, revs, goneRevs)
}

// nextPass is when a pass is due that no event will ask for: the earlier
// of the next rollout step and the next garbage collection; zero when
// neither is.
func nextPass(res *knative.Result) time.Time {
	step, gc := res.NextStep, res.NextCollection
	if step.IsZero() || (!gc.IsZero() && gc.Before(step)) {
		return gc
	}
	return step
}

// wakeAt schedules the pass due at t by the pipeline's clock (zero: none
// is due) in place of the one scheduled before: every pass says when the
// earliest is due, and the pass then says when the one after is. Both
// modes run their passes on Refresh. Nothing is scheduled after Stop.
func (p *Pipeline) wakeAt(t time.Time) {
	if p.wakeup != nil {
		p.wakeup.Stop()
		p.wakeup = nil
	}
	if t.IsZero() || p.stopped {
		return
	}
	// The clock may be coarser than the timer (whole seconds in Kubernetes
	// mode): a pass that comes early finds nothing due and asks again.
	p.wakeup = time.AfterFunc(max(t.Sub(p.opts.Now()), minStepWait), p.Refresh)
}

// minStepWait keeps a clock that lags the timer from spinning passes.
const minStepWait = 50 * time.Millisecond

// EndpointsRouting is a Routing that also takes endpoints (the xDS
// engine): the pipeline pushes through it the endpoints the reconciler
// decides itself, the ACME HTTP-01 solvers' (knative.Result.Model.Endpoints).
type EndpointsRouting interface {
	Routing
	SetEndpoints(model.RevisionEndpoints) error
	DeleteEndpoints(revision string) error
}

// pushSolvers pushes the solvers' endpoints that are new or changed, before
// the routing that sends traffic to them, and returns what removes the
// endpoints of the solvers gone, to call after the routing no longer names
// them. Only the solvers' endpoints are the pipeline's: every Knative
// revision's are the autoscaler's (UpdateRouting leaves them alone), and the
// autoscaler never touches the solvers', which are no Revision it scales.
// A Routing without endpoints gets none.
func (p *Pipeline) pushSolvers(eps []model.RevisionEndpoints) (gone func()) {
	r, ok := p.opts.Routing.(EndpointsRouting)
	if !ok || (len(eps) == 0 && len(p.solvers) == 0) {
		return func() {}
	}
	next := make(map[string]model.RevisionEndpoints, len(eps))
	for _, ep := range eps {
		next[ep.Revision] = ep
		if old, ok := p.solvers[ep.Revision]; ok && equalEndpoints(old, ep) {
			continue
		}
		if err := r.SetEndpoints(ep); err != nil {
			p.log.Error("pushing an ACME solver's endpoints", "solver", ep.Revision, "error", err)
		}
	}
	prev := p.solvers
	p.solvers = next
	return func() {
		for _, key := range slices.Sorted(maps.Keys(prev)) {
			if _, ok := next[key]; !ok {
				if err := r.DeleteEndpoints(key); err != nil {
					p.log.Error("removing an ACME solver's endpoints", "solver", key, "error", err)
				}
			}
		}
	}
}

func equalEndpoints(a, b model.RevisionEndpoints) bool {
	return a.Revision == b.Revision && a.Mode == b.Mode && slices.Equal(a.Pods, b.Pods) && slices.Equal(a.Activators, b.Activators)
}

// forget drops the readiness of revisions that no longer exist. After a
// pass that names what it changed (knative.Result.Changed), only those
// revisions, and the keys made ready since the last forget (readySince),
// can be readiness of no revision: at 10,000 revisions, walking both maps
// every pass was a twentieth of a Kubernetes round. After a full pass
// every key is looked at; the set of live keys is the last such pass's
// map, cleared and filled again.
func (p *Pipeline) forget(res *knative.Result) {
	since := p.readySince
	p.readySince = p.readySince[:0]
	p.qmu.Lock()
	defer p.qmu.Unlock()
	if res.Changed != nil {
		drop := func(k string) {
			if !knative.HasKey(res.Revisions, k) {
				delete(p.ready, k)
				delete(p.knownReady, k)
			}
		}
		for k := range res.Changed.Revisions {
			drop(k)
		}
		for _, k := range since {
			drop(k)
		}
		return
	}
	if p.live == nil {
		p.live = make(map[string]bool, len(res.Revisions))
	}
	clear(p.live)
	for _, r := range res.Revisions {
		p.live[r.Namespace+"/"+r.Name] = true
	}
	maps.DeleteFunc(p.ready, func(k string, _ bool) bool { return !p.live[k] })
	maps.DeleteFunc(p.knownReady, func(k string, _ bool) bool { return !p.live[k] && !p.ready[k] })
}

// logNew logs each problem and host conflict once, when it appears, and
// each ConfigMap key kgate ignores (knative.Unsupported) once per value: a
// key that stays is not logged again, one whose value changes or that comes
// back after it was removed is.
func (p *Pipeline) logNew(res *knative.Result) {
	now := make(map[string]bool, len(res.Problems)+len(res.Conflicts))
	for _, pr := range res.Problems {
		key := pr.String()
		now[key] = true
		if !p.logged[key] {
			p.log.Warn(pr.Message, "file", pr.File, "line", pr.Line,
				"object", pr.Kind+" "+pr.Namespace+"/"+pr.Name, "field", pr.Field)
		}
	}
	for _, c := range res.Conflicts {
		key := "conflict " + c.Service + " " + c.Host + " " + c.Owner
		now[key] = true
		if !p.logged[key] {
			p.log.Warn("host already claimed by an earlier Service; this one does not serve it",
				"service", c.Service, "host", c.Host, "owner", c.Owner)
		}
	}
	for _, u := range knative.Unsupported(p.objects) {
		cm := u.Namespace + "/" + u.ConfigMap
		key := "unsupported\x00" + cm + "\x00" + u.Key + "\x00" + u.Value
		now[key] = true
		if p.logged[key] {
			continue
		}
		attrs := []any{"configmap", cm, "key", u.Key}
		if u.Why != "" {
			attrs = append(attrs, "why", u.Why)
		}
		if u.Suggest != "" {
			attrs = append(attrs, "did_you_mean", u.Suggest)
		}
		if u.Line > 0 { // a file's, not an API server's
			attrs = append(attrs, "file", u.File, "line", u.Line)
		}
		p.log.Warn(u.Message(), attrs...)
	}
	p.logged = now
	p.log.Debug("pass", "services", len(res.Services), "routes", len(res.Routes),
		"revisions", len(res.Revisions), "problems", len(res.Problems))
}
