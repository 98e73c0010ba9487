// Package loop runs the autoscaler: it feeds the pure decider of package
// autoscale with the data plane's load and the deployer's ready pods, and
// applies its decisions — replicas to the deployer, Proxy/Serve endpoints
// to the xDS engine. It is the autoscaler's I/O edge: the clock, the
// goroutine and the locks live here, the decisions in autoscale.
//
// Order matters where traffic could be lost: a revision's endpoints are
// pushed before its scale changes, so that traffic moves to the activator
// before the last pod goes, and a pod leaves the endpoints (the deployer
// stops reporting it ready) before it stops serving.
package loop

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/autoscale"
	"github.com/kgate/kgate/autoscale/metrics"
	"github.com/kgate/kgate/deploy"
	"github.com/kgate/kgate/translator/model"
)

// Metrics is where load comes from: the LRS server's per-revision sums.
type Metrics interface {
	// Collect returns, per revision, the in-flight requests now and the
	// requests issued since the previous call.
	Collect(now time.Time) map[string]model.Stat
}

// Endpoints is where a revision's endpoints and mode go: the xDS engine.
type Endpoints interface {
	SetEndpoints(model.RevisionEndpoints) error
	DeleteEndpoints(revision string) error
}

// Revision is a revision to scale.
type Revision struct {
	// Key is "namespace/name".
	Key  string
	Spec autoscale.RevisionSpec
	// Service and Configuration name the revision's Service (empty when
	// none) and Configuration: labels of its metrics.
	Service, Configuration string
	// External says another autoscaler scales the revision (Kubernetes'
	// HorizontalPodAutoscaler, for Knative's HPA class): the loop makes no
	// decision for it and never scales it, and routes its traffic straight
	// to its ready pods (Serve, the activators out of the path, as Knative
	// does for that class), following them as they change.
	External bool
}

// same says whether r asks for what o does.
func (r Revision) same(o Revision) bool {
	return r.Key == o.Key && r.Service == o.Service && r.Configuration == o.Configuration && r.External == o.External &&
		r.Spec.ContainerConcurrency == o.Spec.ContainerConcurrency && r.Spec.Unreachable == o.Spec.Unreachable &&
		r.Spec.ProgressDeadline == o.Spec.ProgressDeadline && maps.Equal(r.Spec.Annotations, o.Spec.Annotations)
}

// Options configure a Loop.
type Options struct {
	Deployer  deploy.Deployer
	Endpoints Endpoints
	Metrics   Metrics
	// Activators are the activators' addresses. Proxy mode routes a
	// revision to a subset of them; with none, every revision is served by
	// its pods directly (Knative: no activator endpoints forces Serve).
	Activators []model.Endpoint
	// OnDecision, when set, is called with every decision applied, for
	// status reporting. It runs on the loop's goroutine: it must not block.
	OnDecision func(autoscale.Decision)
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer, when set, gets the autoscaler's Prometheus metrics, with
	// Knative's names and labels, and each revision's routing mode (see
	// docs/observability.md). nil records none.
	Registerer prometheus.Registerer
}

// Loop owns an autoscale.Autoscaler. Run drives it in real time; Sample
// and Tick let a test drive it with a fake clock. Its methods are safe
// for concurrent use.
type Loop struct {
	opts    Options
	log     *slog.Logger
	metrics *promMetrics

	mu       sync.Mutex
	as       *autoscale.Autoscaler
	cfg      config.Autoscaler
	revs     map[string]Revision
	spare    map[string]Revision // the revs before last, reused (Configure)
	applied  map[string]applied
	invalid  map[string]error
	decision map[string]autoscale.Decision
	// external are the revisions another autoscaler scales
	// (Revision.External).
	external map[string]bool

	// Pokes and readiness changes wait here for Run, coalesced. They have
	// their own lock: the deployer may report a change from inside a
	// Scale the loop calls with mu held.
	pendMu  sync.Mutex
	pokes   map[string]bool
	changed map[string]bool
	wake    chan struct{}
}

// applied is what was last pushed for a revision.
type applied struct {
	replicas  int32
	endpoints model.RevisionEndpoints
	// recorded is what the revision's metrics were last set from; every
	// tick decides every revision, mostly as before, and setting a dozen
	// labelled series for each of 10,000 revisions was most of a tick
	// (held under l.mu, which a controller's round waits for).
	recorded *recordedMetrics
}

// recordedMetrics is everything promMetrics.record reads.
type recordedMetrics struct {
	service, configuration string
	decision               autoscale.Decision
	metric                 string
	target                 float64
	mode                   model.Mode
	pods                   int
	requested              int32
}

// New returns a Loop scaling no revision yet.
func New(opts Options) (*Loop, error) {
	if opts.Deployer == nil || opts.Endpoints == nil || opts.Metrics == nil {
		return nil, errors.New("autoscaler loop: Deployer, Endpoints and Metrics are required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Loop{
		opts: opts, log: log, metrics: newPromMetrics(opts.Registerer),
		as:       autoscale.New(),
		cfg:      config.DefaultAutoscaler(),
		revs:     map[string]Revision{},
		applied:  map[string]applied{},
		invalid:  map[string]error{},
		decision: map[string]autoscale.Decision{},
		external: map[string]bool{},
		wake:     make(chan struct{}, 1),
		pokes:    map[string]bool{},
		changed:  map[string]bool{},
	}, nil
}

// Configure sets config-autoscaler and the revisions to scale, as of now:
// new revisions start, changed ones take their new settings, missing ones
// stop being scaled (their endpoints are removed and their pods scaled to
// zero). It returns the revisions whose settings are invalid, by key, each
// error naming the bad key; those are not scaled, and the others are.
func (l *Loop) Configure(ctx context.Context, now time.Time, cfg config.Autoscaler, revs []Revision) map[string]error {
	l.mu.Lock()
	defer l.mu.Unlock()
	sameCfg := reflect.DeepEqual(l.cfg, cfg)
	l.cfg = cfg
	// Two maps take turns as l.revs (a controller calls this twice a
	// round, with 10,000 revisions): the one before last is cleared and
	// filled again rather than allocated.
	prev, next := l.revs, l.spare
	if next == nil {
		next = make(map[string]Revision, len(revs))
	}
	clear(next)
	for _, r := range revs {
		next[r.Key] = r
	}
	var gone []string
	for key := range prev {
		if _, ok := next[key]; !ok {
			gone = append(gone, key)
		}
	}
	slices.Sort(gone)
	for _, key := range gone {
		l.remove(ctx, key)
	}
	l.revs, l.spare = next, prev
	invalid := map[string]error{}
	external := map[string]bool{}
	for _, key := range sortedKeys(revs, next) {
		old, hadOld := prev[key]
		ext, err := l.configure(ctx, now, cfg, next[key], old, hadOld && sameCfg)
		if ext {
			external[key] = true
		}
		if err != nil {
			invalid[key] = err
		}
	}
	l.invalid = invalid
	l.external = external
	return maps.Clone(invalid)
}

// Update is Configure for what changed since the last Configure or
// Update: the revisions of set are configured as Configure configures
// them (new ones start, changed ones take their new settings), those of
// gone stop being scaled, and every other revision stands as it is. With
// a config-autoscaler other than the last, every revision is configured
// again under it. It returns the errors of the revisions configured whose
// settings are invalid. A controller with 10,000 revisions hands over the
// few that changed, not all of them, each round.
func (l *Loop) Update(ctx context.Context, now time.Time, cfg config.Autoscaler, set []Revision, gone []string) map[string]error {
	l.mu.Lock()
	defer l.mu.Unlock()
	sameCfg := reflect.DeepEqual(l.cfg, cfg)
	l.cfg = cfg
	for _, key := range slices.Sorted(slices.Values(gone)) {
		if _, ok := l.revs[key]; !ok {
			continue
		}
		delete(l.revs, key)
		l.remove(ctx, key)
		delete(l.invalid, key)
		delete(l.external, key)
	}
	old := make(map[string]Revision, len(set))
	for _, r := range set {
		if o, ok := l.revs[r.Key]; ok {
			old[r.Key] = o
		}
		l.revs[r.Key] = r
	}
	var keys []string
	if sameCfg {
		for _, r := range set {
			keys = append(keys, r.Key)
		}
		slices.Sort(keys)
		keys = slices.Compact(keys)
	} else {
		keys = slices.Sorted(maps.Keys(l.revs))
	}
	invalid := map[string]error{}
	for _, key := range keys {
		o, hadOld := old[key]
		if !sameCfg {
			o, hadOld = Revision{}, false
		}
		ext, err := l.configure(ctx, now, cfg, l.revs[key], o, hadOld)
		if ext {
			l.external[key] = true
		} else {
			delete(l.external, key)
		}
		if err != nil {
			invalid[key] = err
			l.invalid[key] = err
		} else {
			delete(l.invalid, key)
		}
	}
	return invalid
}

// configure sets up one revision, r, in the autoscaler: another
// autoscaler's is handed over, invalid settings are logged once and
// returned, and new or changed settings are set (a new revision starting
// at its initial scale now). old is what it was configured with last
// (hadOld: at the same config-autoscaler), to leave it as it is when
// nothing changed. It reads l.external and l.invalid as they were before
// this change, and the caller updates them. l.mu is held.
func (l *Loop) configure(ctx context.Context, now time.Time, cfg config.Autoscaler, r Revision, old Revision, hadOld bool) (external bool, err error) {
	key := r.Key
	if r.External {
		l.handOver(key)
		l.serveExternal(key)
		return true, nil
	}
	if l.external[key] {
		// Back from another autoscaler: scaled and routed afresh.
		delete(l.applied, key)
	} else if hadOld && old.same(r) && l.invalid[key] == nil && l.as.Revision(key) != nil {
		// As it was: its settings stand, and Handle keeps its ready
		// pods. At 10,000 revisions, parsing every one's settings
		// again each round held the loop's lock for tens of ms.
		return false, nil
	}
	s, err := autoscale.NewSettings(cfg, r.Spec)
	if err != nil {
		if l.invalid[key] == nil {
			l.log.Error("not scaling revision: invalid autoscaling settings", "revision", key, "error", err)
		}
		return false, fmt.Errorf("revision %s: %w", key, err)
	}
	isNew := l.as.Revision(key) == nil
	l.as.Set(now, key, s, int32(len(l.opts.Deployer.Ready(key))))
	if isNew {
		// A new revision starts at its initial scale now, not at the
		// next tick.
		l.poke(ctx, now, key)
	}
	return false, nil
}

// StartsAtZero says whether Configure's first decision for a revision new
// to the loop, r under cfg, is zero replicas: what it decides with no pod
// ready and no demand yet. A controller may count such a revision Ready
// from the moment it makes it, rather than wait for the decision (Knative:
// Ready at zero, not Active). Invalid settings and another autoscaler's
// revisions (r.External) are not decided here: false.
func StartsAtZero(now time.Time, cfg config.Autoscaler, r Revision) bool {
	if r.External {
		return false
	}
	s, err := autoscale.NewSettings(cfg, r.Spec)
	if err != nil {
		return false
	}
	return autoscale.NewRevision(now, s, 0).Tick(now).Replicas == 0
}

// sortedKeys are the keys of revs in order, each once. Callers hand
// revisions over sorted already (a Result's order), which is checked
// rather than sorted again.
func sortedKeys(revs []Revision, byKey map[string]Revision) []string {
	keys := make([]string, 0, len(byKey))
	if slices.IsSortedFunc(revs, func(a, b Revision) int { return strings.Compare(a.Key, b.Key) }) {
		for i, r := range revs {
			if i == 0 || revs[i-1].Key != r.Key {
				keys = append(keys, r.Key)
			}
		}
		return keys
	}
	return slices.Sorted(maps.Keys(byKey))
}

// handOver stops the KPA's scaling of a revision that another autoscaler
// scales now, leaving its pods as they are for that one. l.mu is held.
func (l *Loop) handOver(key string) {
	if l.as.Revision(key) == nil {
		return
	}
	l.as.Delete(key)
	delete(l.decision, key)
	delete(l.applied, key)
	l.metrics.delete(key)
}

// serveExternal routes a revision another autoscaler scales straight to
// its ready pods, when that changes what was pushed. l.mu is held.
func (l *Loop) serveExternal(key string) {
	eps := model.RevisionEndpoints{Revision: key, Mode: model.Serve, Pods: l.opts.Deployer.Ready(key)}
	if prev, seen := l.applied[key]; seen && equalEndpoints(prev.endpoints, eps) {
		return
	}
	if err := l.opts.Endpoints.SetEndpoints(eps); err != nil {
		l.log.Error("pushing a revision's endpoints", "revision", key, "mode", eps.Mode, "error", err)
	}
	l.applied[key] = applied{endpoints: eps}
}

// remove stops scaling a revision. l.mu is held. A revision another
// autoscaler scaled is left at its scale: its pods go with it.
func (l *Loop) remove(ctx context.Context, key string) {
	external := l.external[key]
	delete(l.external, key)
	l.as.Delete(key)
	delete(l.applied, key)
	delete(l.decision, key)
	l.metrics.delete(key)
	if err := l.opts.Endpoints.DeleteEndpoints(key); err != nil {
		l.log.Error("removing a revision's endpoints", "revision", key, "error", err)
	}
	if external {
		return
	}
	if err := l.opts.Deployer.Scale(ctx, key, 0); err != nil {
		l.log.Error("scaling a removed revision to zero", "revision", key, "error", err)
	}
}

// SetActivators replaces the activators' addresses (in Kubernetes they
// come and go with the activator's pods) and re-pushes the endpoints of
// every revision whose subset or mode changes with them.
func (l *Loop) SetActivators(ctx context.Context, acts []model.Endpoint) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if slices.Equal(l.opts.Activators, acts) {
		return
	}
	l.opts.Activators = slices.Clone(acts)
	for _, key := range slices.Sorted(maps.Keys(l.decision)) {
		l.apply(ctx, l.decision[key]) // the same decision, with the activators as they are now
	}
}

// Demand says a revision has requests waiting (the LRS server's or the
// activator's poke): a revision at zero is scaled at once rather than at
// the next tick. It does not block.
func (l *Loop) Demand(rev string) {
	l.pendMu.Lock()
	l.pokes[rev] = true
	l.pendMu.Unlock()
	l.signal()
}

// EndpointsChanged says a revision's ready pods changed (the deployer's
// notification). It does not block.
func (l *Loop) EndpointsChanged(rev string) {
	l.pendMu.Lock()
	l.changed[rev] = true
	l.pendMu.Unlock()
	l.signal()
}

func (l *Loop) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Decisions returns the latest decision of every scaled revision.
func (l *Loop) Decisions() map[string]autoscale.Decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.decision)
}

// Modes returns where each scaled revision's traffic was last sent:
// Proxy (the activators) or Serve (its pods), as pushed to the engine.
func (l *Loop) Modes() map[string]model.Mode {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]model.Mode, len(l.applied))
	for key, a := range l.applied {
		out[key] = a.endpoints.Mode
	}
	return out
}

// Run samples the load every second and decides every
// autoscale.TickInterval, and handles pokes and readiness changes as they
// come, until ctx ends.
func (l *Loop) Run(ctx context.Context) error {
	sample := time.NewTicker(metrics.BucketSize)
	defer sample.Stop()
	tick := time.NewTicker(autoscale.TickInterval)
	defer tick.Stop()
	// Samples are recorded one bucket apart whatever the timer's jitter,
	// so that no bucket gets two samples of the same in-flight level.
	next := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-sample.C:
			if now.Sub(next) > 2*metrics.BucketSize {
				next = now // the loop was held up: resynchronise
			}
			l.Sample(ctx, next)
			next = next.Add(metrics.BucketSize)
		case now := <-tick.C:
			l.Tick(ctx, now)
		case <-l.wake:
			l.Handle(ctx, time.Now())
		}
	}
}

// Sample records one second of load: every revision's in-flight requests
// and requests since the previous sample. A revision at zero that reports
// load is decided at once.
func (l *Loop) Sample(ctx context.Context, now time.Time) {
	stats := l.opts.Metrics.Collect(now)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, key := range slices.Sorted(maps.Keys(stats)) {
		if l.as.Revision(key) == nil {
			continue
		}
		if l.as.Record(now, key, stats[key]) {
			l.poke(ctx, now, key)
		}
	}
}

// Tick decides every revision and applies what changed.
func (l *Loop) Tick(ctx context.Context, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range l.as.Tick(now) {
		l.apply(ctx, d)
	}
}

// Handle applies the pokes and readiness changes received since the last
// call.
func (l *Loop) Handle(ctx context.Context, now time.Time) {
	l.pendMu.Lock()
	changed, pokes := l.changed, l.pokes
	l.changed, l.pokes = map[string]bool{}, map[string]bool{}
	l.pendMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, key := range slices.Sorted(maps.Keys(changed)) {
		if l.external[key] {
			l.serveExternal(key)
			continue
		}
		if l.as.Revision(key) == nil {
			continue
		}
		l.as.SetReady(key, int32(len(l.opts.Deployer.Ready(key))))
		if d, ok := l.decision[key]; ok {
			l.apply(ctx, d) // the same decision, with the pods as they are now
		}
	}
	for _, key := range slices.Sorted(maps.Keys(pokes)) {
		r := l.as.Revision(key)
		if r == nil {
			continue
		}
		// What the activator reports for the first request of an idle
		// period (Knative's poke): one request in flight.
		if l.as.Record(now, key, model.Stat{Concurrency: 1, Requests: 1}) {
			l.poke(ctx, now, key)
		}
	}
}

// poke decides one revision at once. l.mu is held.
func (l *Loop) poke(ctx context.Context, now time.Time, key string) {
	if d, ok := l.as.Poke(now, key); ok {
		l.apply(ctx, d)
	}
}

// apply pushes a decision: the endpoints first, then the scale. l.mu is
// held.
func (l *Loop) apply(ctx context.Context, d autoscale.Decision) {
	key := d.Revision
	l.decision[key] = d
	prev, seen := l.applied[key]
	eps := l.endpoints(d)
	if !seen || !equalEndpoints(prev.endpoints, eps) {
		if err := l.opts.Endpoints.SetEndpoints(eps); err != nil {
			l.log.Error("pushing a revision's endpoints", "revision", key, "mode", eps.Mode, "error", err)
		}
		prev.endpoints = eps
	}
	if !seen || prev.replicas != d.Replicas {
		if err := l.opts.Deployer.Scale(ctx, key, d.Replicas); err != nil {
			l.log.Error("scaling a revision", "revision", key, "replicas", d.Replicas, "error", err)
		} else {
			l.log.Info("scaled revision", "revision", key, "replicas", d.Replicas,
				"desired", d.DesiredScale, "mode", eps.Mode, "panicking", d.Panicking)
		}
		prev.replicas = d.Replicas
	}
	if l.metrics != nil {
		if r := l.as.Revision(key); r != nil {
			rev, s := l.revs[key], r.Settings()
			m := recordedMetrics{service: rev.Service, configuration: rev.Configuration, decision: d, metric: s.Metric,
				target: s.TargetValue, mode: prev.endpoints.Mode, pods: len(prev.endpoints.Pods), requested: prev.replicas}
			if prev.recorded == nil || *prev.recorded != m {
				l.metrics.record(rev, d, s, prev.endpoints, prev.replicas)
				prev.recorded = new(recordedMetrics)
				*prev.recorded = m
			}
		}
	}
	l.applied[key] = prev
	if l.opts.OnDecision != nil {
		l.opts.OnDecision(d)
	}
}

// endpoints is where the revision's traffic goes under decision d, given
// the pods ready now and the activators:
//   - no ready pod: the activators, which hold requests until one is;
//   - containerConcurrency > 0: the activators, which enforce it per pod
//     (a gateway cannot);
//   - no activators: the pods;
//   - else the decision's mode.
func (l *Loop) endpoints(d autoscale.Decision) model.RevisionEndpoints {
	pods := l.opts.Deployer.Ready(d.Revision)
	acts := l.opts.Activators
	mode := d.Mode
	switch {
	case len(acts) == 0:
		mode = model.Serve
	case len(pods) == 0 || l.revs[d.Revision].Spec.ContainerConcurrency > 0:
		mode = model.Proxy
	}
	return model.RevisionEndpoints{
		Revision:   d.Revision,
		Mode:       mode,
		Pods:       pods,
		Activators: subset(acts, d.Activators, d.Revision),
	}
}

// subset picks n of the activators for a revision by rendezvous hashing:
// each revision gets its own stable choice, and an activator joining or
// leaving moves only the revisions it wins or held. n < 1 is taken as 1.
func subset(acts []model.Endpoint, n int32, rev string) []model.Endpoint {
	if len(acts) == 0 {
		return nil
	}
	n = max(n, 1)
	if int(n) >= len(acts) {
		return slices.Clone(acts)
	}
	type scored struct {
		ep    model.Endpoint
		score uint64
	}
	all := make([]scored, len(acts))
	for i, ep := range acts {
		h := fnv.New64a()
		h.Write([]byte(rev + "\x00" + ep.Address + ":" + strconv.FormatUint(uint64(ep.Port), 10)))
		all[i] = scored{ep, h.Sum64()}
	}
	slices.SortFunc(all, func(a, b scored) int { return cmp.Compare(b.score, a.score) })
	out := make([]model.Endpoint, n)
	for i := range out {
		out[i] = all[i].ep
	}
	return out
}

func equalEndpoints(a, b model.RevisionEndpoints) bool {
	return a.Revision == b.Revision && a.Mode == b.Mode &&
		slices.Equal(a.Pods, b.Pods) && slices.Equal(a.Activators, b.Activators)
}
