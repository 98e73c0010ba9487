package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"

	"github.com/kgate/kgate/activator"
	"github.com/kgate/kgate/dataplane/inflight"
	"github.com/kgate/kgate/dataplane/xdsclient"
)

// defaultActivatorAddress is Knative's activator port, on loopback like
// the xDS server: opened to other machines only on request.
const defaultActivatorAddress = "127.0.0.1:8012"

// activatorConfig is what the activator command's flags say.
type activatorConfig struct {
	xdsAddress string
	// creds authenticate the activator to the control plane.
	creds credentials.TransportCredentials
	// ready, when set, gets the activator's readiness (kgate local's
	// /readyz).
	ready        *readiness
	nodeID       string
	drainDelay   time.Duration
	drainTimeout time.Duration
	// inflight, when set, counts the requests proxied to each pod (kgate
	// local's deployer waits for none before stopping a replica).
	inflight *inflight.Counter
	// registry gets the activator's metrics, served at /metrics on its
	// port; nil: a registry of its own (kgate local passes its process's).
	registry *prometheus.Registry
	// tracing turns request tracing on (--tracing-endpoint): spans of
	// service kgate-activator.
	tracing tracingFlags
}

// readyPath is the activator's readiness probe: 200 while it takes new
// requests, 503 once it drains. A request naming a revision is proxied
// whatever its path.
const readyPath = "/readyz"

// withReadiness answers the readiness probe in front of the activator:
// 503 while draining, or while following says why the activator does not
// follow the control plane (no revisions yet, or responses it cannot
// receive).
func withReadiness(next http.Handler, ready *atomic.Bool, following func() error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != readyPath || r.Header.Get(activator.RevisionHeader) != "" {
			next.ServeHTTP(w, r)
			return
		}
		if !ready.Load() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		if err := following(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
}

// withMetrics answers GET /metrics with reg's metrics in front of the
// activator, as withReadiness answers its probe: a request naming a
// revision is proxied whatever its path.
func withMetrics(next http.Handler, reg prometheus.Gatherer) http.Handler {
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == metricsPath && r.Header.Get(activator.RevisionHeader) == "" {
			metrics.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func newActivatorCommand() *cobra.Command {
	var (
		cfg    activatorConfig
		creds  xdsClientFlags
		listen string
		logs   logFlags
	)
	cmd := &cobra.Command{
		Use:   "activator",
		Short: "Hold and balance requests for revisions in proxy mode, following kgate's control plane",
		Long: `Serves the activator on --listen (HTTP/1.1 and cleartext HTTP/2 on one port):
the gateway sends it the requests of revisions in proxy mode, naming the revision
in the Knative-Serving-Namespace and Knative-Serving-Revision headers. It holds
them while the revision has no pod with room, balances them over the ready pods
within containerConcurrency, and reports its demand to the control plane over
LRS, at once when a request waits at zero pods.

Revisions (containerConcurrency, timeoutSeconds, protocol) and their ready pods
come from the control plane at --xds-address over delta ADS. GET /metrics on
--listen serves its Prometheus metrics (Knative's activator_request_count and
activator_request_latencies, requests held, queue rejections).

On SIGTERM or SIGINT its readiness probe (GET /readyz) fails at once while it
goes on serving for --drain-delay, so that the platform moves the gateways'
endpoints away first; then it stops accepting connections and lets the requests
it has, held ones too, complete within --drain-timeout.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logs.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if _, _, err := splitHostPort("--xds-address", cfg.xdsAddress); err != nil {
				return err
			}
			if cfg.nodeID == "" {
				return errors.New("--node-id must not be empty")
			}
			if cfg.drainTimeout <= 0 {
				return fmt.Errorf("--drain-timeout %s: must be positive", cfg.drainTimeout)
			}
			if cfg.drainDelay < 0 {
				return fmt.Errorf("--drain-delay %s: must not be negative", cfg.drainDelay)
			}
			if _, err := cfg.tracing.config(); err != nil {
				return err
			}
			if cfg.creds, err = creds.credentials(cfg.xdsAddress); err != nil {
				return err
			}
			lis, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen: %w", err)
			}
			return runActivator(cmd.Context(), log, cfg, lis)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.xdsAddress, "xds-address", defaultXDSAddress, "host:port of kgate's xDS server")
	f.StringVar(&listen, "listen", defaultActivatorAddress, "host:port the activator serves on")
	f.StringVar(&cfg.nodeID, "node-id", defaultActivatorNodeID(), "the node id the activator gives the xDS server (its certificate must name it)")
	creds.register(f)
	f.DurationVar(&cfg.drainDelay, "drain-delay", 15*time.Second, "how long to go on serving, not ready, after SIGTERM before refusing new connections")
	f.DurationVar(&cfg.drainTimeout, "drain-timeout", 30*time.Second, "how long requests in flight may take to complete on shutdown")
	cfg.tracing.register(f)
	logs.register(cmd)
	return cmd
}

// defaultActivatorNodeID tells activators apart by host: each pod of a
// Deployment has its own.
func defaultActivatorNodeID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		return "kgate-activator"
	}
	return "kgate-activator-" + host
}

// xdsConnectBackoff finds a restarted control plane within 10 s, where
// grpc's default waits up to 2 min between connection attempts.
var xdsConnectBackoff = backoff.Config{BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 10 * time.Second}

// runActivator serves the activator on lis until ctx ends, then drains it.
func runActivator(ctx context.Context, log *slog.Logger, cfg activatorConfig, lis net.Listener) error {
	defer lis.Close() // Serve closes it; this covers the early returns
	conn, err := grpc.NewClient(cfg.xdsAddress,
		grpc.WithTransportCredentials(cfg.creds),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: xdsConnectBackoff}))
	if err != nil {
		return fmt.Errorf("--xds-address: %w", err)
	}
	defer conn.Close()
	tp, stopTracing, err := cfg.tracing.tracerProvider(log, "kgate-activator")
	if err != nil {
		return err
	}
	defer stopTracing()
	reg := cfg.registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	act, err := activator.Connect(conn, activator.Options{Logger: log, Inflight: cfg.inflight, Registerer: reg, TracerProvider: tp}, activator.XDSOptions{
		Node: xdsclient.Node{ID: cfg.nodeID, Cluster: "kgate", UserAgent: "kgate-activator"},
	})
	if err != nil {
		return err
	}

	cfg.ready.set("activator", act.Ready)
	// The control plane is followed until the drain ends, not ctx: held
	// requests wait for pods that only EDS brings.
	xdsCtx, stopXDS := context.WithCancel(context.WithoutCancel(ctx))
	followed := make(chan error, 1)
	go func() { followed <- act.Run(xdsCtx) }()
	defer func() {
		stopXDS()
		<-followed
	}()

	var ready atomic.Bool
	ready.Store(true)
	srv := activator.NewServer("", withMetrics(withReadiness(act, &ready, act.Ready), reg))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	log.Info("activator serving", "address", lis.Addr().String(), "xds_address", cfg.xdsAddress, "node_id", cfg.nodeID)

	select {
	case err := <-served:
		return fmt.Errorf("serving on %s: %w", lis.Addr(), err)
	case <-ctx.Done():
	}
	// New requests are refused only once the gateways had time to hear
	// that this activator is no longer ready.
	ready.Store(false)
	if cfg.drainDelay > 0 {
		log.Info("not ready; serving on for the drain delay", "delay", cfg.drainDelay)
		time.Sleep(cfg.drainDelay)
	}
	log.Info("draining the activator", "timeout", cfg.drainTimeout)
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.drainTimeout)
	defer cancel()
	err = drain(drainCtx, srv, act.Activator)
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		log.Warn("serving ended with an error", "error", err)
	}
	if err != nil {
		srv.Close()
		return fmt.Errorf("draining within --drain-timeout %s: %w", cfg.drainTimeout, err)
	}
	log.Info("activator drained")
	return nil
}

// drain stops accepting connections and waits for every request to be
// answered: Shutdown waits for the requests on open connections, Drain
// also for the upgraded ones (WebSocket) that Shutdown does not track.
func drain(ctx context.Context, srv *http.Server, act *activator.Activator) error {
	if err := srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("requests still in flight: %w", err)
	}
	return act.Drain(ctx)
}
