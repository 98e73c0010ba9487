package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/watcher"
	"github.com/kgate/kgate/xds"
)

// defaultXDSAddress is loopback: the xDS server carries no authentication,
// so it is opened to other machines only on request.
const defaultXDSAddress = "127.0.0.1:18000"

func newXDSCommand() *cobra.Command {
	var (
		paths   []string
		address string
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
'kgate local' or the Kubernetes controller provides them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logs.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			lis, err := net.Listen("tcp", address)
			if err != nil {
				return fmt.Errorf("--xds-address: %w", err)
			}
			return runXDS(cmd.Context(), log, paths, lis)
		},
	}
	cmd.Flags().StringSliceVarP(&paths, "filename", "f", nil, "folder or file of manifests (repeatable)")
	cmd.Flags().StringVar(&address, "xds-address", defaultXDSAddress, "host:port the xDS gRPC server listens on")
	logs.register(cmd)
	_ = cmd.MarkFlagRequired("filename")
	return cmd
}

// runXDS serves xDS on lis for the manifests until ctx ends.
func runXDS(ctx context.Context, log *slog.Logger, paths []string, lis net.Listener) error {
	srv := xds.NewServer(ctx, xds.ServerOptions{Logger: log})
	eng, err := xds.NewEngine(srv, xds.EngineOptions{Logger: log})
	if err != nil {
		lis.Close()
		return err
	}
	sync := &folderSync{engine: eng, log: log}
	folder, err := watcher.NewFolder(paths, watcher.FolderOptions{Logger: log, OnChange: sync.apply})
	if err != nil {
		lis.Close()
		return err
	}
	sync.folder = folder
	sync.apply(folder.Current())
	log.Info("serving xDS", "address", lis.Addr().String(), "version_prefix", srv.VersionPrefix())

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return folder.Run(ctx) })
	g.Go(func() error { return srv.Serve(ctx, lis) })
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// folderSync hands each reconciliation of a folder to the xDS engine and
// reports the host conflicts the engine finds back on the folder's objects.
type folderSync struct {
	folder *watcher.Folder
	engine *xds.Engine
	log    *slog.Logger
}

func (s *folderSync) apply(res *watcher.Result) {
	cfg := res.Model
	// Without a data plane attached every revision gets an empty load
	// assignment: Envoy then activates its cluster at once instead of
	// waiting out the EDS initial fetch timeout.
	cfg.Endpoints = make([]model.RevisionEndpoints, 0, len(cfg.Revisions))
	for _, rev := range cfg.Revisions {
		cfg.Endpoints = append(cfg.Endpoints, model.RevisionEndpoints{Revision: rev.Key(), Mode: model.Proxy})
	}
	if err := s.engine.Update(cfg); err != nil {
		s.log.Error("pushing the new config", "error", err)
	}
	s.folder.MarkConflicts(res, s.engine.Conflicts())
}
