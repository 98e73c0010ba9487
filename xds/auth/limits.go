package auth

import (
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kgate/kgate/pki"
)

// Limits bound what clients can make a server hold. Zero fields take the
// defaults, which leave room for a gateway of a 10,000-Service fleet
// (about 20,000 route and 20,000 endpoint names on its stream).
type Limits struct {
	// StreamsPerNode bounds the streams open at once under one node id
	// (xDS and LRS together): Envoy opens one of each, and a reconnecting
	// client may briefly hold two.
	StreamsPerNode int
	// StreamsPerProxylessNode is StreamsPerNode for proxyless gRPC
	// clients: grpc-go opens one ADS stream (and one LRS stream) per
	// channel target, all under one node id, so an application calling
	// many services holds many.
	StreamsPerProxylessNode int
	// Streams bounds the streams open at once in all.
	Streams int
	// NamesPerStream bounds the resource names one stream subscribes to,
	// over every type.
	NamesPerStream int
	// StreamsPerConnection bounds the concurrent streams of one
	// connection (HTTP/2 MAX_CONCURRENT_STREAMS).
	StreamsPerConnection uint32
	// RequestBytes bounds one request message.
	RequestBytes int
}

// Defaults of Limits.
const (
	DefaultStreamsPerNode = 8
	// DefaultStreamsPerProxylessNode allows 128 channel targets.
	DefaultStreamsPerProxylessNode = 256
	DefaultStreams                 = 10_000
	DefaultNamesPerStream          = 100_000
	DefaultStreamsPerConnection    = 16
	// DefaultRequestBytes fits a delta request subscribing 40,000 names
	// of Knative's longest, as a reconnecting gateway sends them.
	DefaultRequestBytes = 8 << 20
)

// WithDefaults fills the zero fields.
func (l Limits) WithDefaults() Limits {
	if l.StreamsPerNode <= 0 {
		l.StreamsPerNode = DefaultStreamsPerNode
	}
	if l.StreamsPerProxylessNode <= 0 {
		l.StreamsPerProxylessNode = DefaultStreamsPerProxylessNode
	}
	if l.Streams <= 0 {
		l.Streams = DefaultStreams
	}
	if l.NamesPerStream <= 0 {
		l.NamesPerStream = DefaultNamesPerStream
	}
	if l.StreamsPerConnection == 0 {
		l.StreamsPerConnection = DefaultStreamsPerConnection
	}
	if l.RequestBytes <= 0 {
		l.RequestBytes = DefaultRequestBytes
	}
	return l
}

// Streams counts the open streams per node, so that one client cannot
// take every stream a server can hold. The xDS and LRS servers share one.
type Streams struct {
	perNode, perProxyless, total int

	mu     sync.Mutex
	open   map[string]int
	opened int
}

// NewStreams returns a counter enforcing l's stream limits.
func NewStreams(l Limits) *Streams {
	l = l.WithDefaults()
	return &Streams{perNode: l.StreamsPerNode, perProxyless: l.StreamsPerProxylessNode, total: l.Streams, open: map[string]int{}}
}

// Acquire counts a stream of node, held by p, or says which limit it
// would pass. The returned release must be called once when the stream
// ends.
func (s *Streams) Acquire(p Peer, node string) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opened >= s.total {
		return nil, fmt.Errorf("the server holds %d streams, its limit", s.total)
	}
	limit := s.perNode
	if p.Identity.Role == pki.Proxyless {
		limit = s.perProxyless
	}
	if s.open[node] >= limit {
		return nil, fmt.Errorf("node %q holds %d streams, the limit per node of its role", node, limit)
	}
	s.open[node]++
	s.opened++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.opened--
			if s.open[node]--; s.open[node] <= 0 {
				delete(s.open, node)
			}
		})
	}, nil
}

// Refusals counts what a server refused, by reason, and logs it: every
// refusal of a reason not seen in the last second, and with it the count
// so far, so that a flood is visible without flooding the log.
type Refusals struct {
	log *slog.Logger
	now func() time.Time

	mu     sync.Mutex
	counts map[string]uint64
	logged map[string]time.Time
}

// NewRefusals returns a tally logging to log.
func NewRefusals(log *slog.Logger) *Refusals {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Refusals{log: log, now: time.Now, counts: map[string]uint64{}, logged: map[string]time.Time{}}
}

// Reasons refused, as counted.
const (
	ReasonUnauthenticated = "unauthenticated"
	ReasonNode            = "node_id"
	ReasonType            = "type_not_allowed"
	ReasonStreams         = "streams"
	ReasonNames           = "names"
	ReasonLoadReport      = "load_report_role"
)

// Reasons lists every reason, for exporters that show the zeros too.
var Reasons = []string{ReasonUnauthenticated, ReasonNode, ReasonType, ReasonStreams, ReasonNames, ReasonLoadReport}

// Refuse counts a refusal and returns the gRPC error that ends the
// stream: PermissionDenied, or ResourceExhausted for a limit.
func (r *Refusals) Refuse(reason string, p Peer, err error) error {
	r.mu.Lock()
	r.counts[reason]++
	n := r.counts[reason]
	now := r.now()
	loud := now.Sub(r.logged[reason]) >= time.Second
	if loud {
		r.logged[reason] = now
	}
	r.mu.Unlock()
	if loud {
		r.log.Warn("control plane refused a client", "reason", reason, "peer", p.String(), "error", err.Error(), "refused_so_far", n)
	}
	code := codes.PermissionDenied
	if reason == ReasonStreams || reason == ReasonNames {
		code = codes.ResourceExhausted
	}
	return status.Error(code, err.Error())
}

// Counts returns the refusals so far, by reason.
func (r *Refusals) Counts() map[string]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.counts)
}

// Gate is what the servers on one port share: the limits, the open
// streams per node and the refusals.
type Gate struct {
	Limits   Limits
	Streams  *Streams
	Refusals *Refusals
}

// NewGate returns a gate enforcing l (defaults for zero fields) and
// logging refusals to log.
func NewGate(l Limits, log *slog.Logger) *Gate {
	l = l.WithDefaults()
	return &Gate{Limits: l, Streams: NewStreams(l), Refusals: NewRefusals(log)}
}
