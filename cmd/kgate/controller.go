package main

import (
	"cmp"
	"errors"
	"fmt"
	"os"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	kubesource "github.com/kgate/kgate/watcher/kube"
)

func newControllerCommand() *cobra.Command {
	var (
		opts       kubesource.Options
		kubeconfig string
		qps        float32
		burst      int
		logs       logFlags
	)
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run kgate's Kubernetes controller: Knative objects in the API server, xDS to the Envoy gateways",
		Long: `Reads Knative Services, Configurations and Routes from the API server, derives
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
			rules := clientcmd.NewDefaultClientConfigLoadingRules()
			rules.ExplicitPath = kubeconfig
			cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
			if err != nil {
				return fmt.Errorf("finding the API server (--kubeconfig): %w", err)
			}
			cfg.QPS, cfg.Burst = qps, burst
			cfg.UserAgent = "kgate-controller"
			opts.Config, opts.Logger = cfg, log
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
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file; empty: in-cluster, then $KUBECONFIG, then ~/.kube/config")
	f.StringVar(&opts.SystemNamespace, "system-namespace", cmp.Or(os.Getenv("SYSTEM_NAMESPACE"), "kgate-system"), "namespace of kgate's ConfigMaps, Lease and Services")
	f.StringVar(&opts.XDSAddress, "xds-address", ":18000", "host:port the xDS (and LRS) gRPC server listens on while leading")
	f.StringVar(&opts.HealthAddress, "health-address", ":8090", "host:port of /healthz and /readyz; empty for none")
	f.BoolVar(&opts.LeaderElection, "leader-elect", true, "elect a leader among replicas (a Lease named kgate-controller)")
	f.StringVar(&opts.GatewayService, "gateway-service", "kgate-gateway", "the gateways' LoadBalancer Service: its IP gives the magic DNS domain")
	f.StringVar(&opts.ActivatorService, "activator-service", "kgate-activator", "the activators' Service: its EndpointSlices are the activators")
	f.Float32Var(&qps, "kube-qps", 200, "API server requests per second, sustained")
	f.IntVar(&burst, "kube-burst", 400, "API server requests in a burst")
	logs.register(cmd)
	return cmd
}
