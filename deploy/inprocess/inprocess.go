// Package inprocess is a deploy.Deployer whose pods are HTTP servers in
// this process, each on its own loopback port: real sockets and real
// readiness delays, without processes. Tests and benchmarks of the
// autoscaler and the activator use it.
package inprocess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/kgate/kgate/deploy"
	"github.com/kgate/kgate/translator/model"
)

// Options configure a Deployer.
type Options struct {
	// Handler returns the application a revision's pods serve; required.
	Handler func(revision string) http.Handler
	// StartDelay is how long a new pod takes to become ready (a container
	// starting); 0 is at once.
	StartDelay time.Duration
	// StopDelay is how long a pod keeps serving after it stopped being
	// ready, so that the gateways hear of it before its socket closes
	// (Knative's queue-proxy drain); 0 is at once.
	StopDelay time.Duration
	// OnChange is called, without locks held, with a revision whose ready
	// pods changed. It must not block.
	OnChange func(revision string)
	// Logger receives pod starts and stops at debug level; nil discards.
	Logger *slog.Logger
}

// Deployer runs pods as in-process HTTP servers. Close stops them all.
type Deployer struct {
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	revisions map[string]*revision
	closed    bool
	wg        sync.WaitGroup
}

var _ deploy.Deployer = (*Deployer)(nil)

type revision struct {
	pods []*pod // oldest first
}

type pod struct {
	srv      *http.Server
	endpoint model.Endpoint
	ready    bool
	// stop is closed when the pod is stopped; it ends a start delay early.
	stop chan struct{}
}

// New returns a Deployer with no pods.
func New(opts Options) (*Deployer, error) {
	if opts.Handler == nil {
		return nil, errors.New("inprocess deployer: Options.Handler is required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Deployer{opts: opts, log: log, revisions: map[string]*revision{}}, nil
}

// Scale starts or stops pods until the revision has replicas of them; the
// newest go first, as a Deployment's scale-down removes the youngest.
func (d *Deployer) Scale(_ context.Context, rev string, replicas int32) error {
	if replicas < 0 {
		return fmt.Errorf("scaling %s: replicas %d is negative", rev, replicas)
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return fmt.Errorf("scaling %s: the deployer is closed", rev)
	}
	r := d.revisions[rev]
	if r == nil {
		r = &revision{}
		d.revisions[rev] = r
	}
	var started []*pod
	var errs []error
	for int32(len(r.pods)) < replicas {
		p, err := d.start(rev)
		if err != nil {
			errs = append(errs, err)
			break
		}
		r.pods = append(r.pods, p)
		started = append(started, p)
	}
	var stopped []*pod
	for int32(len(r.pods)) > replicas {
		p := r.pods[len(r.pods)-1]
		r.pods = r.pods[:len(r.pods)-1]
		stopped = append(stopped, p)
	}
	d.mu.Unlock()

	for _, p := range started {
		d.goReady(rev, p)
	}
	if len(stopped) > 0 {
		d.changed(rev)
		for _, p := range stopped {
			d.goStop(rev, p, d.opts.StopDelay)
		}
	}
	return errors.Join(errs...)
}

// start listens for a new pod; it serves at once but is not ready until
// the start delay has passed. d.mu is held.
func (d *Deployer) start(rev string) (*pod, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting a pod of %s: %w", rev, err)
	}
	addr := lis.Addr().(*net.TCPAddr)
	p := &pod{
		srv:      &http.Server{Handler: d.opts.Handler(rev), ReadHeaderTimeout: 10 * time.Second},
		endpoint: model.Endpoint{Address: addr.IP.String(), Port: uint32(addr.Port)},
		stop:     make(chan struct{}),
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := p.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("pod stopped serving", "revision", rev, "address", lis.Addr().String(), "error", err)
		}
	}()
	d.log.Debug("pod started", "revision", rev, "address", net.JoinHostPort(p.endpoint.Address, strconv.Itoa(addr.Port)))
	return p, nil
}

// goReady marks the pod ready once the start delay has passed, unless it
// is stopped first.
func (d *Deployer) goReady(rev string, p *pod) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		t := time.NewTimer(d.opts.StartDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-p.stop:
			return
		}
		d.mu.Lock()
		// A pod stopped meanwhile is no longer in its revision's list,
		// and Close drops every revision.
		r := d.revisions[rev]
		live := r != nil && slices.Contains(r.pods, p)
		if live {
			p.ready = true
		}
		d.mu.Unlock()
		if live {
			d.changed(rev)
		}
	}()
}

// goStop stops a pod that is no longer ready: after delay it refuses new
// connections and lets in-flight requests complete.
func (d *Deployer) goStop(rev string, p *pod, delay time.Duration) {
	close(p.stop)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		time.Sleep(delay)
		if err := p.srv.Shutdown(context.Background()); err != nil {
			d.log.Error("stopping a pod", "revision", rev, "error", err)
		}
		d.log.Debug("pod stopped", "revision", rev, "address", p.endpoint.Address)
	}()
}

func (d *Deployer) changed(rev string) {
	if d.opts.OnChange != nil {
		d.opts.OnChange(rev)
	}
}

// Ready returns the revision's ready pods, oldest first.
func (d *Deployer) Ready(rev string) []model.Endpoint {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.revisions[rev]
	if r == nil {
		return nil
	}
	var out []model.Endpoint
	for _, p := range r.pods {
		if p.ready {
			out = append(out, p.endpoint)
		}
	}
	return out
}

// Replicas returns how many pods the revision runs, ready or not.
func (d *Deployer) Replicas(rev string) int32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r := d.revisions[rev]; r != nil {
		return int32(len(r.pods))
	}
	return 0
}

// Close stops every pod at once, letting in-flight requests complete, and
// waits for them.
func (d *Deployer) Close() {
	d.mu.Lock()
	d.closed = true
	var all []*pod
	for rev, r := range d.revisions {
		all = append(all, r.pods...)
		delete(d.revisions, rev)
	}
	d.mu.Unlock()
	for _, p := range all {
		d.goStop("", p, 0)
	}
	d.wg.Wait()
}
