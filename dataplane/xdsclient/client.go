package xdsclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Options configure a Client.
type Options struct {
	// Node identifies the client to the server.
	Node Node
	// Logger receives stream failures and NACKs; nil discards them (Err
	// still reports them).
	Logger *slog.Logger
	// Backoff paces reconnections.
	Backoff Backoff
	// MaxRecvMsgSize bounds one message the client receives, in bytes;
	// 0 means DefaultMaxRecvMsgSize. It overrides the connection's default
	// call options.
	MaxRecvMsgSize int
}

// DefaultMaxRecvMsgSize is the largest message a Client receives unless
// Options say otherwise: 128 MiB, where grpc-go's default is 4 MiB.
//
// kgate's server splits its delta responses at 1 MiB of resources
// (xds.DefaultMaxDeltaResponseBytes), but a server that does not (an older
// kgate, another control plane) sends a type's whole state in one message,
// as state-of-the-world LDS and CDS always are; at 4 MiB such a client
// received nothing at 5,000 Services. The 128 MiB take the largest of those
// at a 10,000-Service fleet with room to spare: a cluster is about 570
// bytes and a proxyless API listener about 470, so 128 MiB holds some
// 230,000 clusters, 23 revisions for each of 10,000 Services (Knative keeps
// up to 20 inactive ones by default), or the 40,000 API listeners of their
// four hosts each five times over. It stays a bound: grpc-go checks a
// message's length before reading it, so a broken or hostile server cannot
// make the client allocate more than this for one message.
const DefaultMaxRecvMsgSize = 128 << 20

// Client is a delta ADS client: it watches resource types over one
// DeltaAggregatedResources stream and keeps that stream open. Its methods
// are safe for concurrent use.
type Client struct {
	ads     discoveryv3.AggregatedDiscoveryServiceClient
	node    *corev3.Node
	log     *slog.Logger
	backoff Backoff
	maxRecv int
	// outage follows the ADS stream's failures: what Err reports and how
	// they are logged.
	outage  *outage
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
	maxRecv := opts.MaxRecvMsgSize
	if maxRecv <= 0 {
		maxRecv = DefaultMaxRecvMsgSize
	}
	log := orDiscard(opts.Logger)
	return &Client{
		ads:     discoveryv3.NewAggregatedDiscoveryServiceClient(conn),
		node:    node,
		log:     log,
		backoff: opts.Backoff.withDefaults(),
		maxRecv: maxRecv,
		outage:  newOutage(log, "delta ADS"),
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
	retry(ctx, c.backoff, c.outage, c.runStream)
	return nil
}

// runStream runs one ADS stream until it fails or ctx ends.
func (c *Client) runStream(ctx context.Context) (healthy bool, err error) {
	st, err := open(ctx, c.ads.DeltaAggregatedResources, grpc.MaxCallRecvMsgSize(c.maxRecv))
	if err != nil {
		return false, err
	}
	defer st.close()

	s := &session{c: c, stream: st, sent: map[*Watch]map[string]struct{}{}}
	if err := s.sync(); err != nil {
		return false, c.explain(st.sendFailed(err))
	}
	for {
		select {
		case err := <-st.ended:
			return healthy, c.explain(err)
		case resp := <-st.received:
			if !healthy {
				c.outage.recovered()
			}
			healthy = true
			if err := s.answer(resp); err != nil {
				return healthy, c.explain(st.sendFailed(err))
			}
			// The handler may have changed subscriptions.
			if err := s.sync(); err != nil {
				return healthy, c.explain(st.sendFailed(err))
			}
		case <-c.changed:
			if err := s.sync(); err != nil {
				return healthy, c.explain(st.sendFailed(err))
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

// explain adds the client's limit to a receive failure it caused: grpc-go
// says only "received message larger than max".
func (c *Client) explain(err error) error {
	if status.Code(err) == codes.ResourceExhausted {
		return fmt.Errorf("%w (this client takes messages of up to %d bytes: Options.MaxRecvMsgSize)", err, c.maxRecv)
	}
	return err
}

// Err says why the client does not follow the control plane, nil when it
// does: a readiness probe can take it as is. It is not nil while
//
//   - the stream fails for a reason reconnecting does not cure: the client
//     cannot receive what the server sends (a message past
//     Options.MaxRecvMsgSize: codes.ResourceExhausted), or the server
//     refuses the stream; until a stream receives a response;
//   - a watch subscribed to Wildcard has not accepted a response yet,
//     its handler having rejected the first, or none having come (the
//     stream failing for any reason, or not open yet: before Run).
//
// A stream the control plane closed, or cannot be reached on, leaves a
// client that has received its config ready: it keeps what it has, as
// Envoy does, and reconnects; a restart of the control plane must not take
// every activator out of rotation at once. A response rejected after the
// first leaves it ready too: its handler's previous state stands, and one
// bad resource must not take it out either (the NACK is logged here, at
// error level when the response could not be decoded, and by the server).
// Watches of names alone do not count: a server need not answer for a
// name it does not have.
func (c *Client) Err() error {
	streamErr, failures, since := c.outage.state()
	if streamErr != nil && !transient(streamErr) {
		return fmt.Errorf("xdsclient: %d delta ADS streams in a row failed since %s: %w", failures, since.Format(time.RFC3339), streamErr)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.order {
		if _, wildcard := w.want[Wildcard]; !wildcard || w.synced {
			continue
		}
		switch {
		case w.rejected != nil:
			return fmt.Errorf("xdsclient: rejected the first %s response: %w", w.typeURL, w.rejected)
		case streamErr != nil:
			return fmt.Errorf("xdsclient: no %s response yet; %d delta ADS streams in a row failed since %s: %w", w.typeURL, failures, since.Format(time.RFC3339), streamErr)
		default:
			return fmt.Errorf("xdsclient: no %s response yet", w.typeURL)
		}
	}
	return nil
}
