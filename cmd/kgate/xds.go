package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/kgate/kgate/pki"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/watcher"
	"github.com/kgate/kgate/watcher/folder"
	"github.com/kgate/kgate/xds"
)

// defaultXDSAddress is loopback: kgate xds serves plaintext, without
// authentication, unless given credentials, which it needs to serve any
// other address.
const defaultXDSAddress = "127.0.0.1:18000"

func newXDSCommand() *cobra.Command {
	var (
		paths   []string
		address string
		tlsDir  string
		logs    logFlags
	)
	cmd := &cobra.Command{
		Use:   "xds -f DIR",
		Short: "Serve the Envoy config of a folder of Knative manifests over xDS",
		Long: `Watches the manifests (Services, Configurations, Routes and the ConfigMaps
config-domain, config-network and config-defaults) and serves their Envoy config
over ADS, state-of-the-world and delta, to Envoy gateways and proxyless gRPC
clients. A change to a file pushes only the resources it changed; an invalid
object is logged with file, line and field, and its last valid version keeps
serving.

This command runs the control plane alone: revisions have no endpoints until
'kgate local' or the Kubernetes controller provides them.

It is a development tool: on a loopback address it serves plaintext to anyone
on this machine. Any other address needs --tls-dir, the server's certificate
(role xds-server, see 'kgate certs'); clients then need certificates from the
same CA, and their role decides what they receive.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logs.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			var cfg *tls.Config
			if tlsDir == "" {
				if err := requireLoopback("--xds-address", address, "serving without --tls-dir"); err != nil {
					return err
				}
			} else {
				src, err := pki.NewDir(tlsDir)
				if err != nil {
					return fmt.Errorf("--tls-dir: %w", err)
				}
				b, _ := src.Bundle()
				if b.Identity().Role != pki.Server {
					return fmt.Errorf("--tls-dir: the certificate names %s; the server's must have role %s", b.Identity(), pki.Server)
				}
				cfg = pki.ServerConfig(src)
			}
			lis, err := net.Listen("tcp", address)
			if err != nil {
				return fmt.Errorf("--xds-address: %w", err)
			}
			return runXDS(cmd.Context(), log, paths, lis, cfg)
		},
	}
	cmd.Flags().StringSliceVarP(&paths, "filename", "f", nil, "folder or file of manifests (repeatable)")
	cmd.Flags().StringVar(&address, "xds-address", defaultXDSAddress, "host:port the xDS gRPC server listens on")
	cmd.Flags().StringVar(&tlsDir, "tls-dir", "", "folder of the server's credentials (ca.crt, tls.crt, tls.key; see kgate certs): require client certificates from that CA")
	logs.register(cmd)
	_ = cmd.MarkFlagRequired("filename")
	return cmd
}

// runXDS serves xDS on lis for the manifests until ctx ends.
func runXDS(ctx context.Context, log *slog.Logger, paths []string, lis net.Listener, tlsConfig *tls.Config) error {
	srv := xds.NewServer(ctx, xds.ServerOptions{Logger: log, TLS: tlsConfig})
	eng, err := xds.NewEngine(srv, xds.EngineOptions{Logger: log})
	if err != nil {
		lis.Close()
		return err
	}
	// Files have one author: DomainMappings claim their domains, as in
	// kgate local.
	pipe := watcher.New(watcher.Options{Routing: noDataPlane{eng}, Logger: log, AutocreateDomainClaims: true})
	src, err := folder.New(paths, folder.Options{Logger: log, Sink: pipe})
	if err != nil {
		lis.Close()
		return err
	}
	pipe.Apply(watcher.Change{Objects: src.Objects(), Replace: true})
	log.Info("serving xDS", "address", lis.Addr().String(), "version_prefix", srv.VersionPrefix(), "tls", tlsConfig != nil)

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return src.Run(ctx) })
	g.Go(func() error { return pipe.Run(ctx, nil) })
	g.Go(func() error { return srv.Serve(ctx, lis) })
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// noDataPlane routes to the engine for a control plane with no data plane
// attached: every revision gets an empty load assignment, so that Envoy
// activates its cluster at once instead of waiting out the EDS initial
// fetch timeout.
type noDataPlane struct{ engine *xds.Engine }

func (n noDataPlane) UpdateRouting(services []model.Service, revisions []model.Revision) error {
	endpoints := make([]model.RevisionEndpoints, 0, len(revisions))
	for _, rev := range revisions {
		endpoints = append(endpoints, model.RevisionEndpoints{Revision: rev.Key(), Mode: model.Proxy})
	}
	return n.engine.Update(model.Config{Services: services, Revisions: revisions, Endpoints: endpoints})
}
