package devgateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/kgate/kgate/dataplane/inflight"
	"github.com/kgate/kgate/dataplane/tracing"
	"github.com/kgate/kgate/dataplane/xdsclient"
)

// DefaultDrainTimeout is how long a listener that goes away waits for its
// requests by default.
const DefaultDrainTimeout = 10 * time.Second

// Options configure a Gateway.
type Options struct {
	// Node identifies the gateway to the xDS and LRS servers; its ID is
	// required. Its user agent must not start with "gRPC", which marks
	// proxyless clients (see xdsclient.Node).
	Node xdsclient.Node
	// Logger receives listener changes, refused config and stream
	// failures; nil discards them.
	Logger *slog.Logger
	// ListenAddress, when set, picks where a listener binds, given its
	// name and the "host:port" its config says; nil binds what the config
	// says. Tests map every listener to "127.0.0.1:0".
	ListenAddress func(name, configured string) string
	// DrainTimeout bounds how long a listener that goes away (removed,
	// moved, or at the end of Run) waits for its requests before it ends
	// them; 0 means DefaultDrainTimeout.
	DrainTimeout time.Duration
	// LoadReportConn is where load reports go; nil means the xDS server's
	// conn, where kgate's bootstrap points Envoy's load_stats_config.
	LoadReportConn grpc.ClientConnInterface
	// DisableLoadReporting turns LRS off.
	DisableLoadReporting bool
	// Backoff paces reconnections of both streams.
	Backoff xdsclient.Backoff
	// MaxConnections bounds the client connections served at once across
	// the listeners: at the ceiling the gateway stops accepting until one
	// closes, and from 80 % of it on, keep-alives are off (see
	// connLimiter). 0 means inflight.DefaultBudget().Connections, a
	// quarter of what the process's file limit leaves after its reserve.
	MaxConnections int
	// MaxRequests bounds the requests served at once across the
	// listeners, each of which may hold an upstream connection: an HTTP/2
	// client multiplexes many on one connection. Beyond it the gateway
	// answers 503 "envoy overloaded", as Envoy's overload manager does,
	// closing an HTTP/1 connection. 0 means inflight.DefaultBudget().Requests
	// when MaxConnections is 0 too, MaxConnections otherwise.
	MaxRequests int
	// MaxSecrets bounds the TLS certificate names (SDS secrets, by SNI)
	// held at once, and NewSecretsPerMinute the names not held yet that
	// handshakes may ask the control plane for: clients choose their SNI.
	// 0 means DefaultMaxSecrets and DefaultNewSecretsPerMinute.
	MaxSecrets          int
	NewSecretsPerMinute int
	// Inflight, when set, counts every request proxied to a host, by its
	// "host:port", from before it is sent until its response has been
	// copied in full (an upgraded connection, until it closes). kgate
	// local shares one with its activator, and its deployer stops a
	// replica once nothing is in flight to it.
	Inflight *inflight.Counter
	// TracerProvider, when set, traces the requests of the listeners whose
	// connection manager has tracing: a server span per request, a client
	// span per request sent upstream, W3C traceparent continued and
	// passed on. nil traces nothing.
	TracerProvider trace.TracerProvider
	// AccessLog receives the access log lines of the listeners whose
	// connection manager has an access_log (Envoy's standard output
	// logger), one line per request in the format it says; nil writes
	// none.
	AccessLog io.Writer
	// Metrics, when set, registers the request count and latency by
	// upstream cluster and response code (RequestsMetric,
	// RequestDurationMetric); nil counts nothing.
	Metrics prometheus.Registerer
}

// limitsOf applies the defaults of Options.MaxConnections and
// Options.MaxRequests. The file limit is read only when both are unset.
func limitsOf(opts Options) (conns, requests int) {
	conns, requests = opts.MaxConnections, opts.MaxRequests
	if conns <= 0 {
		b := inflight.DefaultBudget()
		conns = b.Connections
		if requests <= 0 {
			requests = b.Requests
		}
	}
	if requests <= 0 {
		requests = conns
	}
	return conns, requests
}

// Gateway is the dev gateway: an xDS client of the control plane that
// serves HTTP as the Envoy config it receives says. Its methods are safe
// for concurrent use.
type Gateway struct {
	log      *slog.Logger
	listenAt func(name, configured string) string
	drain    time.Duration
	ads      *xdsclient.Client
	lrs      *xdsclient.LoadReporter // nil when load reporting is off
	tables   *tables
	proxy    *proxy
	conns    *connLimiter
	certs    *certStore
	// feed holds the xDS handlers, which the client calls; tests call
	// them directly.
	feed    *feed
	running atomic.Bool

	mu        sync.Mutex
	listeners map[string]*listener
	// draining counts the listeners stopping in the background.
	draining sync.WaitGroup
}

// New returns a gateway that will get its config from the xDS server
// behind conn once Run is called.
func New(conn grpc.ClientConnInterface, opts Options) (*Gateway, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	g := &Gateway{
		log:       logger,
		listenAt:  opts.ListenAddress,
		drain:     opts.DrainTimeout,
		tables:    newTables(),
		listeners: map[string]*listener{},
	}
	if g.listenAt == nil {
		g.listenAt = func(_, configured string) string { return configured }
	}
	if g.drain <= 0 {
		g.drain = DefaultDrainTimeout
	}
	// ReverseProxy and http.Server log what goes wrong with one request or
	// connection; the client sees it, so it is debug.
	maxConns, maxRequests := limitsOf(opts)
	g.conns = newConnLimiter(maxConns)
	g.certs = newCertStore(logger, opts.MaxSecrets, opts.NewSecretsPerMinute)
	g.proxy = &proxy{
		tables: g.tables, errorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		maxRequests: int64(maxRequests), inflight: opts.Inflight,
		logs: newLogSink(opts.AccessLog),
	}
	g.proxy.tracer = tracing.New(opts.TracerProvider, "github.com/kgate/kgate/dataplane/devgateway")
	metrics, err := newRequestMetrics(opts.Metrics)
	if err != nil {
		return nil, fmt.Errorf("devgateway: metrics: %w", err)
	}
	g.proxy.metrics = metrics

	ads, err := xdsclient.New(conn, xdsclient.Options{Node: opts.Node, Logger: logger, Backoff: opts.Backoff})
	if err != nil {
		return nil, fmt.Errorf("devgateway: %w", err)
	}
	g.ads = ads
	g.feed = newFeed(g, ads)
	if !opts.DisableLoadReporting {
		lrsConn := opts.LoadReportConn
		if lrsConn == nil {
			lrsConn = conn
		}
		g.lrs, err = xdsclient.NewLoadReporter(lrsConn, xdsclient.LoadReportOptions{
			Node: opts.Node, Load: g.loads, Logger: logger, Backoff: opts.Backoff,
		})
		if err != nil {
			return nil, fmt.Errorf("devgateway: %w", err)
		}
	}
	return g, nil
}

// Run serves until ctx ends, then drains every listener (see
// Options.DrainTimeout) and returns once nothing it started runs. Load
// reports go on while the listeners drain. It fails only when called
// twice.
func (g *Gateway) Run(ctx context.Context) error {
	if !g.running.CompareAndSwap(false, true) {
		return errors.New("devgateway: Run called twice")
	}
	lrsCtx, stopLRS := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLRS()
	var reporting sync.WaitGroup
	if g.lrs != nil {
		reporting.Go(func() { _ = g.lrs.Run(lrsCtx) })
	}
	// The handlers run on the client's Run goroutine: once it returns, no
	// listener starts any more. It fails only when called twice, which
	// running rules out.
	_ = g.ads.Run(ctx)
	g.stopAll()
	stopLRS()
	reporting.Wait()
	return nil
}

// Addr returns where the named listener is bound, "" while it is not.
func (g *Gateway) Addr(listener string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if l, ok := g.listeners[listener]; ok {
		return l.addr()
	}
	return ""
}

// loads is the load of every cluster, for the LRS reporter, which sends
// those the server asks for.
func (g *Gateway) loads() map[string]xdsclient.Load {
	g.tables.mu.RLock()
	defer g.tables.mu.RUnlock()
	out := make(map[string]xdsclient.Load, len(g.tables.clusters))
	for name, c := range g.tables.clusters {
		out[name] = c.load.snapshot()
	}
	return out
}

// Ready says why the gateway does not serve what the control plane sends,
// nil when it does (see xdsclient.Client.Err): a readiness probe answers
// 503 with it.
func (g *Gateway) Ready() error {
	if err := g.ads.Err(); err != nil {
		return fmt.Errorf("dev gateway not following the control plane: %w", err)
	}
	return nil
}
