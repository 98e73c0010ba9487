// Package controller is kgate's Kubernetes mode: the control loop that reads
// Knative objects from the API server, runs them through the same pure
// knative.Reconciler that kgate local uses, serves the result to Envoy
// gateways and activators over xDS, and writes back what Knative writes: the
// Configurations, Routes and Revisions a Service derives, every object's
// status, and each Revision's Deployment and private Service.
//
// One round reads everything from the informer caches and reconciles it
// whole. Rounds are debounced, so a burst of changes (a thousand Services
// applied at once, or a restart) costs a few rounds, not one per object; the
// xDS push happens inside the round, and the writes to the API server are
// queued behind it, so that a new Service is routable before its derived
// objects are written. The API server is the store: a restarted controller
// restores the reconciler's memory from it (knative.Reconciler.Restore) and
// serves gateways only once its first snapshot is complete.
package kube

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	netv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"

	networkingv1alpha1 "github.com/kgate/kgate/api/networking/v1alpha1"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/api/serving/v1beta1"
	"github.com/kgate/kgate/autoscale"
	"github.com/kgate/kgate/autoscale/loop"
	deploykube "github.com/kgate/kgate/deploy/kube"
	"github.com/kgate/kgate/pki"
	"github.com/kgate/kgate/pki/secrets"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/watcher"
	"github.com/kgate/kgate/xds"
	"github.com/kgate/kgate/xds/auth"
	"github.com/kgate/kgate/xds/lrs"
)

// Options configure the controller.
type Options struct {
	// Config reaches the API server.
	Config *rest.Config
	// SystemNamespace holds kgate's ConfigMaps, its Lease, the gateway and
	// activator Services (default kgate-system).
	SystemNamespace string
	// GatewayService is the gateways' LoadBalancer Service: its external IP
	// makes the magic DNS domain <ip>.sslip.io (default kgate-gateway).
	GatewayService string
	// InternalGatewayService is the gateways' cluster-local Service, which
	// each Route's ExternalName Service points at (default
	// kgate-gateway-internal).
	InternalGatewayService string
	// ActivatorService's EndpointSlices are the activators' addresses
	// (default kgate-activator).
	ActivatorService string
	// XDSAddress is where gateways and activators connect (ADS and LRS);
	// it is bound only once this controller leads and has its first
	// snapshot (default :18000).
	XDSAddress string
	// HealthAddress serves /healthz and /readyz; empty serves none.
	HealthAddress string
	// Profiling also serves Go's profiles (net/http/pprof) at
	// /debug/pprof/ on HealthAddress, as Knative's profiling.enable does:
	// for an operator chasing where the time goes, off by default.
	Profiling bool
	// LeaderElection makes replicas safe: only the leader writes and serves.
	LeaderElection bool
	// Translator says where the gateways' listeners bind.
	Translator translator.Options
	// Deployment configures the revisions' Deployments.
	Deployment deploykube.Options
	// Debounce is how long a round waits for more changes after the first
	// (default 20 ms); changes meanwhile join it.
	Debounce time.Duration
	// WriteEvery is how long the statuses and objects a round would write
	// may be left to the rounds after it while changes keep coming (default
	// 1 s; negative: every round writes): a round that is followed at once
	// by another leaves its writes to that one, if a round wrote less than
	// WriteEvery ago. See writesLater.
	WriteEvery time.Duration
	// WriteBacklog is how many writes may wait in the write queue before a
	// round leaves its own to the round that follows once they drain below
	// it (default: ten seconds of writes at Config's QPS, or at 200;
	// negative: never). See writesLater. A second of them serialized the
	// writes of each step (a Configuration, then its revision, then the
	// revision's status, then the Service's): each waited for the queue to
	// drain before the next was queued, and the queue ran dry between.
	WriteBacklog int
	// Writers is how many writes to the API server run at once (default 16).
	Writers int
	// ControllerService is the controller's Service, whose names go in the
	// xDS server's certificate (default kgate-controller).
	ControllerService string
	// CertLifetime is the life of the control-plane certificates the
	// controller issues (default pki.DefaultLifetime); each is renewed
	// after two thirds of it.
	CertLifetime time.Duration
	// CertCheckInterval is how often the leader checks whether a
	// certificate is due for renewal (default a tenth of CertLifetime, at
	// most an hour).
	CertCheckInterval time.Duration
	// Limits bound what xDS and LRS clients may make the server hold.
	Limits auth.Limits
	// StaleAfter is how long a gateway may leave the control plane
	// unanswered before a Route's readiness stops waiting for it
	// (default xds.DefaultStaleAfter).
	StaleAfter time.Duration
	// DefaultCertificateSecret, when set, is a kubernetes.io/tls Secret
	// whose certificate serves every host served over TLS that has no
	// other (a DomainMapping's spec.tls), and clients that send no SNI.
	DefaultCertificateSecret types.NamespacedName
	// Ingress, when set, runs the KIngress mode (ingress.go) instead of
	// the serving mode: kgate as Knative Serving's ingress.
	Ingress *IngressOptions
	// Registry gets the xDS server's and the autoscaler's Prometheus
	// metrics, served at /metrics on HealthAddress; nil: a registry of the
	// controller's own. Never the global registry: controller-runtime's
	// metrics stay off.
	Registry *prometheus.Registry
	// Logger; nil is slog.Default().
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.SystemNamespace == "" {
		o.SystemNamespace = "kgate-system"
	}
	if o.GatewayService == "" {
		o.GatewayService = "kgate-gateway"
	}
	if o.InternalGatewayService == "" {
		o.InternalGatewayService = "kgate-gateway-internal"
	}
	if o.ActivatorService == "" {
		o.ActivatorService = "kgate-activator"
	}
	if o.XDSAddress == "" {
		o.XDSAddress = ":18000"
	}
	if o.Debounce == 0 {
		o.Debounce = 20 * time.Millisecond
	}
	if o.WriteBacklog == 0 {
		qps := 200
		if o.Config != nil && o.Config.QPS >= 1 {
			qps = int(o.Config.QPS)
		}
		o.WriteBacklog = 10 * qps
	}
	if o.WriteEvery == 0 {
		o.WriteEvery = time.Second
	}
	if o.Writers == 0 {
		o.Writers = 16
	}
	if o.ControllerService == "" {
		o.ControllerService = "kgate-controller"
	}
	if o.CertLifetime <= 0 {
		o.CertLifetime = pki.DefaultLifetime
	}
	if o.CertCheckInterval <= 0 {
		o.CertCheckInterval = min(o.CertLifetime/10, time.Hour)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Ingress != nil {
		o.Ingress.defaults()
	}
	// The autoscaler reads the gateways' in-flight requests over LRS; in
	// the KIngress mode Knative's autoscaler reads its queue-proxies.
	o.Translator.LoadReporting = o.Ingress == nil
	// The gateways' HTTPS listeners, as deploy/install exposes them: 8443
	// and 8444 in the pod, 443 on the Services, which is the port of the
	// https:// URLs plain HTTP is redirected to.
	if o.Translator.ExternalTLSPort == 0 {
		o.Translator.ExternalTLSPort = translator.DefaultExternalTLSPort
	}
	if o.Translator.InternalTLSPort == 0 {
		o.Translator.InternalTLSPort = translator.DefaultInternalTLSPort
	}
	if o.Translator.HTTPSRedirectPort == 0 {
		o.Translator.HTTPSRedirectPort = 443
	}
}

// LeaseName is the leader election Lease in the system namespace.
const LeaseName = "kgate-controller"

// Controller is one controller process's state.
type Controller struct {
	opts Options
	log  *slog.Logger
	// clashes are the Route Services whose name another Service holds,
	// logged once each (publishPlaceholders; the publishing goroutine
	// only).
	clashes map[string]bool
	// registry holds the metrics served at /metrics (Options.Registry).
	registry *prometheus.Registry

	mgr    manager.Manager
	client client.Client
	srv    *xds.Server
	engine *xds.Engine
	lrs    *lrs.Server
	certs  *secrets.Manager
	tls    *certificates
	// secretsClient reads the certificate Secrets (see certs.go).
	secretsClient kubernetes.Interface
	loop          *loop.Loop
	// certManager says cert-manager's Certificates are watched (its CRDs
	// are installed); set before the caches start.
	certManager bool
	scaler      *deploykube.Scaler
	writes      *writer
	scales      *asyncScaler

	pipe *watcher.Pipeline
	// idx are the objects a round reads, kept by the informers' events
	// (index.go; nil without informers: a round lists).
	idx *indexes
	// beforePublish, when set, runs in a round once its model is pushed
	// and before its writes (lead: the first round serves xDS then).
	beforePublish func()
	// deferWrites is set while the serving loop runs the rounds: a round
	// may then leave its writes to the next (writesLater).
	deferWrites bool
	// pub, set while the serving loop runs the rounds, queues their writes
	// behind them (publisher.go); without it a round queues its own.
	pub *publisher
	// st is the round's state; only the round goroutine touches it, but
	// for st.settled, which a failed write unmarks (settledMu).
	st        roundState
	settledMu sync.Mutex
	// acme is what the round knows of cert-manager's ACME HTTP-01
	// Challenges (challenges.go); only the round goroutine touches it.
	acme acmeState

	kick chan struct{}
	// relevant says something the reconciler reads may have changed since
	// the last round began (changed).
	relevant atomic.Bool

	mu       sync.Mutex
	xdsAddr  net.Addr
	serving  atomic.Bool
	servedCh chan struct{}
}

// New builds a controller; Run starts it.
func New(opts Options) (*Controller, error) {
	opts.defaults()
	if opts.Config == nil {
		return nil, errors.New("controller: Options.Config is required")
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("registering the Kubernetes types: %w", err)
	}
	if err := servingv1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("registering the Knative serving types: %w", err)
	}
	if err := v1beta1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("registering the Knative DomainMapping type: %w", err)
	}
	// The two modes read networking.internal.knative.dev types of their
	// own: the KIngress mode Knative's Ingress (its module's types), the
	// serving mode kgate's ClusterDomainClaim.
	addNetworking, what := networkingv1alpha1.AddToScheme, "the Knative ClusterDomainClaim type"
	if opts.Ingress != nil {
		addNetworking, what = netv1alpha1.AddToScheme, "the Knative Ingress type"
	}
	if err := addNetworking(scheme); err != nil {
		return nil, fmt.Errorf("registering %s: %w", what, err)
	}
	secretsClient, err := kubernetes.NewForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("a client of the certificate Secrets: %w", err)
	}
	// Only the system namespace's ConfigMaps are kgate's; in the KIngress
	// mode, Knative's (config-network).
	cmNamespace, lease := opts.SystemNamespace, LeaseName
	if opts.Ingress != nil {
		cmNamespace, lease = opts.Ingress.KnativeNamespace, IngressLeaseName
	}
	mgr, err := manager.New(opts.Config, manager.Options{
		Scheme: scheme,
		Logger: logr.FromSlogHandler(opts.Logger.Handler()),
		Cache: cache.Options{
			ByObject: map[client.Object]cache.ByObject{
				&corev1.ConfigMap{}: {Namespaces: map[string]cache.Config{cmNamespace: {}}},
			},
			// kgate never reads who manages which field, and an update
			// that omits managedFields leaves the API server's as they
			// are: at 10,000 Services they were a good part of every
			// cached object.
			DefaultTransform: cache.TransformStripManagedFields(),
		},
		// cert-manager's Certificates, read as unstructured objects, come
		// from the cache too.
		Client:                        client.Options{Cache: &client.CacheOptions{Unstructured: true}},
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		LeaderElection:                opts.LeaderElection,
		LeaderElectionID:              lease,
		LeaderElectionNamespace:       opts.SystemNamespace,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the controller manager: %w", err)
	}
	c := &Controller{
		opts: opts, log: opts.Logger, mgr: mgr, client: mgr.GetClient(),
		kick:     make(chan struct{}, 1),
		servedCh: make(chan struct{}),

		secretsClient: secretsClient,
	}
	c.st.init()
	svc := opts.ControllerService + "." + opts.SystemNamespace
	c.certs = secrets.New(secrets.Options{
		Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Namespace: opts.SystemNamespace,
		Lifetime: opts.CertLifetime, Logger: c.log,
		ServerNames: []string{opts.ControllerService, svc, svc + ".svc", svc + ".svc.cluster.local"},
		ServerIPs:   boundIPs(opts.XDSAddress),
	})
	gate := auth.NewGate(opts.Limits, c.log)
	c.registry = opts.Registry
	if c.registry == nil {
		c.registry = prometheus.NewRegistry()
	}
	c.lrs = lrs.New(lrs.Options{Logger: c.log, Gate: gate, OnDemand: func(rev string) { c.loop.Demand(rev) }})
	c.srv = xds.NewServer(context.Background(), xds.ServerOptions{
		Logger: c.log, Services: []xds.Service{c.lrs},
		// Only clients with a certificate from the CA in CASecret: the
		// gateways and activators mount theirs.
		TLS: pki.ServerConfig(c.certs.ServerSource()), Gate: gate, StaleAfter: opts.StaleAfter,
		// A gateway applying a route can make it Ready.
		OnACK:      func(string, string) { c.acked() },
		Registerer: c.registry,
	})
	c.engine, err = xds.NewEngine(c.srv, xds.EngineOptions{Translator: opts.Translator, Logger: c.log})
	if err != nil {
		return nil, err
	}
	// The Secrets' informers start from the leader's context (lead).
	c.tls = newCertificates(c.log, c.engine, opts.DefaultCertificateSecret, nil)
	c.pipe = watcher.New(watcher.Options{
		Routing: c.engine, Gateways: c.engine, Deployed: true, StartsAtZero: startsAtZero, Logger: c.log,
		Certificate: c.certificateState,
		Recheck:     max(time.Second, cmp.Or(opts.StaleAfter, xds.DefaultStaleAfter)/2),
		// Stored times have whole seconds: so do the statuses, or every
		// round would see them differ from what it wrote.
		Now: func() time.Time { return time.Now().Truncate(time.Second) },
	})
	c.scaler = deploykube.NewScaler(c.client)
	c.scales = newAsyncScaler(c.scaler, c.log)
	c.writes = newWriter(c.log, opts.Writers, func() { time.AfterFunc(time.Second, c.trigger) })
	if err := c.registry.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kgate_controller_writes_waiting",
		Help: "Writes to the API server the controller has queued and not started: objects to create and statuses to write, behind the client's rate limit.",
	}, func() float64 { return float64(c.writes.backlog()) })); err != nil {
		return nil, fmt.Errorf("registering the write queue's metric: %w", err)
	}
	c.loop, err = loop.New(loop.Options{
		Deployer: scalerDeployer{c.scales, c.scaler}, Endpoints: c.engine, Metrics: c.lrs, Logger: c.log,
		OnDecision: c.decided, Registerer: c.registry,
	})
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(manager.RunnableFunc(c.lead)); err != nil {
		return nil, fmt.Errorf("adding the control loop: %w", err)
	}
	return c, nil
}

// Run runs the controller until ctx ends: the caches always, the control
// loop and the xDS server while leading.
func (c *Controller) Run(ctx context.Context) error {
	if c.opts.HealthAddress != "" {
		lis, err := net.Listen("tcp", c.opts.HealthAddress)
		if err != nil {
			return fmt.Errorf("--health-address %s: %w", c.opts.HealthAddress, err)
		}
		hs := &http.Server{Handler: c.healthHandler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = hs.Serve(lis) }()
		defer hs.Close()
	}
	watch := c.watch
	if c.opts.Ingress != nil {
		watch = c.watchIngresses
	}
	if err := watch(ctx); err != nil {
		return err
	}
	return c.mgr.Start(ctx)
}

// acked is the xDS server's word that a gateway applied a response: a
// Route (a KIngress) it held may be Ready now.
func (c *Controller) acked() {
	if c.opts.Ingress != nil {
		c.trigger()
		return
	}
	c.pipe.Refresh()
}

// Served is closed once the controller serves xDS with its first complete
// snapshot.
func (c *Controller) Served() <-chan struct{} { return c.servedCh }

// XDSAddr is the bound xDS address, once Served.
func (c *Controller) XDSAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.xdsAddr
}

// Engine is the xDS engine, for tests and benchmarks that look at the
// snapshot.
func (c *Controller) Engine() *xds.Engine { return c.engine }

// Server is the xDS server, for tests that look at its refusals.
func (c *Controller) Server() *xds.Server { return c.srv }

// Loop is the autoscaler loop, for tests that scale by hand.
func (c *Controller) Loop() *loop.Loop { return c.loop }

func (c *Controller) healthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		// Ready means serving gateways: only the leader, once it has its
		// first snapshot. A standby is alive, not ready.
		if !c.serving.Load() {
			http.Error(w, "not serving xDS (not the leader, or restoring)", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(c.registry, promhttp.HandlerOpts{}))
	if c.opts.Profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// lead is the leader's work: restore, the first round, then serve xDS and
// reconcile on every change until ctx ends.
func (c *Controller) lead(ctx context.Context) error {
	start := time.Now()
	if !c.mgr.GetCache().WaitForCacheSync(ctx) {
		return errors.New("the informer caches did not sync")
	}
	if c.idx != nil && !toolscache.WaitForCacheSync(ctx.Done(), c.idx.synced...) {
		return errors.New("the indexes did not take the informers' objects")
	}
	if c.opts.Ingress != nil {
		return c.leadIngress(ctx, start)
	}
	if err := c.restore(ctx); err != nil {
		return err
	}
	// The pipeline's timers (a rollout's next step, the next collection)
	// end with the leadership.
	defer c.pipe.Stop()
	// The CA and the data plane's certificates exist before the server
	// that requires them.
	if err := c.certs.Ensure(ctx); err != nil {
		return fmt.Errorf("the control plane's certificates: %w", err)
	}
	go c.certs.Run(ctx, c.opts.CertCheckInterval)
	go c.writes.run(ctx)
	c.tls.watch = informerWatch(ctx, c.secretsClient)
	defer c.tls.stop()
	go c.scales.run(ctx)
	// The gateways need the model, not the statuses: xDS is served as soon
	// as the first round has built it (and its certificates), before it
	// writes 10,000 statuses.
	var errs chan error
	var serveErr error
	c.beforePublish = func() {
		if errs == nil && serveErr == nil {
			errs, serveErr = c.serveXDS(ctx, start, "serving xDS")
		}
	}
	if err := c.round(ctx); err != nil {
		return fmt.Errorf("the first round: %w", err)
	}
	c.beforePublish = nil
	if serveErr != nil {
		return serveErr
	}
	go func() { errs <- c.loop.Run(ctx) }()
	defer c.serving.Store(false)
	c.deferWrites = true
	defer func() { c.deferWrites = false }()
	// The publisher ends before lead returns: a later term's first round
	// publishes by itself, never beside it.
	pctx, stop := context.WithCancel(ctx)
	var published sync.WaitGroup
	c.pub = newPublisher()
	published.Go(func() { c.pub.run(pctx, c.publishAll) })
	defer func() {
		stop()
		published.Wait()
		c.pub = nil
	}()
	return c.rounds(ctx, errs, c.pipe.Queued(), noRound, "reconciling", func(ctx context.Context) (time.Duration, error) {
		return noRound, c.round(ctx)
	})
}

// noRound is a round's "no next round until something changes".
const noRound time.Duration = -1

// rounds runs round, debounced, on every kick (and whenever queued, when
// not nil) until ctx ends or the xDS server (errs) stops. first is when the
// first round runs by itself (noRound: none until a kick); each round says
// when the next runs by itself (0: at once; noRound: none). A failed round
// is logged as what and retried after a second: the cache or the API
// server is unwell.
func (c *Controller) rounds(ctx context.Context, errs <-chan error, queued <-chan struct{}, first time.Duration, what string, round func(context.Context) (time.Duration, error)) error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	// armed says a round is due: a change arms the timer, and changes
	// that follow before it fires join that round rather than push it
	// back (events every few ms while thousands of writes land would
	// otherwise hold every round off).
	// due is when the armed round runs: a change brings a round due later
	// (a round asked for by the last) forward to the debounce.
	armed := false
	var due time.Time
	arm := func(d time.Duration) {
		timer.Reset(d)
		armed, due = true, time.Now().Add(d)
	}
	soon := func() {
		if !armed || time.Until(due) > c.opts.Debounce {
			arm(c.opts.Debounce)
		}
	}
	if first >= 0 {
		arm(first)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errs:
			if err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		case <-c.kick:
			soon()
		case <-queued:
			c.relevant.Store(true)
			soon()
		case <-timer.C:
			armed = false
			switch next, err := round(ctx); {
			case err != nil:
				c.log.Error(what, "error", err)
				c.relevant.Store(true)
				arm(time.Second)
			case next >= 0:
				arm(next)
			}
		}
	}
}

// serveXDS binds the xDS address and serves it until ctx ends: the
// controller is ready from then on. What ends the server (or whatever else
// the caller runs) comes on errs.
func (c *Controller) serveXDS(ctx context.Context, start time.Time, what string, attrs ...any) (errs chan error, err error) {
	lis, err := net.Listen("tcp", c.opts.XDSAddress)
	if err != nil {
		return nil, fmt.Errorf("--xds-address %s: %w", c.opts.XDSAddress, err)
	}
	c.mu.Lock()
	c.xdsAddr = lis.Addr()
	c.mu.Unlock()
	errs = make(chan error, 2)
	go func() { errs <- c.srv.Serve(ctx, lis) }()
	c.serving.Store(true)
	close(c.servedCh)
	c.log.Info(what, append([]any{"address", lis.Addr().String(), "startup", time.Since(start).Round(time.Millisecond)}, attrs...)...)
	return errs, nil
}

// trigger asks for a round; it never blocks.
func (c *Controller) trigger() { c.changed(true) }

// changed asks for a round after an informer's event; relevant says the
// reconciler may read what changed, false that only publish compares it
// (kgate's own status writes coming back: see round). It never blocks.
func (c *Controller) changed(relevant bool) {
	if relevant {
		c.relevant.Store(true)
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// decided is the loop's notification: a revision at zero by decision is
// Ready (Knative: Ready, not Active), and replicas show in its status.
func (c *Controller) decided(d autoscale.Decision) {
	if d.Replicas == 0 {
		c.pipe.Submit(watcher.Change{Ready: []string{d.Revision}})
	}
	c.trigger()
}

// scalerDeployer is the loop's deploy.Deployer: scale asynchronously (the
// loop holds its lock while it scales), ready pods from the EndpointSlices.
type scalerDeployer struct {
	scales *asyncScaler
	slices *deploykube.Scaler
}

func (d scalerDeployer) Scale(_ context.Context, rev string, n int32) error {
	d.scales.set(rev, n)
	return nil
}

func (d scalerDeployer) Ready(rev string) []model.Endpoint { return d.slices.Ready(rev) }

// boundIPs is the IP an xDS address binds, when it names one: a client
// dialing it there can verify the server's certificate by that IP. A
// wildcard address names none.
func boundIPs(addr string) []net.IP {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsUnspecified() {
		return nil
	}
	return []net.IP{ip}
}
