package main

import (
	"github.com/spf13/cobra"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "kgate",
		Short:         "Knative Serving on Envoy: one control plane, incremental xDS, built-in autoscaler",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newXDSCommand(), newActivatorCommand(), newBootstrapCommand(), newValidateCommand(), newGetCommand(), newLocalCommand(), newControllerCommand(), newIngressCommand(), newCertsCommand())
	root.AddCommand(newSampleCommand())
	root.AddCommand(newConfigDumpCommand())
	return root
}
