package activator

import (
	"errors"
	"log"
	"log/slog"
	"net/http"
	"sync"
	"time"

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
	// Timeout is the revision's timeoutSeconds: a request must get a pod
	// and its response must start within it, counted from arrival.
	// 0 means DefaultTimeout.
	Timeout time.Duration
}

// Options configure an Activator.
type Options struct {
	// QueueDepth is how many requests may wait per revision before the
	// next is refused with 503; 0 means DefaultQueueDepth.
	QueueDepth int
	// OnPoke, when set, is called with a revision's key when a request
	// starts waiting for a revision that has no pod and no request waiting
	// yet: the first demand for a scale from zero, to report at once
	// rather than at the next tick. It runs on the request's goroutine: it
	// must not block.
	OnPoke func(revision string)
	// Logger receives proxy errors; nil discards them.
	Logger *slog.Logger
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
	return &Activator{
		queueDepth: depth,
		onPoke:     opts.OnPoke,
		log:        logger,
		proxyLog:   slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		transports: newTransports(),
		revisions:  map[string]*revision{},
	}
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
	a.revisionFor(key).setConfig(cfg)
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
	status := 0
	defer func() { rev.end(status) }()
	status = a.serve(w, r, rev, cfg, arrived.Add(cfg.Timeout))
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
// the client was answered with (0 if the client left first).
func (a *Activator) serve(w http.ResponseWriter, r *http.Request, rev *revision, cfg *RevisionConfig, deadline time.Time) int {
	p, err := rev.acquire(r.Context(), deadline)
	switch {
	case err == nil:
		defer rev.release(p)
		return a.proxy(w, r, rev, cfg, p.addr, deadline)
	case errors.Is(err, errQueueFull):
		return reject(w, http.StatusServiceUnavailable,
			"revision %s: %d requests already wait for a pod (queue full); retry later", rev.key, a.queueDepth)
	case errors.Is(err, errWaitTimeout):
		return reject(w, http.StatusGatewayTimeout,
			"revision %s: no pod was ready to take the request within the revision's timeout (%s)", rev.key, cfg.Timeout)
	case errors.Is(err, errRevisionDeleted):
		return reject(w, http.StatusServiceUnavailable, "revision %s was deleted while the request waited", rev.key)
	default:
		// The client went away while waiting: nobody reads an answer.
		return 0
	}
}
