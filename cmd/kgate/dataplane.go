package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/kgate/kgate/dataplane/devgateway"
	"github.com/kgate/kgate/dataplane/inflight"
	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/pki"
	"github.com/kgate/kgate/translator"
)

// envoyBinary is the Envoy kgate local looks for on PATH.
const envoyBinary = "envoy"

// runDataPlane serves the gateway listeners until ctx ends: Envoy when
// --envoy says so (auto: when one is on PATH), else the dev gateway, which
// counts its requests to each pod in counter (Envoy's are not counted) and
// registers its request metrics in reg. Access log lines go to standard
// output (Envoy's too), the rest of kgate's output to standard error.
func runDataPlane(ctx context.Context, log *slog.Logger, cfg localConfig, xdsAddress string, trust *localPKI, ready *readiness, counter *inflight.Counter, reg prometheus.Registerer) error {
	envoy, err := exec.LookPath(envoyBinary)
	switch {
	case cfg.envoy == "always" && err != nil:
		return fmt.Errorf("--envoy always: no %s on PATH: %w", envoyBinary, err)
	case cfg.envoy == "never" || err != nil:
		log.Info("data plane: kgate's dev gateway", "external", cfg.external, "internal", cfg.internal)
		conn, err := grpc.NewClient(xdsAddress, grpc.WithTransportCredentials(
			trust.client(pki.Identity{Role: pki.Gateway, ID: localGatewayID})))
		if err != nil {
			return fmt.Errorf("connecting to our own xDS server: %w", err)
		}
		defer conn.Close()
		tp, stopTracing, err := cfg.tracing.tracerProvider(log, translator.DefaultTracingServiceName)
		if err != nil {
			return err
		}
		defer stopTracing()
		var accessLog io.Writer
		if cfg.accessLog.enabled {
			accessLog = os.Stdout
		}
		return runDevGateway(ctx, log, conn, ready, counter, tp, accessLog, reg)
	}
	log.Info("data plane: Envoy", "binary", envoy, "external", cfg.external, "internal", cfg.internal)
	return runEnvoy(ctx, log, envoy, xdsAddress, trust)
}

// runEnvoy runs Envoy on a bootstrap that takes its whole config from our
// xDS server, until ctx ends; then it stops Envoy (SIGTERM, then SIGKILL).
func runEnvoy(ctx context.Context, log *slog.Logger, envoy, xdsAddress string, trust *localPKI) error {
	host, port, err := splitHostPort("--xds-address", xdsAddress)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "kgate-envoy-")
	if err != nil {
		return fmt.Errorf("writing the Envoy bootstrap: %w", err)
	}
	defer os.RemoveAll(dir)
	// Envoy reads its control-plane certificate from files, readable by
	// this user only, removed with the folder when Envoy stops.
	certs := filepath.Join(dir, "xds-tls")
	if err := trust.writeBundle(pki.Identity{Role: pki.Gateway, ID: localEnvoyID}, certs); err != nil {
		return err
	}
	b, err := translator.Bootstrap(translator.BootstrapOptions{
		NodeID: localEnvoyID, XDSAddress: host, XDSPort: port, Delta: true,
		XDSTLS: &translator.BootstrapTLS{
			CAFile:   filepath.Join(certs, pki.CAFile),
			CertFile: filepath.Join(certs, pki.CertFile),
			KeyFile:  filepath.Join(certs, pki.KeyFile),
		},
	})
	if err != nil {
		return err
	}
	js, err := protojson.Marshal(b)
	if err != nil {
		return fmt.Errorf("encoding the Envoy bootstrap: %w", err)
	}
	path := filepath.Join(dir, "bootstrap.json")
	if err := os.WriteFile(path, js, 0o600); err != nil {
		return fmt.Errorf("writing the Envoy bootstrap: %w", err)
	}
	cmd := exec.Command(envoy, "-c", path, "--log-level", "warn", "--base-id", fmt.Sprint(os.Getpid()%60000))
	// Its access log on our standard output, its own log on standard error.
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	// Its own process group: Ctrl-C reaches kgate, which stops Envoy in
	// order, rather than both at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting Envoy: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		return fmt.Errorf("Envoy exited: %w", err)
	case <-ctx.Done():
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		log.Warn("Envoy did not stop within 10s; killing it")
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	return nil
}

// runDevGateway serves the gateway listeners with kgate's dev gateway, an
// xDS client of our own server, until ctx ends.
// tp, when not nil, traces the requests of listeners configured to;
// accessLog, when not nil, takes the access log lines.
func runDevGateway(ctx context.Context, log *slog.Logger, conn *grpc.ClientConn, ready *readiness, counter *inflight.Counter, tp trace.TracerProvider,
	accessLog io.Writer, reg prometheus.Registerer) error {
	gw, err := devgateway.New(conn, devgateway.Options{
		Node:     xdsclient.Node{ID: localGatewayID, Cluster: "kgate", UserAgent: "kgate-dev-gateway"},
		Logger:   log,
		Inflight: counter,
		// The same collector and rate as the translator gave Envoy.
		TracerProvider: tp,
		AccessLog:      accessLog,
		Metrics:        reg,
	})
	if err != nil {
		return err
	}
	ready.set("dev gateway", gw.Ready)
	return gw.Run(ctx)
}
