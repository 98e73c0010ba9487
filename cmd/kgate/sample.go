package main

import (
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kgate/kgate/deploy/samples"
)

func newSampleCommand() *cobra.Command {
	var logs logFlags
	drain := samples.DrainTimeout
	cmd := &cobra.Command{
		Use:   "sample NAME",
		Short: "Serve one of Knative's sample apps: " + strings.Join(samples.Names(), " or "),
		Long: `Serves a Knative sample app, as its container image would, so that the
tutorials' Services run locally without containers (kgate local maps the
samples' images to this command):

  helloworld  helloworld-go (and Aliyun's simple-app): answers "Hello $TARGET!",
              TARGET defaulting to World.
  autoscale   autoscale-go: ?sleep=MS sleeps, ?prime=N computes the primes
              below N, ?bloat=MB allocates MB megabytes, in parallel.

It listens on $PORT (default 8080) on 127.0.0.1, or on PORT itself when that
is host:port (":8080" for every interface). On SIGTERM or SIGINT it stops
accepting connections, lets the requests in flight complete (up to
--drain-timeout), and exits 0. --drain-timeout 0 exits at once, cutting them,
as most apps do.`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: samples.Names(),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := logs.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return samples.Run(cmd.Context(), log, args[0], os.Getenv, drain)
		},
	}
	cmd.Flags().DurationVar(&drain, "drain-timeout", drain, "how long requests in flight may take after SIGTERM; 0 cuts them at once")
	logs.register(cmd)
	return cmd
}
