package main

import (
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/spf13/cobra"

	"github.com/kgate/kgate/localstate"
	"github.com/kgate/kgate/pki"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
)

// The local HTTPS certificate authority: kept in the state store across
// runs and --reset (users trust it once), and written as ca.crt into the
// state folder for `kgate local ca` and curl --cacert.
const (
	keptHTTPSCACert = "https-ca.crt"
	keptHTTPSCAKey  = "https-ca.key"
	httpsCAFile     = "ca.crt"
)

// secrets is where certificates go: the xDS engine's SDS secrets.
type secrets interface {
	SetSecret(*tlsv3.Secret) error
	DeleteSecret(name string) error
}

// localHTTPS gives every host served over TLS a certificate from the local
// CA, as the SDS secret named by the host, and renews it at two thirds of
// its life.
type localHTTPS struct {
	log  *slog.Logger
	ca   *pki.CA
	out  secrets
	now  func() time.Time
	life time.Duration

	mu     sync.Mutex
	issued map[string]time.Time // host → when its certificate is renewed
	hosts  []string             // the hosts of the last sync
}

// newLocalHTTPS loads the local CA from the store, or makes and keeps one,
// and writes its certificate into the state folder.
func newLocalHTTPS(log *slog.Logger, store *localstate.Store, out secrets) (*localHTTPS, error) {
	now := time.Now()
	var ca *pki.CA
	certPEM, keyPEM := store.Kept(keptHTTPSCACert), store.Kept(keptHTTPSCAKey)
	if certPEM != nil && keyPEM != nil {
		loaded, err := pki.LoadCA(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("loading the local HTTPS CA from %s (--reset keeps it; remove the state folder to start over): %w", store.Dir(), err)
		}
		ca = loaded
	} else {
		made, err := pki.NewCA("kgate local HTTPS CA", now, 0)
		if err != nil {
			return nil, err
		}
		// The key first: a crash between the two leaves no certificate,
		// and the next start makes a new pair.
		if err := store.Keep(keptHTTPSCAKey, made.KeyPEM()); err != nil {
			return nil, err
		}
		if err := store.Keep(keptHTTPSCACert, made.CertPEM()); err != nil {
			return nil, err
		}
		ca = made
		log.Info("made the local HTTPS certificate authority; trust it once (kgate local ca)", "ca", filepath.Join(store.Dir(), httpsCAFile))
	}
	if err := os.WriteFile(filepath.Join(store.Dir(), httpsCAFile), ca.CertPEM(), 0o644); err != nil {
		return nil, fmt.Errorf("writing the local HTTPS CA certificate: %w", err)
	}
	return &localHTTPS{log: log, ca: ca, out: out, now: time.Now, life: pki.DefaultHostLifetime, issued: map[string]time.Time{}}, nil
}

// tlsHosts lists the hosts of services served over TLS, sorted.
func tlsHosts(services []model.Service) []string {
	set := map[string]bool{}
	for _, svc := range services {
		for _, vh := range svc.VirtualHosts {
			if vh.TLS {
				set[vh.Host] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// sync issues the certificates hosts lack or must renew, and withdraws
// those of hosts no longer served over TLS.
func (l *localHTTPS) sync(hosts []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hosts = hosts
	now := l.now()
	want := map[string]bool{}
	for _, host := range hosts {
		want[host] = true
		if renew, ok := l.issued[host]; ok && now.Before(renew) {
			continue
		}
		certPEM, keyPEM, err := l.ca.IssueHost([]string{host}, now, l.life)
		if err != nil {
			l.log.Error("no certificate for a host served over HTTPS", "host", host, "error", err)
			continue
		}
		if err := l.out.SetSecret(translator.Secret(host, certPEM, keyPEM)); err != nil {
			l.log.Error("pushing a host's certificate", "host", host, "error", err)
			continue
		}
		l.issued[host] = now.Add(l.life * 2 / 3)
		l.log.Debug("issued a certificate", "host", host)
	}
	for host := range l.issued {
		if !want[host] {
			delete(l.issued, host)
			if err := l.out.DeleteSecret(host); err != nil {
				l.log.Error("withdrawing a host's certificate", "host", host, "error", err)
			}
		}
	}
}

// renewDue re-syncs the last hosts, renewing what is due: run periodically.
func (l *localHTTPS) renewDue() {
	l.mu.Lock()
	hosts := l.hosts
	l.mu.Unlock()
	l.sync(hosts)
}

// newLocalCACommand is `kgate local ca`: where the local HTTPS CA's
// certificate is, and how to trust it.
func newLocalCACommand() *cobra.Command {
	var paths []string
	var stateDir string
	cmd := &cobra.Command{
		Use:   "ca -f PATH...",
		Short: "Print the local HTTPS certificate authority's certificate path, and how to trust it",
		Long: `kgate local serves hosts that config-network serves over TLS
(external-domain-tls: Enabled) with certificates from a certificate authority
of its own, made on first use and kept in the state folder (across --reset
too). Give the same -f paths (or --state-dir) as the kgate local it is for;
this prints the path of its CA certificate (PEM) and how to trust it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := stateFolder(localConfig{paths: paths, stateDir: stateDir})
			if err != nil {
				return err
			}
			path := filepath.Join(dir, httpsCAFile)
			if _, err := os.Stat(path); err != nil {
				return fmt.Errorf("no local HTTPS CA in %s yet: run kgate local with the same -f first", dir)
			}
			fmt.Fprintf(cmd.OutOrStdout(), `%s

Trust it once:
  curl:     curl --cacert %s https://HOST:8443/
  Debian:   sudo cp %s /usr/local/share/ca-certificates/kgate-local.crt && sudo update-ca-certificates
  macOS:    sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain %s
  browsers: import it as an authority (Chrome and Firefox: Settings, Certificates)
`, path, path, path, path)
			return nil
		},
	}
	cmd.Flags().StringSliceVarP(&paths, "filename", "f", nil, "the folders or files of manifests kgate local runs on (repeatable)")
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "the state folder, when kgate local runs with --state-dir")
	return cmd
}
