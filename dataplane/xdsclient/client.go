package xdsclient

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
)

// Options configure a Client.
type Options struct {
	// Node identifies the client to the server.
	Node Node
	// Logger receives stream failures and NACKs; nil discards them.
	Logger *slog.Logger
	// Backoff paces reconnections.
	Backoff Backoff
}

// Client is a delta ADS client: it watches resource types over one
// DeltaAggregatedResources stream and keeps that stream open. Its methods
// are safe for concurrent use.
type Client struct {
	ads     discoveryv3.AggregatedDiscoveryServiceClient
	node    *corev3.Node
	log     *slog.Logger
	backoff Backoff
	running atomic.Bool

	mu sync.Mutex
	// watches are by type URL; order is the order they were added in,
	// which is the order their first requests go in (CDS before EDS, as
	// Envoy does).
	watches map[string]*Watch
	order   []*Watch
	// changed wakes Run when a subscription changed; it holds at most one
	// wake-up, which covers every change made before Run takes it.
	changed chan struct{}
}

// New returns a client that will speak to the server behind conn once Run
// is called. conn may be shared, with a LoadReporter for instance.
func New(conn grpc.ClientConnInterface, opts Options) (*Client, error) {
	node, err := opts.Node.proto()
	if err != nil {
		return nil, err
	}
	return &Client{
		ads:     discoveryv3.NewAggregatedDiscoveryServiceClient(conn),
		node:    node,
		log:     orDiscard(opts.Logger),
		backoff: opts.Backoff.withDefaults(),
		watches: map[string]*Watch{},
		changed: make(chan struct{}, 1),
	}, nil
}

// Watch starts watching typeURL with h, subscribed to names (Wildcard for
// every resource of the type; none to subscribe later). It may be called
// before or while Run runs. A type is watched once: a second Watch of the
// same type is a programming error, and panics.
func (c *Client) Watch(typeURL string, h Handler, names ...string) *Watch {
	w := &Watch{c: c, typeURL: typeURL, handler: h, want: map[string]struct{}{}, versions: map[string]string{}}
	c.mu.Lock()
	if _, dup := c.watches[typeURL]; dup {
		c.mu.Unlock()
		panic("xdsclient: " + typeURL + " is watched twice")
	}
	c.watches[typeURL] = w
	c.order = append(c.order, w)
	c.mu.Unlock()
	w.Subscribe(names...)
	return w
}

// wake tells Run that a subscription changed.
func (c *Client) wake() {
	select {
	case c.changed <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// Run keeps the stream open until ctx ends, reopening it after failures,
// and calls the handlers with what the server sends. It returns nil once
// ctx ends, with every goroutine it started ended; it fails only when
// called twice.
func (c *Client) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("xdsclient: Client.Run called twice")
	}
	retry(ctx, c.backoff, c.log, "delta ADS", c.runStream)
	return nil
}

// runStream runs one ADS stream until it fails or ctx ends.
func (c *Client) runStream(ctx context.Context) (healthy bool, err error) {
	st, err := open(ctx, c.ads.DeltaAggregatedResources)
	if err != nil {
		return false, err
	}
	defer st.close()

	s := &session{c: c, stream: st, sent: map[*Watch]map[string]struct{}{}}
	if err := s.sync(); err != nil {
		return false, err
	}
	for {
		select {
		case err := <-st.ended:
			return healthy, err
		case resp := <-st.received:
			healthy = true
			if err := s.answer(resp); err != nil {
				return healthy, err
			}
			// The handler may have changed subscriptions.
			if err := s.sync(); err != nil {
				return healthy, err
			}
		case <-c.changed:
			if err := s.sync(); err != nil {
				return healthy, err
			}
		}
	}
}

// watch returns the watch of typeURL, nil if none.
func (c *Client) watch(typeURL string) *Watch {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.watches[typeURL]
}
