// Package samples holds Knative's sample apps as Go code, so that the
// revisions of the tutorials run locally without their container images:
// helloworld (helloworld-go, and Aliyun's simple-app) and autoscale
// (autoscale-go). `kgate sample NAME` serves one; the local deployer maps
// the samples' images to that command.
package samples

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// The samples' names, as `kgate sample NAME` takes them.
const (
	NameHelloworld = "helloworld"
	NameAutoscale  = "autoscale"
)

// Names returns the samples' names, sorted.
func Names() []string { return []string{NameAutoscale, NameHelloworld} }

// Handler returns the named sample, configured from the environment as its
// container would be (TARGET for helloworld).
func Handler(name string, getenv func(string) string) (http.Handler, error) {
	switch name {
	case NameHelloworld:
		return Helloworld(getenv("TARGET")), nil
	case NameAutoscale:
		return Autoscale(), nil
	}
	return nil, fmt.Errorf("no sample %q: the samples are %s", name, strings.Join(Names(), ", "))
}

// DefaultPort is the port the samples listen on when PORT is empty, as in
// their containers.
const DefaultPort = "8080"

// Address is where a sample listens given $PORT: a bare port is on
// 127.0.0.1, since locally nothing but this machine's gateway should reach
// it; a host:port (":8080" for every interface) is taken as it is.
func Address(port string) string {
	if port == "" {
		port = DefaultPort
	}
	if strings.Contains(port, ":") {
		return port
	}
	return net.JoinHostPort("127.0.0.1", port)
}

// DrainTimeout bounds how long a stopping sample waits for its requests in
// flight: Knative's default revision timeout, after which the gateway has
// given up on them anyway.
const DrainTimeout = 300 * time.Second

// Run serves the named sample on Address($PORT) until ctx ends, then drains
// it within drain (DrainTimeout for `kgate sample NAME`, unless
// --drain-timeout says otherwise).
func Run(ctx context.Context, log *slog.Logger, name string, getenv func(string) string, drain time.Duration) error {
	h, err := Handler(name, getenv)
	if err != nil {
		return err
	}
	addr := Address(getenv("PORT"))
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("sample %s: listening on %s (from PORT): %w", name, addr, err)
	}
	log.Info("sample serving", "sample", name, "address", lis.Addr().String())
	if err := Serve(ctx, lis, h, drain); err != nil {
		return fmt.Errorf("sample %s: %w", name, err)
	}
	log.Info("sample drained", "sample", name)
	return nil
}

// Serve serves h on lis until ctx ends; then it stops accepting connections
// and waits up to drain for the requests in flight to complete, as a pod
// does on SIGTERM. It returns nil when they all did.
func Serve(ctx context.Context, lis net.Listener, h http.Handler, drain time.Duration) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	select {
	case err := <-served:
		return fmt.Errorf("serving on %s: %w", lis.Addr(), err)
	case <-ctx.Done():
	}
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	err := srv.Shutdown(drainCtx)
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("serving on %s: %w", lis.Addr(), serr)
	}
	if err != nil {
		srv.Close()
		return fmt.Errorf("requests still in flight after %s: %w", drain, err)
	}
	return nil
}
