package main

import (
	"fmt"
	"net"
	"strconv"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	"github.com/kgate/kgate/translator"
)

func newBootstrapCommand() *cobra.Command {
	var (
		opts       translator.BootstrapOptions
		xdsAddress string
		admin      string
		sotw       bool
		output     string
	)
	cmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "Print an Envoy bootstrap that takes its whole config from kgate over ADS",
		Long: `Prints an Envoy bootstrap (YAML by default) whose listeners and clusters, and
through them routes and endpoints, come from kgate's xDS server over one
incremental (delta) ADS gRPC stream. Run Envoy with: envoy -c bootstrap.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if opts.XDSAddress, opts.XDSPort, err = splitHostPort("--xds-address", xdsAddress); err != nil {
				return err
			}
			if opts.AdminAddress, opts.AdminPort, err = splitHostPort("--admin-address", admin); err != nil {
				return err
			}
			opts.Delta = !sotw
			b, err := translator.Bootstrap(opts)
			if err != nil {
				return err
			}
			js, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true}.Marshal(b)
			if err != nil {
				return fmt.Errorf("encoding the bootstrap: %w", err)
			}
			switch output {
			case "json":
				_, err = fmt.Fprintln(cmd.OutOrStdout(), string(js))
			case "yaml":
				var y []byte
				if y, err = yaml.JSONToYAML(js); err != nil {
					return fmt.Errorf("encoding the bootstrap: %w", err)
				}
				_, err = cmd.OutOrStdout().Write(y)
			default:
				return fmt.Errorf("--output %q: must be yaml or json", output)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.NodeID, "node-id", "kgate-gateway", "the Envoy node id")
	f.StringVar(&opts.NodeCluster, "node-cluster", "kgate", "the Envoy node cluster")
	f.StringVar(&xdsAddress, "xds-address", defaultXDSAddress, "host:port of kgate's xDS server (an IP, or a DNS name Envoy resolves)")
	f.StringVar(&admin, "admin-address", net.JoinHostPort(translator.DefaultAdminAddress, strconv.Itoa(translator.DefaultAdminPort)), "host:port of Envoy's admin interface")
	f.BoolVar(&sotw, "sotw", false, "use state-of-the-world ADS instead of delta")
	f.StringVarP(&output, "output", "o", "yaml", "output format: yaml or json")
	return cmd
}

// splitHostPort parses a flag's host:port into a host and a port number.
func splitHostPort(flag, value string) (string, uint32, error) {
	host, port, err := net.SplitHostPort(value)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: must be host:port: %w", flag, value, err)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("%s %q: the port must be a number from 1 to 65535", flag, value)
	}
	return host, uint32(n), nil
}
