// Package xds serves the translator's Envoy resources over xDS: aggregated
// discovery (ADS), state-of-the-world and delta, on one gRPC server.
//
// Resources live in one cache per type (typeCache), so every resource
// carries its own version and one change re-sends only the resources it
// touched, at a cost that does not grow with the number of resources a
// delta client subscribes to. Two kinds of node read them:
//
//   - Gateways (Envoy, the dev gateway): a wildcard LDS gets the gateway
//     listeners "external" and "internal", never an API listener.
//   - Proxyless gRPC clients (node user_agent_name starting with "gRPC"):
//     LDS by host name gets the API listener "<host>", never a gateway
//     listener.
//
// Route configurations, scoped routes, clusters and cluster load
// assignments are shared by both kinds: every node gets the same config.
//
// The Engine is the only writer of the caches; the Server only reads them,
// logs NACKs and records what each connected node ACKed (see Server.Acked).
package xds

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	clusterservicev3 "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservicev3 "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservicev3 "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservicev3 "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	sotwv3 "github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kgate/kgate/xds/auth"
)

// NodeKind says which listeners a node is served.
type NodeKind string

// Node kinds.
const (
	// Gateway is Envoy or the dev gateway: it gets the gateway listeners.
	Gateway NodeKind = "gateway"
	// Proxyless is a proxyless gRPC client: it gets API listeners.
	Proxyless NodeKind = "proxyless"
)

// KindOf classifies a node by its user agent: grpc-go, grpc-java and
// grpc-c++ all send a user_agent_name starting with "gRPC".
func KindOf(node *corev3.Node) NodeKind {
	if strings.HasPrefix(node.GetUserAgentName(), "gRPC") {
		return Proxyless
	}
	return Gateway
}

// defaultShutdownGrace bounds how long Serve waits for RPCs to end.
const defaultShutdownGrace = 5 * time.Second

// ServerOptions configure a Server.
type ServerOptions struct {
	// Logger receives NACKs and stream events; nil discards them.
	Logger *slog.Logger
	// VersionPrefix starts every version the server hands out. Empty means
	// NewVersionPrefix: a restarted server must never reuse a version, or a
	// reconnecting client holding it would not be sent the new state.
	VersionPrefix string
	// OnACK, when set, is called after a node ACKs a response, with the
	// node's id and the response's type URL. It runs on the stream's
	// goroutine: it must not block.
	OnACK func(nodeID, typeURL string)
	// ShutdownGrace bounds how long Serve waits for RPCs to end once its
	// context is cancelled (default 5s); then it closes them.
	ShutdownGrace time.Duration
	// Services are served next to xDS, on the same gRPC server and port:
	// the data plane reports load (LRS) to the address it gets config from.
	Services []Service
	// TLS, when set, makes the server require a client certificate naming
	// a kgate identity (see pki.ServerConfig); the role it names decides
	// what the client may receive. nil serves plaintext to anonymous
	// clients, allowed everything: for a development server on loopback.
	TLS *tls.Config
	// Gate holds the limits and counts the refusals; share it with the
	// Services on the same port. nil: a gate with the default limits.
	Gate *auth.Gate
	// MaxDeltaResponseBytes bounds the resources of one delta response;
	// the rest follows once the client answers (0: 1 MiB, see
	// DefaultMaxDeltaResponseBytes).
	MaxDeltaResponseBytes int
	// StaleAfter is how long a gateway may leave a response unanswered
	// before Waiting stops waiting for it and names it instead (default
	// DefaultStaleAfter).
	StaleAfter time.Duration
	// Registerer, when set, gets the server's Prometheus metrics (see
	// docs/observability.md): connected clients, pushes, push latency,
	// NACKs, ACK lag, and the gate's refusals. nil records none.
	Registerer prometheus.Registerer
}

// DefaultStaleAfter is ServerOptions.StaleAfter's default: far above the
// milliseconds a healthy gateway takes to ACK, short enough that one stuck
// gateway does not hold every Route's readiness for long.
const DefaultStaleAfter = 30 * time.Second

// Service is a gRPC service served next to xDS.
type Service interface {
	// Register adds the service to g.
	Register(g *grpc.Server)
	// Stop ends the service's open streams. Serve calls it when it stops,
	// as it ends the xDS streams, so that a graceful stop does not wait
	// for long-lived streams.
	Stop()
}

// Server is the xDS server: the caches the Engine writes and the gRPC
// services that read them.
type Server struct {
	log    *slog.Logger
	prefix string
	grace  time.Duration

	// caches holds one cache per type, by mux key: two for listeners
	// (gatewayLDS, apiLDS), the type URL for every other type.
	caches map[string]*typeCache

	xds      serverv3.Server
	stop     context.CancelFunc
	services []Service
	acks     *ackTracker
	guard    *guard
	gate     *auth.Gate
	tls      *tls.Config
	stale    time.Duration
	closed   sync.Once
	metrics  *metrics
}

// Mux keys for the two listener caches; every other type is keyed by its
// type URL.
const (
	gatewayLDS = "lds/" + string(Gateway)
	apiLDS     = "lds/" + string(Proxyless)
)

// NewServer returns a server with empty caches. Its streams end when ctx is
// cancelled or Serve returns.
func NewServer(ctx context.Context, opts ServerOptions) *Server {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	prefix := opts.VersionPrefix
	if prefix == "" {
		prefix = NewVersionPrefix(time.Now())
	}
	grace := opts.ShutdownGrace
	if grace <= 0 {
		grace = defaultShutdownGrace
	}
	gate := opts.Gate
	if gate == nil {
		gate = auth.NewGate(auth.Limits{}, logger)
	}
	stale := opts.StaleAfter
	if stale <= 0 {
		stale = DefaultStaleAfter
	}
	cacheLog := cacheLogger{logger}
	newCache := func(typeURL string) *typeCache {
		return newTypeCache(typeURL, prefix, cacheLog, withMaxDeltaBytes(opts.MaxDeltaResponseBytes))
	}
	m := newMetrics(opts.Registerer, gate)
	s := &Server{
		metrics: m,
		log:     logger,
		prefix:  prefix,
		grace:   grace,
		caches: map[string]*typeCache{
			gatewayLDS:               newCache(resource.ListenerType),
			apiLDS:                   newCache(resource.ListenerType),
			resource.ScopedRouteType: newCache(resource.ScopedRouteType),
			resource.RouteType:       newCache(resource.RouteType),
			resource.ClusterType:     newCache(resource.ClusterType),
			resource.EndpointType:    newCache(resource.EndpointType),
			resource.SecretType: newTypeCache(resource.SecretType, prefix, cacheLog,
				withMaxDeltaBytes(opts.MaxDeltaResponseBytes), withAbsentAsRemoved()),
		},
		services: opts.Services,
		guard:    newGuard(opts.TLS != nil, gate, m),
		gate:     gate,
		tls:      opts.TLS,
	}
	s.acks = newAckTracker(logger, opts.OnACK, s.guard.peer)
	s.acks.metrics = m
	s.stale = stale
	mux := &cache.MuxCache{
		Classify: func(r *cache.Request) string {
			return muxKey(r.GetTypeUrl(), r.GetNode())
		},
		ClassifyDelta: func(r *cache.DeltaRequest) string {
			return muxKey(r.GetTypeUrl(), r.GetNode())
		},
		Caches: map[string]cache.Cache{},
	}
	for key, c := range s.caches {
		mux.Caches[key] = c
	}
	// The go-control-plane server ends its streams when this context ends;
	// Serve cancels it so that a graceful stop does not wait forever on
	// long-lived ADS streams.
	srvCtx, stop := context.WithCancel(ctx)
	s.stop = stop
	s.xds = serverv3.NewServer(srvCtx, mux, s.callbacks(), sotwv3.WithLogger(cacheLog))
	return s
}

// callbacks run the guard before the ACK tracker: a refused request ends
// its stream before anything records it.
func (s *Server) callbacks() serverv3.Callbacks {
	acks := s.acks.callbacks()
	g := s.guard
	return serverv3.CallbackFuncs{
		StreamOpenFunc: func(ctx context.Context, id int64, typeURL string) error {
			return g.opened(ctx, streamKey{id: id}, typeURL)
		},
		DeltaStreamOpenFunc: func(ctx context.Context, id int64, typeURL string) error {
			return g.opened(ctx, streamKey{delta: true, id: id}, typeURL)
		},
		StreamClosedFunc: func(id int64, node *corev3.Node) {
			acks.StreamClosedFunc(id, node)
			g.closed(streamKey{id: id})
		},
		DeltaStreamClosedFunc: func(id int64, node *corev3.Node) {
			acks.DeltaStreamClosedFunc(id, node)
			g.closed(streamKey{delta: true, id: id})
		},
		StreamRequestFunc: func(id int64, req *discoveryv3.DiscoveryRequest) error {
			if err := g.request(streamKey{id: id}, req.GetNode(), req.GetTypeUrl(), req.GetResourceNames(), nil, true); err != nil {
				return err
			}
			return acks.StreamRequestFunc(id, req)
		},
		StreamDeltaRequestFunc: func(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
			if err := g.request(streamKey{delta: true, id: id}, req.GetNode(), req.GetTypeUrl(), req.GetResourceNamesSubscribe(), req.GetResourceNamesUnsubscribe(), false); err != nil {
				return err
			}
			return acks.StreamDeltaRequestFunc(id, req)
		},
		StreamResponseFunc: func(ctx context.Context, id int64, req *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
			if s.metrics != nil {
				s.metrics.pushed(req.GetTypeUrl(), len(resp.GetResources()), s.changedAt(req.GetTypeUrl(), req.GetResponseNonce() != ""))
			}
			acks.StreamResponseFunc(ctx, id, req, resp)
		},
		StreamDeltaResponseFunc: func(id int64, req *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
			if s.metrics != nil {
				// A request that subscribes to new names is answered for
				// the subscription, not for a change.
				push := req.GetResponseNonce() != "" && len(req.GetResourceNamesSubscribe()) == 0
				s.metrics.pushed(req.GetTypeUrl(), len(resp.GetResources()), s.changedAt(req.GetTypeUrl(), push))
			}
			acks.StreamDeltaResponseFunc(id, req, resp)
		},
	}
}

// changedAt is when the resources of typeURL last changed, for the push
// latency of a response that push says answers a change (a client already
// subscribed); zero otherwise. Both listener caches count for LDS.
func (s *Server) changedAt(typeURL string, push bool) time.Time {
	if !push {
		return time.Time{}
	}
	if typeURL == resource.ListenerType {
		a, b := s.caches[gatewayLDS].changed.last(), s.caches[apiLDS].changed.last()
		if a.After(b) {
			return a
		}
		return b
	}
	if c, ok := s.caches[typeURL]; ok {
		return c.changed.last()
	}
	return time.Time{}
}

// Refusals are the requests and streams refused so far, by reason (see
// package auth), counting those of the Services sharing the gate.
func (s *Server) Refusals() map[string]uint64 { return s.gate.Refusals.Counts() }

// Gate is the server's gate, for the Services sharing its port.
func (s *Server) Gate() *auth.Gate { return s.gate }

// muxKey picks the cache serving a request. A type with no cache gets an
// error from the MuxCache, which ends the stream: the translator references
// none.
func muxKey(typeURL string, node *corev3.Node) string {
	if typeURL == resource.ListenerType {
		return "lds/" + string(KindOf(node))
	}
	return typeURL
}

// NewVersionPrefix returns a version prefix unique to this process start:
// the start time in base 36 and a random suffix, so that two servers
// started in the same nanosecond still differ.
func NewVersionPrefix(start time.Time) string {
	return strconv.FormatInt(start.UnixNano(), 36) + "-" + rand.Text()[:8] + "-"
}

// VersionPrefix is the prefix of every version this server hands out.
func (s *Server) VersionPrefix() string { return s.prefix }

// Register adds the xDS services to a gRPC server: ADS and the per-type
// discovery services, each in state-of-the-world and delta form, and the
// Services of the options.
func (s *Server) Register(g *grpc.Server) {
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, s.xds)
	listenerservicev3.RegisterListenerDiscoveryServiceServer(g, s.xds)
	routeservicev3.RegisterRouteDiscoveryServiceServer(g, s.xds)
	routeservicev3.RegisterScopedRoutesDiscoveryServiceServer(g, s.xds)
	clusterservicev3.RegisterClusterDiscoveryServiceServer(g, s.xds)
	endpointservicev3.RegisterEndpointDiscoveryServiceServer(g, s.xds)
	for _, svc := range s.services {
		svc.Register(g)
	}
}

// GRPCOptions are the gRPC server options Serve uses: the transport
// credentials and the per-connection limits. A caller serving Register on
// its own gRPC server passes them too.
func (s *Server) GRPCOptions() []grpc.ServerOption {
	l := s.gate.Limits
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(l.RequestBytes),
		grpc.MaxConcurrentStreams(l.StreamsPerConnection),
	}
	if s.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.tls)))
	}
	return opts
}

// endStreams ends the open xDS streams and those of the Services.
func (s *Server) endStreams() {
	s.stop()
	for _, svc := range s.services {
		svc.Stop()
	}
}

// Serve serves xDS on lis until ctx is cancelled, then stops gracefully:
// it ends every xDS stream (clients reconnect elsewhere) and waits up to
// ShutdownGrace for RPCs to finish. A Server serves once.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	g := grpc.NewServer(s.GRPCOptions()...)
	s.Register(g)

	served := make(chan error, 1)
	go func() { served <- g.Serve(lis) }()

	select {
	case err := <-served:
		s.endStreams()
		if err != nil {
			return fmt.Errorf("serving xDS on %s: %w", lis.Addr(), err)
		}
		return nil
	case <-ctx.Done():
	}

	stopped := make(chan struct{})
	go func() {
		g.GracefulStop()
		close(stopped)
	}()
	// GracefulStop first refuses new streams; ending the open ones lets it
	// return.
	s.endStreams()
	timer := time.NewTimer(s.grace)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		s.log.Warn("xDS streams did not end in time; closing them", "grace", s.grace)
		g.Stop()
		<-stopped
	}
	if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serving xDS on %s: %w", lis.Addr(), err)
	}
	return nil
}
