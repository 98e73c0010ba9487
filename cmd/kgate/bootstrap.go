package main

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/kgate/kgate/pki"
	"github.com/kgate/kgate/translator"
)

// bootstrapFile is the file `kgate bootstrap` prints by default: Envoy's
// -c. The others it can print are the SDS files the bootstrap names.
const bootstrapFile = "bootstrap.yaml"

// defaultSDSDir is where the install mounts the gateway's bootstrap
// ConfigMap, whose keys are the files `kgate bootstrap --file` prints.
const defaultSDSDir = "/etc/envoy"

// bootstrapFlags are the flags of `kgate bootstrap` that need parsing.
type bootstrapFlags struct {
	xdsAddress, admin, output, file string
	stats                           string
	sotw, plaintext                 bool
	tlsDir, sdsDir, maxHeap         string
}

func newBootstrapCommand() *cobra.Command {
	var (
		opts translator.BootstrapOptions
		f    bootstrapFlags
	)
	cmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "Print an Envoy bootstrap that takes its whole config from kgate over ADS",
		Long: `Prints an Envoy bootstrap (YAML by default) whose listeners and clusters, and
through them routes and endpoints, come from kgate's xDS server over one
incremental (delta) ADS gRPC stream in mutual TLS. Run Envoy with:
envoy -c bootstrap.yaml

Envoy's client certificate, its key and the CA of the control plane are
` + pki.CertFile + `, ` + pki.KeyFile + ` and ` + pki.CAFile + ` in --xds-tls-dir (a kubernetes.io/tls
Secret). Envoy reads them through two SDS files, which must sit in
--xds-tls-sds-dir: print them with --file ` + translator.XDSTLSCertificateFile + ` and
--file ` + translator.XDSTLSValidationFile + `. It then re-reads the certificates when the
Secret changes; with --xds-tls-sds-dir "" they are inline instead, read once
at start. --plaintext is for a development server on loopback only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.apply(&opts); err != nil {
				return err
			}
			m, err := f.render(opts)
			if err != nil {
				return err
			}
			return printProto(cmd.OutOrStdout(), m, f.output)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&opts.NodeID, "node-id", "kgate-gateway", "the Envoy node id")
	fs.StringVar(&opts.NodeCluster, "node-cluster", "kgate", "the Envoy node cluster")
	fs.StringVar(&f.xdsAddress, "xds-address", defaultXDSAddress, "host:port of kgate's xDS server (an IP, or a DNS name Envoy resolves)")
	fs.StringVar(&f.admin, "admin-address", net.JoinHostPort(translator.DefaultAdminAddress, strconv.Itoa(translator.DefaultAdminPort)), "host:port of Envoy's admin interface")
	fs.StringVar(&f.stats, "stats-address", net.JoinHostPort(translator.DefaultAddress, strconv.Itoa(translator.DefaultStatsPort)),
		`host:port of the stats listener, which serves `+translator.StatsPath+` and `+translator.ReadyPath+` from the admin interface to scrapers and probes (Kourier's port 9000); "" for none`)
	fs.BoolVar(&f.sotw, "sotw", false, "use state-of-the-world ADS instead of delta")
	fs.StringVar(&f.tlsDir, "xds-tls-dir", defaultXDSTLSDir, "folder of Envoy's control-plane credentials: "+pki.CAFile+", "+pki.CertFile+", "+pki.KeyFile)
	fs.StringVar(&f.sdsDir, "xds-tls-sds-dir", defaultSDSDir, `folder of the SDS files through which Envoy re-reads its credentials when they change; "" sets them inline, read once`)
	fs.BoolVar(&f.plaintext, "plaintext", false, "no TLS to the control plane: only to a development server (kgate xds) on a loopback address")
	fs.StringVar(&f.maxHeap, "max-heap", resource.NewQuantity(translator.DefaultMaxHeapBytes, resource.BinarySI).String(),
		"heap size the overload manager measures Envoy against: it frees memory at 95 % and refuses new requests at 98 % (keep it under the container's memory limit)")
	fs.Int64Var(&opts.MaxDownstreamConnections, "max-downstream-connections", translator.DefaultMaxDownstreamConnections,
		"most connections Envoy's listeners hold at once (keep it under half the file descriptor limit)")
	fs.StringVar(&f.file, "file", bootstrapFile, "what to print: "+bootstrapFile+", or one of the SDS files it names, "+
		translator.XDSTLSCertificateFile+" or "+translator.XDSTLSValidationFile)
	fs.StringVarP(&f.output, "output", "o", "yaml", "output format: yaml or json")
	return cmd
}

// apply parses the flags into opts.
func (f bootstrapFlags) apply(opts *translator.BootstrapOptions) error {
	var err error
	if opts.XDSAddress, opts.XDSPort, err = splitHostPort("--xds-address", f.xdsAddress); err != nil {
		return err
	}
	if opts.AdminAddress, opts.AdminPort, err = splitHostPort("--admin-address", f.admin); err != nil {
		return err
	}
	if f.stats != "" {
		if opts.StatsAddress, opts.StatsPort, err = splitHostPort("--stats-address", f.stats); err != nil {
			return err
		}
	}
	if opts.MaxHeapBytes, err = parseBytes("--max-heap", f.maxHeap); err != nil {
		return err
	}
	opts.Delta = !f.sotw
	if f.plaintext {
		return requireLoopback("--xds-address", f.xdsAddress, "--plaintext")
	}
	opts.XDSTLS = &translator.BootstrapTLS{
		CAFile:       filepath.Join(f.tlsDir, pki.CAFile),
		CertFile:     filepath.Join(f.tlsDir, pki.CertFile),
		KeyFile:      filepath.Join(f.tlsDir, pki.KeyFile),
		SDSDirectory: f.sdsDir,
	}
	if f.sdsDir != "" {
		// A Secret volume swaps its "..data" link in this folder.
		opts.XDSTLS.WatchedDirectory = f.tlsDir
	}
	return nil
}

// render returns the file --file names.
func (f bootstrapFlags) render(opts translator.BootstrapOptions) (proto.Message, error) {
	b, err := translator.Bootstrap(opts) // also checks the options the SDS files depend on
	if err != nil || f.file == bootstrapFile {
		return b, err
	}
	if f.file != translator.XDSTLSCertificateFile && f.file != translator.XDSTLSValidationFile {
		return nil, fmt.Errorf("--file %q: must be %s, %s or %s", f.file, bootstrapFile, translator.XDSTLSCertificateFile, translator.XDSTLSValidationFile)
	}
	if opts.XDSTLS == nil || opts.XDSTLS.SDSDirectory == "" {
		return nil, fmt.Errorf("--file %s: this bootstrap names no SDS file (--plaintext, or --xds-tls-sds-dir empty)", f.file)
	}
	files, err := translator.XDSTLSSecretFiles(*opts.XDSTLS)
	if err != nil {
		return nil, err
	}
	return files[f.file], nil
}

// printProto writes m in Envoy's field names as YAML or JSON.
func printProto(w io.Writer, m proto.Message, output string) error {
	js, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true}.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding the bootstrap: %w", err)
	}
	switch output {
	case "json":
		_, err = fmt.Fprintln(w, string(js))
	case "yaml":
		var y []byte
		if y, err = yaml.JSONToYAML(js); err != nil {
			return fmt.Errorf("encoding the bootstrap: %w", err)
		}
		_, err = w.Write(y)
	default:
		return fmt.Errorf("--output %q: must be yaml or json", output)
	}
	return err
}

// parseBytes parses a flag's size: a number of bytes or a Kubernetes
// quantity such as 768Mi.
func parseBytes(flag, value string) (uint64, error) {
	q, err := resource.ParseQuantity(value)
	if err != nil || q.Sign() <= 0 {
		return 0, fmt.Errorf("%s %q: must be a positive size such as 768Mi or 1Gi", flag, value)
	}
	return uint64(q.Value()), nil
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
