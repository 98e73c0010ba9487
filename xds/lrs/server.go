package lrs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	loadstatsv3 "github.com/envoyproxy/go-control-plane/envoy/service/load_stats/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/xds/auth"
)

// Defaults of Options.
const (
	// DefaultInterval is how often reporters are asked to report: the
	// autoscaler's one-second buckets.
	DefaultInterval = time.Second
	// maxAgeIntervals is MaxAge's default, in intervals.
	maxAgeIntervals = 3
)

// Options configure a Server.
type Options struct {
	// Logger receives stream events and, at debug level, the input it
	// ignores; nil discards them.
	Logger *slog.Logger
	// Interval is the load_reporting_interval reporters are asked for
	// (default DefaultInterval).
	Interval time.Duration
	// MaxAge is how long a silent reporter's last in-flight count still
	// counts (default 3 × Interval); see the package doc. It should span
	// a few intervals.
	MaxAge time.Duration
	// OnDemand, when set, is called with a revision key ("<ns>/<rev>") for
	// every report that shows requests in flight for the revision, from a
	// gateway or from the activator, so that a revision at zero can be
	// scaled at once rather than at the next tick; the caller decides
	// whether it is at zero. It runs on the stream's goroutine with no lock
	// held: it must not block.
	OnDemand func(revision string)
	// Now stamps reports as they arrive (default time.Now). Collect's now
	// must come from the same clock.
	Now func() time.Time
	// Gate bounds the streams per node and counts refusals; share the xDS
	// server's (xds.Server.Gate). nil: a gate of its own with the default
	// limits.
	Gate *auth.Gate
}

// Server is the load reporting server. It implements
// loadstatsv3.LoadReportingServiceServer and xds.Service, to be served next
// to xDS; Collect hands its aggregate to the autoscaler.
type Server struct {
	loadstatsv3.UnimplementedLoadReportingServiceServer

	log      *slog.Logger
	interval time.Duration
	onDemand func(string)
	now      func() time.Time
	table    *table
	gate     *auth.Gate

	done    chan struct{}
	stopped sync.Once

	// applied, when set, is called after each request is applied: tests
	// wait on it, since LRS acknowledges nothing.
	applied func()
}

// New returns a Server with no streams.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = maxAgeIntervals * opts.Interval
	}
	if opts.OnDemand == nil {
		opts.OnDemand = func(string) {}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Gate == nil {
		opts.Gate = auth.NewGate(auth.Limits{}, opts.Logger)
	}
	return &Server{
		log:      opts.Logger,
		interval: opts.Interval,
		onDemand: opts.OnDemand,
		now:      opts.Now,
		table:    newTable(opts.MaxAge),
		gate:     opts.Gate,
		done:     make(chan struct{}),
	}
}

// Register adds the load reporting service to g.
func (s *Server) Register(g *grpc.Server) {
	loadstatsv3.RegisterLoadReportingServiceServer(g, s)
}

// Stop ends the open streams and refuses new ones, with Unavailable so
// that reporters reconnect. Collect still works.
func (s *Server) Stop() {
	s.stopped.Do(func() { close(s.done) })
}

// Collect returns, per revision key, the load reported for it: each
// side's in-flight counts of the reporters heard from within MaxAge before
// now, added up, and its requests issued since the previous Collect; of
// the two sides, gateways and activators, the larger (see the package
// doc). A revision nobody reports is absent.
//
// Call it once per second: the autoscaler adds up the reports it records
// in the same second, so a second Collect within one would count the
// in-flight requests twice.
func (s *Server) Collect(now time.Time) map[string]model.Stat {
	return s.table.collect(now)
}

// errStopped ends the streams of a stopped server.
var errStopped = status.Error(codes.Unavailable, "load reporting server stopped")

// StreamLoadStats serves one reporter: it answers the first request with
// the reporting parameters, then applies every report until the stream
// ends or the server stops.
func (s *Server) StreamLoadStats(stream loadstatsv3.LoadReportingService_StreamLoadStatsServer) error {
	select {
	case <-s.done:
		return errStopped
	default:
	}
	p, err := s.admit(stream.Context())
	if err != nil {
		return err
	}
	id := s.table.open()
	defer s.table.close(id)

	// A blocked Recv returns only once the client sends or this handler
	// returns, so it runs on its own goroutine: the handler waits on it
	// and on Stop.
	received := make(chan receipt)
	quit := make(chan struct{})
	defer close(quit)
	go receive(stream, received, quit)

	log := s.log.With("stream", id)
	for first := true; ; first = false {
		var r receipt
		select {
		case <-s.done:
			log.Debug("load report stream stopped")
			return errStopped
		case r = <-received:
		}
		if r.err != nil {
			return ended(log, r.err)
		}
		if first {
			release, err := s.bind(p, r.req.GetNode())
			if err != nil {
				return err
			}
			defer release()
			log = opened(log, r.req)
			if err := stream.Send(s.response()); err != nil {
				return fmt.Errorf("answering load report stream %d: %w", id, err)
			}
		}
		s.apply(log, id, r.req)
	}
}

// admit refuses a stream whose client's reports must not count: an
// observer's, or one without an identity on a server with TLS (gRPC's
// handshake refuses those before they get here).
func (s *Server) admit(ctx context.Context) (auth.Peer, error) {
	p, err := auth.PeerOf(ctx)
	if err != nil {
		return p, s.gate.Refusals.Refuse(auth.ReasonUnauthenticated, p, err)
	}
	if !p.ReportsCount() {
		return p, s.gate.Refusals.Refuse(auth.ReasonLoadReport, p, fmt.Errorf("role %s may not report load", p.Identity.Role))
	}
	return p, nil
}

// bind checks the node a stream's first report names against the peer's
// certificate, and counts the stream against the node's limit.
func (s *Server) bind(p auth.Peer, node *corev3.Node) (release func(), err error) {
	if err := p.CheckNode(node.GetId()); err != nil {
		return nil, s.gate.Refusals.Refuse(auth.ReasonNode, p, err)
	}
	release, err = s.gate.Streams.Acquire(p, node.GetId())
	if err != nil {
		return nil, s.gate.Refusals.Refuse(auth.ReasonStreams, p, err)
	}
	return release, nil
}

// receipt is one Recv's result.
type receipt struct {
	req *loadstatsv3.LoadStatsRequest
	err error
}

// receive passes the stream's requests on until Recv fails or quit closes.
func receive(stream loadstatsv3.LoadReportingService_StreamLoadStatsServer,
	received chan<- receipt, quit <-chan struct{},
) {
	for {
		req, err := stream.Recv()
		select {
		case received <- receipt{req: req, err: err}:
		case <-quit:
			return
		}
		if err != nil {
			return
		}
	}
}

// opened logs a stream's reporter and returns the stream's logger.
func opened(log *slog.Logger, first *loadstatsv3.LoadStatsRequest) *slog.Logger {
	node := first.GetNode()
	if node == nil {
		// The node only names the reporter in logs: its reports count all
		// the same.
		log.Debug("load report stream without a node")
	}
	log = log.With("node", node.GetId())
	log.Debug("load report stream opened", "user_agent", node.GetUserAgentName())
	return log
}

// response asks for every cluster's load each interval.
func (s *Server) response() *loadstatsv3.LoadStatsResponse {
	return &loadstatsv3.LoadStatsResponse{
		SendAllClusters:       true,
		LoadReportingInterval: durationpb.New(s.interval),
	}
}

// ended logs why a stream ended and returns what the handler returns: nil
// when the reporter closed it.
func ended(log *slog.Logger, err error) error {
	if errors.Is(err, io.EOF) {
		log.Debug("load report stream closed")
		return nil
	}
	log.Debug("load report stream ended", "error", err)
	return fmt.Errorf("receiving load report: %w", err)
}

// apply records one report's load, by side, and signals the demand it
// shows, once per revision and after the table's lock is released.
func (s *Server) apply(log *slog.Logger, id uint64, req *loadstatsv3.LoadStatsRequest) {
	at := s.now()
	loads := map[sideRev]load{}
	demand := map[string]bool{}
	for _, cs := range req.GetClusterStats() {
		rev, side, l, ok := readCluster(log, cs)
		if !ok {
			continue
		}
		// One report may carry a cluster twice, with disjoint loads (per
		// EDS service name, say).
		key := sideRev{side, rev}
		sum, ok := loads[key].plus(l)
		if !ok {
			log.Debug("ignoring implausible load", "cluster", cs.GetClusterName())
			continue
		}
		loads[key] = sum
		if l.inFlight > 0 {
			demand[rev] = true
		}
	}
	s.table.record(id, at, loads)
	for rev := range demand {
		s.onDemand(rev)
	}
	if s.applied != nil {
		s.applied()
	}
}

// readCluster returns the revision a cluster's stats are about, from which
// side, and their load; ok is false for input to ignore, which it logs.
func readCluster(log *slog.Logger, cs *endpointv3.ClusterStats) (rev string, sd side, l load, ok bool) {
	name := cs.GetClusterName()
	rev, sd, ok = revisionOf(name)
	if !ok {
		log.Debug("ignoring load of a cluster that is no revision's", "cluster", clip(name))
		return "", 0, load{}, false
	}
	l, ok = loadOf(cs)
	if !ok {
		log.Debug("ignoring implausible load", "cluster", name)
		return "", 0, load{}, false
	}
	return rev, sd, l, true
}

// clip shortens a name for a log line: a reporter may send anything.
func clip(name string) string {
	const keep = 2 * maxClusterName
	if len(name) <= keep {
		return name
	}
	return name[:keep] + "…"
}
