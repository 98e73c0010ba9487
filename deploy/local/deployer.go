// Package local is a deploy.Deployer whose pods are local processes, one
// per replica, each on its own loopback port: how `kgate local` runs
// revisions without containers.
//
// A replica runs its container's command and args, or, for a container
// without a command, its image's command from an image map (Images):
// Knative's sample images run `kgate sample`, other images need the user's
// --image NAME=COMMAND. It gets the container's env, PORT (its own port),
// K_SERVICE, K_CONFIGURATION, K_REVISION and KGATE_REPLICA_ID (a random
// mark, see below); it is ready when its readinessProbe (httpGet or
// tcpSocket, by default a TCP connection to the port) says so. A replica
// whose process exits is not ready and is restarted with a capped
// exponential backoff.
//
// A replica scaled away, or of a revision forgotten, is removed as
// Kubernetes and Knative's queue-proxy remove a pod: it stops being ready
// at once (notified, so that it leaves the endpoints), and keeps running
// for the stop delay, for the gateways to hear of it, and then until no
// request is in flight to it (Options.InFlight, as the gateway and the
// activator count them), for up to the revision's timeoutSeconds; only
// then does it get SIGTERM, and SIGKILL after its termination grace
// period (terminationGracePeriodSeconds, by default 30 s). A drain
// finishes even after its revision is gone. Close, for which the data
// plane has drained already, sends SIGTERM at once, then SIGKILL after the
// grace period, and returns once every process is gone.
//
// Each process leads a process group of its own, which is what is
// signalled, so that nothing it started outlives it. No replica outlives
// kgate either: on Linux the kernel sends each SIGKILL when kgate dies,
// even of SIGKILL (its parent-death signal). That does not reach what a
// replica started: Options.OnReplicas lists the live processes for the
// caller to persist, and Reap, at the next start, kills the groups left
// running, recognising each by its replica's start time, or by the mark
// its replica left in their environment (KGATE_REPLICA_ID), so that a
// reused pid is never killed. Outside Linux there is neither.
package local

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/deploy"
	"github.com/kgate/kgate/translator/model"
)

// Defaults of the Options' durations.
const (
	DefaultRestartBackoff    = 100 * time.Millisecond
	DefaultMaxRestartBackoff = 10 * time.Second
)

// drainPoll is how often a replica being removed asks whether requests
// are still in flight to it.
const drainPoll = 20 * time.Millisecond

// Options configure a Deployer.
type Options struct {
	// Resolve returns the command that runs a container image, for
	// containers without a command; nil maps Knative's sample images to
	// this binary's `kgate sample` (DefaultImages).
	Resolve func(image string) (argv []string, ok bool)
	// OnChange is called, without locks held, with a revision whose ready
	// replicas changed. It must not block.
	OnChange func(revision string)
	// OnReplicas is called, without locks held, with every live replica
	// process (stopping ones too) after a process starts or exits, for
	// the caller to persist what Reap takes after a crash. Calls come one
	// at a time, from one goroutine, in order: changes made during a call
	// are all in the next one, and the last call, before Close returns,
	// has the latest list. It must not block long: the list waits for it.
	OnReplicas func([]Record)
	// InFlight returns how many requests are in flight to a replica's
	// address, "127.0.0.1:PORT", as the data plane counts them (in kgate
	// local, the gateway's plus the activator's): a replica scaled away
	// gets SIGTERM only once it is 0, or after the revision's
	// timeoutSeconds. It is called often (every 20 ms of a drain) and
	// must be cheap. nil tracks no request: SIGTERM follows the stop
	// delay.
	InFlight func(addr string) int
	// Logger receives replica starts, exits and stops, and the processes'
	// output, each with the revision and replica; nil discards.
	Logger *slog.Logger
	// StopDelay is how long a replica scaled away keeps running after it
	// stopped being ready, at least, so that the gateways hear of it
	// before they count its requests (InFlight) and before its process
	// stops accepting connections; 0 is at once.
	StopDelay time.Duration
	// MaxGracePeriod, unless 0, bounds the time from SIGTERM to SIGKILL,
	// which is otherwise the revision's terminationGracePeriodSeconds,
	// or DefaultTerminationGracePeriod.
	MaxGracePeriod time.Duration
	// RestartBackoff is the wait before restarting a process that exited;
	// it doubles with each exit in a row up to MaxRestartBackoff, and
	// starts over once a process has run that long. 0 is
	// DefaultRestartBackoff, and DefaultMaxRestartBackoff.
	RestartBackoff, MaxRestartBackoff time.Duration
}

// Deployer runs revisions' replicas as local processes. Close stops them
// all.
type Deployer struct {
	opts     Options
	log      *slog.Logger
	ports    *ports
	spawner  *spawner
	closing  chan struct{}  // closed by Close
	wg       sync.WaitGroup // the replicas' goroutines
	dirty    chan struct{}  // a change for OnReplicas; closed by Close
	notified chan struct{}  // closed once OnReplicas had the last change
	shutdown sync.Once      // what Close does once no process is left

	mu        sync.Mutex
	closed    bool
	revisions map[string]*revision
	live      map[*process]Record // the processes that run
}

var _ deploy.Deployer = (*Deployer)(nil)

type revision struct {
	launch      *launch    // nil until SetRevision
	fingerprint string     // of the revision launch was made from
	replicas    []*replica // the live ones, oldest first; not those stopping
	next        int        // the number of the next replica
}

// New returns a Deployer with no revisions.
func New(opts Options) (*Deployer, error) {
	if opts.Resolve == nil {
		images, err := DefaultImages()
		if err != nil {
			return nil, err
		}
		opts.Resolve = images.Resolve
	}
	opts.RestartBackoff = cmp.Or(opts.RestartBackoff, DefaultRestartBackoff)
	opts.MaxRestartBackoff = max(cmp.Or(opts.MaxRestartBackoff, DefaultMaxRestartBackoff), opts.RestartBackoff)
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Deployer{
		opts:      opts,
		log:       log,
		ports:     newPorts(),
		spawner:   newSpawner(),
		closing:   make(chan struct{}),
		dirty:     make(chan struct{}, 1),
		notified:  make(chan struct{}),
		revisions: map[string]*revision{},
		live:      map[*process]Record{},
	}
	if opts.OnReplicas != nil {
		go d.notifyReplicas()
	} else {
		close(d.notified)
	}
	return d, nil
}

// SetRevision says how to run the revision key ("namespace/name"); it
// must come before the revision is scaled up. Its error says why the
// revision cannot run locally (an *UnmappedImageError for an image with
// no command), the reason to report on a revision that is not ready.
// Setting the same revision again is cheap, so it may be set at every
// reconciliation; replicas already running keep what they run.
func (d *Deployer) SetRevision(key string, rev *servingv1.Revision) error {
	fp, err := fingerprint(rev)
	if err != nil {
		return fmt.Errorf("revision %s: %w", key, err)
	}
	d.mu.Lock()
	r := d.revisions[key]
	same := r != nil && r.launch != nil && r.fingerprint == fp
	d.mu.Unlock()
	if same {
		return nil
	}
	l, err := newLaunch(rev, d.opts.Resolve, d.opts.MaxGracePeriod, d.log.With("revision", key))
	if err != nil {
		return fmt.Errorf("revision %s: %w", key, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r = d.revisions[key]
	if r == nil {
		r = &revision{}
		d.revisions[key] = r
	}
	r.launch, r.fingerprint = l, fp
	return nil
}

// fingerprint is what a launch is made of: the revision's name, labels and
// spec.
func fingerprint(rev *servingv1.Revision) (string, error) {
	b, err := json.Marshal(struct {
		Name   string
		Labels map[string]string
		Spec   servingv1.RevisionSpec
	}{rev.Name, rev.Labels, rev.Spec})
	return string(b), err
}

// Scale starts or stops replicas until the revision has replicas of them.
// Those that are not ready go first, then the newest. It returns at once;
// processes start and stop in the background.
func (d *Deployer) Scale(_ context.Context, key string, replicas int32) error {
	if replicas < 0 {
		return fmt.Errorf("scaling %s: replicas %d is negative", key, replicas)
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return fmt.Errorf("scaling %s: the deployer is closed", key)
	}
	r := d.revisions[key]
	if r == nil || r.launch == nil {
		d.mu.Unlock()
		if replicas == 0 {
			return nil
		}
		return fmt.Errorf("scaling %s: the revision was not set (SetRevision)", key)
	}
	for int32(len(r.replicas)) < replicas {
		r.next++
		rep := &replica{d: d, rev: key, n: r.next, launch: r.launch, stop: make(chan struct{}),
			log: d.log.With("revision", key, "replica", strconv.Itoa(r.next))}
		r.replicas = append(r.replicas, rep)
		d.wg.Go(rep.run)
	}
	wasReady := r.shrink(int(replicas))
	d.mu.Unlock()
	if wasReady {
		d.changed(key)
	}
	return nil
}

// shrink stops replicas until n are left, those not ready first, then the
// newest, and reports whether one it stopped was ready. d.mu is held.
func (r *revision) shrink(n int) (wasReady bool) {
	if len(r.replicas) <= n {
		return false
	}
	// Stable: among the ready, and among the not ready, the newest last.
	slices.SortStableFunc(r.replicas, func(a, b *replica) int { return boolCmp(!a.ready, !b.ready) })
	for _, rep := range r.replicas[n:] {
		wasReady = wasReady || rep.ready
		rep.markStopping()
	}
	r.replicas = slices.Delete(r.replicas, n, len(r.replicas))
	slices.SortFunc(r.replicas, func(a, b *replica) int { return a.n - b.n })
	return wasReady
}

// boolCmp orders false before true.
func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// Ready returns the addresses of the revision's ready replicas, oldest
// first.
func (d *Deployer) Ready(key string) []model.Endpoint {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.revisions[key]
	if r == nil {
		return nil
	}
	var out []model.Endpoint
	for _, rep := range r.replicas {
		if rep.ready {
			out = append(out, rep.endpoint)
		}
	}
	return out
}

// Replicas returns how many replicas the revision runs, ready or not,
// those stopping aside.
func (d *Deployer) Replicas(key string) int32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r := d.revisions[key]; r != nil {
		return int32(len(r.replicas))
	}
	return 0
}

// Forget drops a revision that no longer exists, stopping its replicas if
// it still has any, as a scale to zero does: their drains go on without
// the revision.
func (d *Deployer) Forget(key string) {
	d.mu.Lock()
	wasReady := false
	if r := d.revisions[key]; r != nil {
		wasReady = r.shrink(0)
		delete(d.revisions, key)
	}
	d.mu.Unlock()
	if wasReady {
		d.changed(key)
	}
}

// Close stops every replica, as a scale to zero does but without the stop
// delay, the wait for requests in flight, nor change notifications: each
// process, those being drained too, gets SIGTERM at once and SIGKILL after
// its grace period. It returns once no process is left and OnReplicas had
// the empty list.
func (d *Deployer) Close() {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		close(d.closing)
		for key, r := range d.revisions {
			r.shrink(0)
			delete(d.revisions, key)
		}
	}
	d.mu.Unlock()
	d.wg.Wait()
	// No replica goroutine is left, and none can start: nothing starts a
	// process or changes the list any more.
	d.shutdown.Do(func() {
		d.spawner.close()
		close(d.dirty)
	})
	<-d.notified
}

// setReady records a replica's readiness and notifies the change, if it
// is one. A replica being stopped stays not ready.
func (d *Deployer) setReady(rep *replica, ready bool) (changed bool) {
	d.mu.Lock()
	changed = rep.ready != ready && !(ready && rep.stopping)
	if changed {
		rep.ready = ready
	}
	d.mu.Unlock()
	if changed {
		d.changed(rep.rev)
	}
	return changed
}

// setEndpoint records where a replica's new process listens.
func (d *Deployer) setEndpoint(rep *replica, port int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	rep.endpoint = model.Endpoint{Address: "127.0.0.1", Port: uint32(port)}
}

func (d *Deployer) changed(rev string) {
	if d.opts.OnChange != nil {
		d.opts.OnChange(rev)
	}
}
