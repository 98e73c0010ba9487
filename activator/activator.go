package activator

import (
	"errors"
	"log"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/kgate/kgate/dataplane/inflight"
	"github.com/kgate/kgate/dataplane/tracing"
	"github.com/kgate/kgate/translator/model"
)

// Headers naming the revision a request is for. Knative's ingress sets
// both on every split, and so does kgate's gateway.
const (
	NamespaceHeader = "Knative-Serving-Namespace"
	RevisionHeader  = "Knative-Serving-Revision"
)

// Defaults, as in Knative.
const (
	// DefaultQueueDepth is how many requests may wait per revision.
	DefaultQueueDepth = 10000
	// DefaultTimeout is a revision's default timeoutSeconds.
	DefaultTimeout = 300 * time.Second
)

// RevisionConfig is what the activator needs to know of a revision.
type RevisionConfig struct {
	// ContainerConcurrency is the most requests one pod takes at once;
	// 0 means no limit.
	ContainerConcurrency int
	// Protocol is what the pods speak: h2c or HTTP/1.1.
	Protocol model.Protocol
	// Timeout is the revision's timeoutSeconds: it bounds the whole
	// request, counted from arrival (504 when no response started by
	// then, the response cut when one is under way). 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// ResponseStartTimeout is the revision's responseStartTimeoutSeconds:
	// a request must get a pod and its response must start within it,
	// counted from arrival (504 otherwise). 0 is none.
	ResponseStartTimeout time.Duration
	// IdleTimeout is the revision's idleTimeoutSeconds: nothing may come
	// back for longer, counted from arrival and then from each byte of
	// the response (504 before the response, the response cut after).
	// 0 is none.
	IdleTimeout time.Duration
	// Service and Configuration are the revision's Knative Service and
	// Configuration ("" when none), for the metrics' labels.
	Service, Configuration string
}

// Options configure an Activator.
type Options struct {
	// QueueDepth is how many requests may wait per revision before the
	// next is refused with 503; 0 means DefaultQueueDepth.
	QueueDepth int
	// MaxHeld bounds the requests the activator has at once across every
	// revision, waiting for a pod or proxied to one: each holds file
	// descriptors (see inflight.Budget). The next is refused with 503 at
	// once. 0 means inflight.DefaultBudget().Held, an eighth of what the
	// process's file limit leaves after its reserve.
	MaxHeld int
	// MaxHeldPerRevision bounds the requests one revision has at once
	// inside MaxHeld, so that one busy revision leaves room to the others;
	// the next is refused with 503 at once. 0 means half of MaxHeld (when
	// both are 0, inflight.DefaultBudget().HeldPerRevision); more than
	// MaxHeld means MaxHeld.
	MaxHeldPerRevision int
	// Inflight, when set, counts every request proxied to a pod, by the
	// pod's "host:port", from before it is sent until its response has
	// been copied in full (an upgraded connection, until it closes). kgate
	// local shares one with its dev gateway, and its deployer stops a
	// replica once nothing is in flight to it.
	Inflight *inflight.Counter
	// OnPoke, when set, is called with a revision's key when a request
	// starts waiting for a revision that has no pod and no request waiting
	// yet: the first demand for a scale from zero, to report at once
	// rather than at the next tick. It runs on the request's goroutine: it
	// must not block.
	OnPoke func(revision string)
	// Logger receives proxy errors; nil discards them.
	Logger *slog.Logger
	// Registerer, when set, gets the activator's Prometheus metrics:
	// Knative's activator_request_count and activator_request_latencies,
	// and the requests held and shed per revision (see
	// docs/observability.md). nil records none.
	Registerer prometheus.Registerer
	// TracerProvider, when set, traces requests: a server span per request
	// (the child of its traceparent), a client span per request proxied to
	// a pod, whose context goes on in traceparent. nil traces nothing.
	TracerProvider trace.TracerProvider
}

// Activator is the activator's http.Handler. Its methods are safe for
// concurrent use.
type Activator struct {
	queueDepth int
	onPoke     func(string)
	log        *slog.Logger
	// proxyLog is log for httputil.ReverseProxy, which wants a log.Logger.
	proxyLog   *log.Logger
	transports transports
	buffers    bufferPool
	active     activeRequests
	inflight   *inflight.Counter

	// maxHeld and maxHeldPerRevision are Options' MaxHeld and
	// MaxHeldPerRevision with the defaults applied; held counts the
	// requests admitted under them and not yet answered.
	maxHeld, maxHeldPerRevision int64
	held                        atomic.Int64

	// metrics is nil without Options.Registerer.
	metrics *metrics
	// tracer is nil without Options.TracerProvider.
	tracer *tracing.Tracer

	mu sync.RWMutex
	// revisions are keyed "namespace/name".
	revisions map[string]*revision
}

// New returns an Activator that knows no revision yet.
func New(opts Options) *Activator {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	depth := opts.QueueDepth
	if depth <= 0 {
		depth = DefaultQueueDepth
	}
	maxHeld, perRevision := heldLimits(opts.MaxHeld, opts.MaxHeldPerRevision)
	a := &Activator{
		queueDepth:         depth,
		maxHeld:            int64(maxHeld),
		maxHeldPerRevision: int64(perRevision),
		inflight:           opts.Inflight,
		onPoke:             opts.OnPoke,
		log:                logger,
		proxyLog:           slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		transports:         newTransports(),
		revisions:          map[string]*revision{},
	}
	a.metrics = newMetrics(a, opts.Registerer)
	a.tracer = tracing.New(opts.TracerProvider, "github.com/kgate/kgate/activator")
	return a
}

// heldLimits applies the defaults of Options.MaxHeld and
// Options.MaxHeldPerRevision. The file limit is read only when MaxHeld is
// unset.
func heldLimits(total, perRevision int) (int, int) {
	if total <= 0 {
		b := inflight.DefaultBudget()
		total = b.Held
		if perRevision <= 0 {
			perRevision = b.HeldPerRevision
		}
	}
	if perRevision <= 0 {
		perRevision = max(total/2, 1)
	}
	return total, min(perRevision, total)
}

// SetRevision adds the revision keyed "namespace/name" or changes its
// configuration. The protocol and timeout apply to requests arriving from
// now on; a new containerConcurrency applies at once: a larger one admits
// waiting requests, a smaller one lets the requests above it finish.
func (a *Activator) SetRevision(key string, cfg RevisionConfig) {
	if cfg.ContainerConcurrency < 0 {
		cfg.ContainerConcurrency = 0
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	rev := a.revisionFor(key)
	rev.metrics.setOwners(cfg.Service, cfg.Configuration)
	rev.setConfig(cfg)
}

// SetEndpoints makes eps the ready pods of the revision keyed
// "namespace/name". Waiting requests go to new pods at once. A pod left
// out takes no new request and its requests in flight complete. Endpoints
// may be set before SetRevision; the revision takes requests only after.
func (a *Activator) SetEndpoints(key string, eps []model.Endpoint) {
	a.revisionFor(key).setEndpoints(eps)
}

// DeleteRevision forgets the revision keyed "namespace/name": the requests
// waiting for it are answered 503, those in flight complete, and new ones
// get 404.
func (a *Activator) DeleteRevision(key string) {
	a.mu.Lock()
	rev := a.revisions[key]
	delete(a.revisions, key)
	a.mu.Unlock()
	if rev != nil {
		rev.delete()
		rev.metrics.delete()
	}
}

// Stats returns every revision's demand now, by key.
func (a *Activator) Stats() map[string]RevisionStats {
	a.mu.RLock()
	revs := make([]*revision, 0, len(a.revisions))
	for _, rev := range a.revisions {
		revs = append(revs, rev)
	}
	a.mu.RUnlock()
	stats := make(map[string]RevisionStats, len(revs))
	for _, rev := range revs {
		stats[rev.key] = rev.snapshot()
	}
	return stats
}

// revisionFor returns the revision keyed key, adding it if new.
func (a *Activator) revisionFor(key string) *revision {
	a.mu.Lock()
	defer a.mu.Unlock()
	rev := a.revisions[key]
	if rev == nil {
		rev = newRevision(key, a.queueDepth, a.onPoke)
		rev.metrics = a.metrics.forRevision(key)
		a.revisions[key] = rev
	}
	return rev
}

// lookupNamed returns the revision keyed "ns/name", nil if unknown. It
// runs on every request, so it builds the key on the stack: indexing a map
// with string(bytes) does not allocate.
func (a *Activator) lookupNamed(ns, name string) *revision {
	var buf [128]byte
	key := append(append(append(buf[:0], ns...), '/'), name...)
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.revisions[string(key)]
}

// ServeHTTP proxies r to a pod of the revision its headers name, waiting
// for one if needed.
func (a *Activator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	if a.tracer != nil {
		var end func()
		w, r, end = a.tracer.Serve(w, r)
		defer end()
	}
	ns, name, missing := revisionHeaders(r.Header)
	if missing != "" {
		reject(w, http.StatusBadRequest, "missing header %s: the gateway names the revision of every request it sends to the activator", missing)
		return
	}
	rev := a.lookupNamed(ns, name)
	var cfg *RevisionConfig
	if rev != nil {
		cfg = rev.config()
	}
	if cfg == nil {
		reject(w, http.StatusNotFound, "unknown revision %q (headers %s and %s)", ns+"/"+name, NamespaceHeader, RevisionHeader)
		return
	}

	a.active.add()
	defer a.active.done()
	rev.begin()
	status, shedding := 0, false
	defer func() {
		rev.end(status, shedding)
		if rev.metrics != nil {
			rev.metrics.observe(status, arrived)
		}
	}()
	if status = a.admit(w, r, rev); status != 0 {
		shedding = true
		return
	}
	defer a.leave(rev)
	status, shedding = a.serve(w, r, rev, cfg, timeoutsOf(arrived, cfg))
}

// admit counts r against the revision's share and the activator's
// ceiling, and returns 0 when it may wait or be proxied. Otherwise it
// answers r 503 and returns that; the caller must call leave only for a
// request admitted.
func (a *Activator) admit(w http.ResponseWriter, r *http.Request, rev *revision) int {
	if n := rev.held.Add(1); n > a.maxHeldPerRevision {
		rev.held.Add(-1)
		return shed(w, r, "revision %s: %d requests already held for it, its share of the activator; retry later",
			rev.key, a.maxHeldPerRevision)
	}
	if n := a.held.Add(1); n > a.maxHeld {
		a.held.Add(-1)
		rev.held.Add(-1)
		return shed(w, r, "%d requests already held across revisions, as many as the activator takes; retry later", a.maxHeld)
	}
	return 0
}

// leave counts out a request admit admitted.
func (a *Activator) leave(rev *revision) {
	rev.held.Add(-1)
	a.held.Add(-1)
}

// revisionHeaders returns the namespace and name of the revision the
// headers name, or the first header missing.
func revisionHeaders(h http.Header) (ns, name, missing string) {
	ns = h.Get(NamespaceHeader)
	if ns == "" {
		return "", "", NamespaceHeader
	}
	name = h.Get(RevisionHeader)
	if name == "" {
		return "", "", RevisionHeader
	}
	return ns, name, ""
}

// serve waits for a slot on a pod, proxies r there and returns the status
// the client was answered with (0 if the client left first), and whether
// it was shed because the revision's line was full.
func (a *Activator) serve(w http.ResponseWriter, r *http.Request, rev *revision, cfg *RevisionConfig, tm timeouts) (status int, shedding bool) {
	startBy, what, d := tm.startBy()
	p, err := rev.acquire(r.Context(), startBy)
	switch {
	case err == nil:
		defer rev.release(p)
		return a.proxy(w, r, rev, cfg, p.addr, tm), false
	case errors.Is(err, errQueueFull):
		return shed(w, r, "revision %s: %d requests already wait for a pod (queue full); retry later", rev.key, a.queueDepth), true
	case errors.Is(err, errWaitTimeout):
		return reject(w, http.StatusGatewayTimeout,
			"revision %s: no pod was ready to take the request within the revision's %s (%s)", rev.key, what, d), false
	case errors.Is(err, errRevisionDeleted):
		return shed(w, r, "revision %s was deleted while the request waited", rev.key), false
	default:
		// The client went away while waiting: nobody reads an answer.
		return 0, false
	}
}
