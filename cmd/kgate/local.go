package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/autoscale/loop"
	"github.com/kgate/kgate/dashboard"
	"github.com/kgate/kgate/dataplane/inflight"
	"github.com/kgate/kgate/deploy/local"
	"github.com/kgate/kgate/deploy/samples"
	"github.com/kgate/kgate/pki"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/watcher"
	"github.com/kgate/kgate/watcher/folder"
	"github.com/kgate/kgate/watcher/knative"
	"github.com/kgate/kgate/xds"
	"github.com/kgate/kgate/xds/auth"
	"github.com/kgate/kgate/xds/lrs"
)

// localConfig are kgate local's flags.
type localConfig struct {
	paths                    []string
	external, internal       string
	https, internalHTTPS     string
	xdsAddress, adminAddress string
	activatorAddress         string
	domain                   string
	images                   []string
	envoy                    string
	drainTimeout             time.Duration
	observerDir              string
	stateDir                 string
	reset                    bool
	logs                     logFlags
	tracing                  tracingFlags
	accessLog                accessLogFlags
}

func newLocalCommand() *cobra.Command {
	var cfg localConfig
	cmd := &cobra.Command{
		Use:   "local -f PATH...",
		Short: "Run Knative Services on this machine: the whole of kgate in one process",
		Long: `Watches the manifests (Services, Configurations, Routes and the ConfigMaps
config-domain, config-network, config-autoscaler, config-defaults and config-gc) and runs
them: revisions as local processes scaled by the autoscaler, the activator, the
xDS and load-reporting server, and a data plane (Envoy when one is installed,
else kgate's dev gateway) serving

  http://<name>.<namespace>.127.0.0.1.nip.io:8080   external hosts
  http://<name>.<namespace>.svc.cluster.local:8081  cluster-local hosts

Knative's sample images (helloworld-go, autoscale-go, simple-app) run the
built-in samples; map other images with --image NAME=COMMAND.

What the API server keeps in a cluster, kgate local keeps in a state folder
(--state-dir; one per set of -f paths by default): revision names and their
templates, pinned traffic, each object's last valid version and the replicas it
started, so a restart serves exactly what it served. --reset starts over.
'kgate get ksvc' shows what runs, and http://127.0.0.1:9090/ (the admin
address) is a live page of it. Ctrl-C stops every process it started.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := cfg.logs.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return runLocal(cmd.Context(), log, cfg)
		},
	}
	f := cmd.Flags()
	f.StringSliceVarP(&cfg.paths, "filename", "f", nil, "folder or file of manifests (repeatable)")
	f.StringVar(&cfg.external, "http-address", "127.0.0.1:8080", "host:port of the external listener")
	f.StringVar(&cfg.internal, "internal-address", "127.0.0.1:8081", "host:port of the internal (cluster-local) listener")
	f.StringVar(&cfg.https, "https-address", "127.0.0.1:8443", "host:port of the external HTTPS listener (hosts config-network serves over TLS); empty: none")
	f.StringVar(&cfg.internalHTTPS, "internal-https-address", "127.0.0.1:8444", "host:port of the internal HTTPS listener; empty: none")
	f.StringVar(&cfg.xdsAddress, "xds-address", defaultXDSAddress, "host:port of the xDS and load-reporting server")
	f.StringVar(&cfg.adminAddress, "admin-address", defaultAdminAddress, "host:port of the admin API kgate get reads, and of the live page (GET /)")
	f.StringVar(&cfg.activatorAddress, "activator-address", defaultActivatorAddress, "host:port of the activator")
	f.StringVar(&cfg.domain, "domain", "127.0.0.1.nip.io", "the domain of external hosts when no config-domain is given")
	f.StringArrayVar(&cfg.images, "image", nil, "NAME=COMMAND: run containers of image NAME with COMMAND (repeatable)")
	f.StringVar(&cfg.envoy, "envoy", "auto", "data plane: auto (Envoy if on PATH), always (Envoy), never (the dev gateway)")
	f.DurationVar(&cfg.drainTimeout, "drain-timeout", 30*time.Second, "how long in-flight requests may take on shutdown")
	f.StringVar(&cfg.observerDir, "observer-tls-dir", "", "write read-only (observer) control-plane credentials for operators' tools into this folder; they may read config, their load reports never count")
	f.StringVar(&cfg.stateDir, "state-dir", "", "the folder of this run's state (revision history, replicas); default: one per set of -f paths under $XDG_STATE_HOME/kgate or ~/.local/state/kgate")
	f.BoolVar(&cfg.reset, "reset", false, "forget the stored objects, revision history and replicas before starting (the local certificate authority is kept)")
	cfg.logs.register(cmd)
	cfg.tracing.register(f)
	cfg.accessLog.register(f)
	_ = cmd.MarkFlagRequired("filename")
	cmd.AddCommand(newLocalCACommand())
	return cmd
}

// runLocal runs the whole system until ctx ends, then stops every part and
// every process it started.
func runLocal(ctx context.Context, log *slog.Logger, cfg localConfig) error {
	topts, err := listenerOptions(cfg)
	if err != nil {
		return err
	}
	if cfg.envoy != "auto" && cfg.envoy != "always" && cfg.envoy != "never" {
		return fmt.Errorf("--envoy %q: must be auto, always or never", cfg.envoy)
	}
	// The data plane binds the gateway listeners later, from its xDS
	// config; a port in use is better said now, with the flag to change.
	for flag, addr := range map[string]string{"--http-address": cfg.external, "--internal-address": cfg.internal,
		"--https-address": cfg.https, "--internal-https-address": cfg.internalHTTPS} {
		if addr == "" {
			continue
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("%s %s: %w", flag, addr, err)
		}
		l.Close()
	}
	store, snap, err := openState(ctx, log, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	lis, err := listenAll(map[string]string{
		"--xds-address": cfg.xdsAddress, "--admin-address": cfg.adminAddress, "--activator-address": cfg.activatorAddress,
	})
	if err != nil {
		return err
	}
	defer func() {
		for _, l := range lis {
			l.Close()
		}
	}()
	xdsLis, adminLis, actLis := lis["--xds-address"], lis["--admin-address"], lis["--activator-address"]

	// The control plane: xDS and LRS on one port, over mutual TLS with
	// this run's CA: only the components started here are served.
	trust, err := newLocalPKI()
	if err != nil {
		return err
	}
	if cfg.observerDir != "" {
		if err := trust.writeBundle(pki.Identity{Role: pki.Observer, ID: "operator-*"}, cfg.observerDir); err != nil {
			return fmt.Errorf("--observer-tls-dir: %w", err)
		}
	}
	gate := auth.NewGate(auth.Limits{}, log)
	// One registry for the process: the admin API's /metrics serves it.
	reg := prometheus.NewRegistry()
	ready := &readiness{}
	var sys *localSystem
	lrsSrv := lrs.New(lrs.Options{Logger: log, Gate: gate, OnDemand: func(rev string) { sys.loop.Demand(rev) }})
	srv := xds.NewServer(ctx, xds.ServerOptions{Logger: log, Services: []xds.Service{lrsSrv}, TLS: trust.serverTLS(), Gate: gate, Registerer: reg})
	eng, err := xds.NewEngine(srv, xds.EngineOptions{Translator: topts, Logger: log})
	if err != nil {
		return err
	}

	base := config.Default()
	base.Domain = config.Domain{Domains: map[string]map[string]string{cfg.domain: {}}}
	sys = &localSystem{log: log, store: store, pipe: watcher.New(watcher.Options{
		Routing: eng, Deployed: true, Base: &base, Logger: log,
		ReplicaCeiling: config.LocalMaxScaleLimit(runtime.NumCPU()),
		// One user, no tenants to keep apart: a DomainMapping claims its
		// domain unless config-network says otherwise.
		AutocreateDomainClaims: true,
	})}
	// What the last run stored comes back before the first pass: names keep
	// their templates, pinned traffic its revisions.
	sys.pipe.Restore(snap.Stored, snap.Ready)
	// The data plane and the activator count what they have in flight to
	// each replica: one leaving the endpoints is stopped once it has none.
	counter := &inflight.Counter{}
	log.Info("limits from the file limit", "budget", inflight.DefaultBudget().String())
	dep, err := newProcessDeployer(log, cfg.images, func(rev string) { sys.podsChanged(rev) }, func(recs []local.Record) {
		if err := store.SaveReplicas(recs); err != nil {
			log.Error("not stored: a restart after a crash could not stop these replicas", "error", err)
		}
	}, counter.Count)
	if err != nil {
		return err
	}
	defer dep.Close()
	sys.dep = dep
	actAddr := actLis.Addr().(*net.TCPAddr)
	// The live page counts the requests the autoscaler reads.
	reqs := dashboard.Tap(lrsSrv)
	page := newLivePage(sys.snapshot, reqs)
	sys.loop, err = loop.New(loop.Options{
		Deployer: dep, Endpoints: eng, Metrics: reqs, Logger: log, OnDecision: sys.decided, Registerer: reg,
		Activators: []model.Endpoint{{Address: actAddr.IP.String(), Port: uint32(actAddr.Port)}},
	})
	if err != nil {
		return err
	}
	src, err := folder.New(cfg.paths, folder.Options{Logger: log, Sink: sys.pipe})
	if err != nil {
		return err
	}
	// HTTPS: a certificate from the local CA for every host served over
	// TLS, as the SDS secret Envoy or the dev gateway asks for by SNI.
	if sys.https, err = newLocalHTTPS(log, store, eng); err != nil {
		return err
	}
	sys.apply(ctx, sys.pipe.Apply(watcher.Change{Objects: src.Objects(), Replace: true}))

	// Shutdown goes front to back: the data plane drains first, while the
	// activator, the pods and the control plane behind it still serve the
	// requests it has in flight; then the rest stops. A part that fails
	// stops everything.
	back, stopBack := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBack()
	g, gctx := errgroup.WithContext(back)
	front, stopFront := context.WithCancel(gctx)
	stop := context.AfterFunc(ctx, stopFront)
	defer stop()
	g.Go(func() error { return srv.Serve(gctx, xdsLis) })
	g.Go(func() error { return src.Run(gctx) })
	g.Go(func() error { return sys.pipe.Run(gctx, func(res *knative.Result) { sys.apply(gctx, res) }) })
	g.Go(func() error { return sys.loop.Run(gctx) })
	g.Go(func() error { return page.Run(gctx) })
	g.Go(func() error {
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
				sys.https.renewDue()
			}
		}
	})
	// The admin API drains like a pod: it is only ever read.
	g.Go(func() error {
		return samples.Serve(gctx, adminLis, withLivePage(adminMux(adminHandler(sys.snapshot), ready, reg), page), time.Second)
	})
	// The activator is `kgate activator`, following our own xDS server; no
	// drain delay: the data plane in front has stopped when it drains.
	g.Go(func() error {
		return runActivator(gctx, log, activatorConfig{
			xdsAddress: xdsLis.Addr().String(), nodeID: localActivatorID, drainTimeout: cfg.drainTimeout,
			creds: trust.client(pki.Identity{Role: pki.Activator, ID: localActivatorID}), ready: ready, inflight: counter, registry: reg,
			tracing: cfg.tracing,
		}, actLis)
	})
	g.Go(func() error {
		defer stopBack()
		return runDataPlane(front, log, cfg, xdsLis.Addr().String(), trust, ready, counter, reg)
	})
	log.Info("kgate local is running",
		"external", cfg.external, "internal", cfg.internal, "https", cfg.https, "domain", cfg.domain,
		"xds", xdsLis.Addr().String(), "admin", adminLis.Addr().String(), "activator", actLis.Addr().String())
	err = g.Wait()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// The node ids of the components kgate local starts.
const (
	localActivatorID = "kgate-local-activator"
	localGatewayID   = "kgate-local-gateway"
	localEnvoyID     = "kgate-local-envoy"
)

// newProcessDeployer runs revisions as local processes: the container's
// command, or the image map (Knative's samples built in, --image for the
// rest). onReplicas receives the processes running, for the state store.
func newProcessDeployer(log *slog.Logger, images []string, onChange func(string), onReplicas func([]local.Record), inFlight func(addr string) int) (*local.Deployer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the kgate binary for the sample images: %w", err)
	}
	m, err := local.NewImages(exe, images)
	if err != nil {
		return nil, err
	}
	// A pod that goes keeps serving for a second after it left the
	// endpoints, so that the gateways hear of it before its socket closes,
	// and then until nothing is in flight to it (up to its timeoutSeconds).
	return local.New(local.Options{Resolve: m.Resolve, OnChange: onChange, OnReplicas: onReplicas, InFlight: inFlight, Logger: log, StopDelay: time.Second})
}

// listenerOptions are the gateway listeners' addresses from the flags.
func listenerOptions(cfg localConfig) (translator.Options, error) {
	extHost, extPort, err := splitHostPort("--http-address", cfg.external)
	if err != nil {
		return translator.Options{}, err
	}
	intHost, intPort, err := splitHostPort("--internal-address", cfg.internal)
	if err != nil {
		return translator.Options{}, err
	}
	opts := translator.Options{
		ExternalAddress: extHost, ExternalPort: extPort,
		InternalAddress: intHost, InternalPort: intPort,
		LoadReporting: true,
	}
	if cfg.https != "" {
		if opts.ExternalTLSAddress, opts.ExternalTLSPort, err = splitHostPort("--https-address", cfg.https); err != nil {
			return translator.Options{}, err
		}
		// Plain HTTP redirected to HTTPS goes where kgate serves it.
		opts.HTTPSRedirectPort = opts.ExternalTLSPort
	}
	if cfg.internalHTTPS != "" {
		if opts.InternalTLSAddress, opts.InternalTLSPort, err = splitHostPort("--internal-https-address", cfg.internalHTTPS); err != nil {
			return translator.Options{}, err
		}
	}
	if opts.Tracing, err = cfg.tracing.translator(); err != nil {
		return translator.Options{}, err
	}
	if opts.AccessLog, err = cfg.accessLog.translator(); err != nil {
		return translator.Options{}, err
	}
	return opts, nil
}

// listenAll opens every listener up front, so that a port in use fails the
// start with the flag to change rather than half a system.
func listenAll(addrs map[string]string) (map[string]net.Listener, error) {
	out := map[string]net.Listener{}
	for flag, addr := range addrs {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, fmt.Errorf("%s %s: %w", flag, addr, err)
		}
		out[flag] = l
	}
	return out, nil
}
