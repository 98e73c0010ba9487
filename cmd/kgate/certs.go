package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/kgate/kgate/pki"
)

// CA file names in a CA folder: the key stays beside the certificate.
const (
	caCertFile = "ca.crt"
	caKeyFile  = "ca.key"
)

func newCertsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Make the control plane's CA and certificates (outside Kubernetes, where the controller makes them)",
		Long: `The control plane and its clients authenticate each other with certificates from
one CA; each client certificate names a role (gateway, activator, proxyless,
observer) and the node id the client uses. In Kubernetes the controller makes
and rotates them; elsewhere:

  kgate certs ca --out ca/
  kgate certs issue --ca ca/ --role xds-server --id kgate --ip 10.0.0.5 --out server/
  kgate certs issue --ca ca/ --role gateway --id 'edge-*' --out gateway/

A certificate folder holds ca.crt, tls.crt and tls.key, as a kubernetes.io/tls
Secret does; give it to kgate xds --tls-dir, kgate activator --xds-tls-dir and
kgate bootstrap --xds-tls-dir.`,
	}
	cmd.AddCommand(newCertsCACommand(), newCertsIssueCommand())
	return cmd
}

func newCertsCACommand() *cobra.Command {
	var (
		out      string
		lifetime time.Duration
	)
	cmd := &cobra.Command{
		Use:   "ca --out DIR",
		Short: "Make a new CA: DIR/ca.crt and DIR/ca.key (readable by the owner only)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := os.Stat(filepath.Join(out, caKeyFile)); err == nil {
				return fmt.Errorf("--out %s: already holds a CA; remove it first to replace it", out)
			}
			ca, err := pki.NewCA("kgate control plane", time.Now(), lifetime)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o700); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			if err := os.WriteFile(filepath.Join(out, caCertFile), ca.CertPEM(), 0o644); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			if err := os.WriteFile(filepath.Join(out, caKeyFile), ca.KeyPEM(), 0o600); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "CA written to %s (expires %s)\n", out, ca.NotAfter().Format(time.DateOnly))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "folder to write the CA into")
	cmd.Flags().DurationVar(&lifetime, "lifetime", pki.DefaultCALifetime, "how long the CA is valid")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func newCertsIssueCommand() *cobra.Command {
	var (
		caDir, out, role, id string
		dns                  []string
		ips                  []net.IP
		lifetime             time.Duration
	)
	cmd := &cobra.Command{
		Use:   "issue --ca DIR --role ROLE --id ID --out DIR",
		Short: "Issue a certificate for one role and node id: DIR/ca.crt, tls.crt, tls.key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := pki.ParseRole(role)
			if err != nil {
				return fmt.Errorf("--role: %w", err)
			}
			certPEM, err := os.ReadFile(filepath.Join(caDir, caCertFile))
			if err != nil {
				return fmt.Errorf("--ca: %w", err)
			}
			keyPEM, err := os.ReadFile(filepath.Join(caDir, caKeyFile))
			if err != nil {
				return fmt.Errorf("--ca: %w", err)
			}
			ca, err := pki.LoadCA(certPEM, keyPEM)
			if err != nil {
				return fmt.Errorf("--ca: %w", err)
			}
			if r != pki.Server && (len(dns) > 0 || len(ips) > 0) {
				return errors.New("--dns and --ip are for --role xds-server: clients are known by their identity")
			}
			b, err := ca.Issue(pki.Request{Identity: pki.Identity{Role: r, ID: id}, DNSNames: dns, IPs: ips, Now: time.Now(), Lifetime: lifetime})
			if err != nil {
				return fmt.Errorf("--id: %w", err)
			}
			if err := b.WriteFiles(out); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s written to %s (expires %s)\n", b.Identity(), out, b.NotAfter().Format(time.DateOnly))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&caDir, "ca", "", "folder of the CA (kgate certs ca)")
	f.StringVar(&out, "out", "", "folder to write the certificate into")
	f.StringVar(&role, "role", "", "gateway, activator, proxyless, observer or xds-server")
	f.StringVar(&id, "id", "", "the node id the holder uses; a trailing * matches any suffix")
	f.StringSliceVar(&dns, "dns", nil, "DNS names of the xDS server (--role xds-server)")
	f.IPSliceVar(&ips, "ip", nil, "IP addresses of the xDS server (--role xds-server)")
	f.DurationVar(&lifetime, "lifetime", pki.DefaultLifetime, "how long the certificate is valid")
	for _, name := range []string{"ca", "out", "role", "id"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}
