package main

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/kgate/kgate/pki"
	kubesource "github.com/kgate/kgate/watcher/kube"
	"github.com/kgate/kgate/xds"
	"github.com/kgate/kgate/xds/auth"
)

func newControllerCommand() *cobra.Command { return newKubeCommand(false) }

// newIngressCommand is the KIngress mode: kgate as Knative Serving's
// ingress, in place of Kourier.
func newIngressCommand() *cobra.Command { return newKubeCommand(true) }

// newKubeCommand builds the Kubernetes mode's command: the serving
// controller, or with ingress the KIngress mode, which share the xDS server,
// its certificates and its limits.
func newKubeCommand(ingress bool) *cobra.Command {
	var (
		ingressOpts kubesource.IngressOptions
		opts        kubesource.Options
		kubeconfig  string
		defaultCert string
		qps         float32
		burst       int
		logs        logFlags
		tracing     tracingFlags
		accessLog   accessLogFlags
	)
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run kgate's Kubernetes controller: Knative objects in the API server, xDS to the Envoy gateways",
		Long: `Reads Knative Services, Configurations, Routes and DomainMappings from the API server, derives
Configurations, Routes, Revisions, each Revision's Deployment and private
Service, writes Knative's statuses, serves the Envoy gateways and the
activators over xDS (ADS, delta and state of the world, with LRS on the same
port), and scales the Deployments with the built-in autoscaler.

Inside a cluster it uses its service account; elsewhere --kubeconfig (or
$KUBECONFIG, or ~/.kube/config). Only the leader (a Lease in the system
namespace) writes and serves xDS; /readyz on --health-address says which.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logs.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if qps <= 0 || burst <= 0 {
				return errors.New("--kube-qps and --kube-burst must be positive")
			}
			if opts.CertLifetime < time.Minute {
				return fmt.Errorf("--xds-cert-lifetime %s: must be at least 1m", opts.CertLifetime)
			}
			if l := opts.Limits; l.StreamsPerNode <= 0 || l.StreamsPerProxylessNode <= 0 || l.Streams <= 0 || l.NamesPerStream <= 0 || l.RequestBytes <= 0 {
				return errors.New("--xds-max-streams-per-node, --xds-max-streams-per-proxyless-node, --xds-max-streams, --xds-max-names-per-stream and --xds-max-request-bytes must be positive")
			}
			// The Envoy gateways trace to the collector the flags name.
			if opts.Translator.Tracing, err = tracing.translator(); err != nil {
				return err
			}
			if opts.Translator.AccessLog, err = accessLog.translator(); err != nil {
				return err
			}
			if defaultCert != "" {
				ref, err := kubesource.ParseSecretRef(defaultCert)
				if err != nil {
					return fmt.Errorf("--default-certificate-secret %w", err)
				}
				opts.DefaultCertificateSecret = ref
			}
			rules := clientcmd.NewDefaultClientConfigLoadingRules()
			rules.ExplicitPath = kubeconfig
			cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
			if err != nil {
				return fmt.Errorf("finding the API server (--kubeconfig): %w", err)
			}
			cfg.QPS, cfg.Burst = qps, burst
			cfg.UserAgent = "kgate-controller"
			opts.Config, opts.Logger = cfg, log
			if ingress {
				cfg.UserAgent = "kgate-ingress"
				opts.Ingress = &ingressOpts
			}
			// controller-runtime and client-go (leader election) log through
			// process-wide loggers: set once, here, in the process's main.
			ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
			klog.SetSlogLogger(log)
			c, err := kubesource.New(opts)
			if err != nil {
				return err
			}
			return c.Run(cmd.Context())
		},
	}
	if ingress {
		cmd.Use = "ingress"
		cmd.Short = "Run kgate as Knative Serving's ingress: KIngresses of its class in the API server, xDS to the Envoy gateways"
		cmd.Long = `Serves the networking.internal.knative.dev Ingresses (KIngresses) of kgate's class
that Knative Serving's route controller writes, in place of Kourier: it reads
them, the Services and EndpointSlices they name and the TLS Secrets of their
hosts, serves the Envoy gateways over xDS (ADS, mTLS), and writes each
KIngress's status (NetworkConfigured, LoadBalancerReady once every gateway
has applied it, Ready). Knative's autoscaler and activator decide where
traffic goes; kgate follows the endpoints.

An Ingress is kgate's when its annotation networking.knative.dev/ingress.class
is --ingress-class, or, without one, when config-network's ingress-class is.
Others are never touched. Only the leader (a Lease named kgate-ingress in the
system namespace) writes and serves xDS.`
	}
	f := cmd.Flags()
	if ingress {
		f.StringVar(&ingressOpts.Class, "ingress-class", kubesource.ClassName, "the ingress class kgate serves")
		f.StringVar(&ingressOpts.KnativeNamespace, "knative-namespace", "knative-serving", "Knative Serving's namespace, whose config-network names the default ingress class")
		f.StringVar(&ingressOpts.ClusterDomain, "cluster-domain", "cluster.local", "the cluster's DNS suffix, in the load balancers' domainInternal")
		f.StringVar(&opts.InternalGatewayService, "internal-gateway-service", "kgate-gateway-internal", "the gateways' cluster-local Service: the private load balancer of ClusterLocal rules")
	}
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file; empty: in-cluster, then $KUBECONFIG, then ~/.kube/config")
	f.StringVar(&opts.SystemNamespace, "system-namespace", cmp.Or(os.Getenv("SYSTEM_NAMESPACE"), "kgate-system"), "namespace of kgate's ConfigMaps, Lease and Services")
	f.StringVar(&opts.XDSAddress, "xds-address", ":18000", "host:port the xDS (and LRS) gRPC server listens on while leading")
	f.StringVar(&opts.HealthAddress, "health-address", ":8090", "host:port of /healthz and /readyz; empty for none")
	f.BoolVar(&opts.Profiling, "profiling", false, "also serve Go's profiles at /debug/pprof/ on --health-address (Knative's profiling.enable)")
	lease := kubesource.LeaseName
	if ingress {
		lease = kubesource.IngressLeaseName
	}
	f.BoolVar(&opts.LeaderElection, "leader-elect", true, "elect a leader among replicas (a Lease named "+lease+")")
	f.StringVar(&opts.ControllerService, "controller-service", "kgate-controller", "the Service the gateways reach xDS through: its names are in the xDS server's certificate")
	f.StringVar(&opts.GatewayService, "gateway-service", "kgate-gateway", "the gateways' LoadBalancer Service: its IP gives the magic DNS domain")
	if !ingress {
		f.StringVar(&opts.ActivatorService, "activator-service", "kgate-activator", "the activators' Service: its EndpointSlices are the activators")
	}
	f.DurationVar(&opts.CertLifetime, "xds-cert-lifetime", pki.DefaultLifetime, "life of the control-plane certificates the controller issues; each is renewed after two thirds of it")
	f.DurationVar(&opts.StaleAfter, "gateway-stale-after", xds.DefaultStaleAfter, "how long a gateway may leave the control plane unanswered before Routes stop waiting for it (it is named in their IngressReady message)")
	f.IntVar(&opts.Limits.StreamsPerNode, "xds-max-streams-per-node", auth.DefaultStreamsPerNode, "xDS and LRS streams one node id may hold at once")
	f.IntVar(&opts.Limits.StreamsPerProxylessNode, "xds-max-streams-per-proxyless-node", auth.DefaultStreamsPerProxylessNode, "xDS and LRS streams one proxyless gRPC client may hold at once (grpc-go opens one per channel target)")
	f.IntVar(&opts.Limits.Streams, "xds-max-streams", auth.DefaultStreams, "xDS and LRS streams the server holds at once in all")
	f.IntVar(&opts.Limits.NamesPerStream, "xds-max-names-per-stream", auth.DefaultNamesPerStream, "resource names one xDS stream may subscribe to")
	f.IntVar(&opts.Limits.RequestBytes, "xds-max-request-bytes", auth.DefaultRequestBytes, "largest xDS or LRS request message")
	f.Uint32Var(&opts.Translator.XFFNumTrustedHops, "xff-num-trusted-hops", 0, "proxies in front of the gateways whose X-Forwarded-For entries Envoy trusts (0: the gateways face clients directly)")
	f.StringVar(&defaultCert, "default-certificate-secret", "", "NAMESPACE/NAME of a kubernetes.io/tls Secret whose certificate serves every host served over TLS that has no other (a DomainMapping's spec.tls), and clients without SNI (Kourier's certs-secret-namespace/certs-secret-name)")
	tracing.register(f)
	accessLog.register(f)
	f.Float32Var(&qps, "kube-qps", 200, "API server requests per second, sustained")
	f.IntVar(&burst, "kube-burst", 400, "API server requests in a burst")
	logs.register(cmd)
	return cmd
}
