package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/pki"
)

// fakeEnvoy puts an "envoy" on PATH that copies the bootstrap it is given
// to out/bootstrap.json and runs until SIGTERM.
func fakeEnvoy(t *testing.T) (out string) {
	t.Helper()
	bin, out := t.TempDir(), t.TempDir()
	script := "#!/bin/sh\ncp \"$2\" \"" + out + "/bootstrap.json\"\ntrap 'exit 0' TERM\nwhile :; do sleep 0.05; done\n"
	if err := os.WriteFile(filepath.Join(bin, envoyBinary), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return out
}

// With an envoy on PATH, kgate local runs it on a bootstrap that takes
// everything from our xDS server over delta ADS, and stops it on exit.
func TestDataPlaneRunsEnvoyFromPath(t *testing.T) {
	out := fakeEnvoy(t)
	cfg := localConfig{envoy: "auto"}
	trust, err := newLocalPKI()
	if err != nil {
		t.Fatal(err)
	}
	stop := testrun.Go(t, context.Background(), "runDataPlane (which stops Envoy)", 15*time.Second, func(ctx context.Context) error {
		return runDataPlane(ctx, slog.New(slog.DiscardHandler), cfg, "127.0.0.1:18555", trust, nil, nil, nil)
	})

	path := filepath.Join(out, "bootstrap.json")
	var js []byte
	testrun.Poll{Within: 10 * time.Second, Every: 10 * time.Millisecond}.Until(t, "envoy is started with a bootstrap", func() bool {
		var err error
		js, err = os.ReadFile(path)
		return err == nil && len(js) > 0
	})
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(js, &b); err != nil {
		t.Fatalf("the bootstrap does not decode: %v", err)
	}
	if err := b.ValidateAll(); err != nil {
		t.Fatalf("the bootstrap does not validate: %v", err)
	}
	if got := b.GetDynamicResources().GetAdsConfig().GetApiType(); got != corev3.ApiConfigSource_DELTA_GRPC {
		t.Errorf("ADS %v, want delta", got)
	}
	sa := b.GetStaticResources().GetClusters()[0].GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
	if sa.GetAddress() != "127.0.0.1" || sa.GetPortValue() != 18555 {
		t.Errorf("the bootstrap reaches %s:%d, want the --xds-address", sa.GetAddress(), sa.GetPortValue())
	}
	// Envoy authenticates with a gateway certificate of this run's CA,
	// in files only this user can read.
	ts := b.GetStaticResources().GetClusters()[0].GetTransportSocket()
	if ts.GetName() != "envoy.transport_sockets.tls" {
		t.Fatalf("the xds cluster's transport socket is %q, want TLS", ts.GetName())
	}
	var tlsCtx tlsv3.UpstreamTlsContext
	if err := ts.GetTypedConfig().UnmarshalTo(&tlsCtx); err != nil {
		t.Fatal(err)
	}
	certFile := tlsCtx.GetCommonTlsContext().GetTlsCertificates()[0].GetCertificateChain().GetFilename()
	bundle, err := pki.ReadBundle(filepath.Dir(certFile))
	if err != nil {
		t.Fatalf("Envoy's credentials: %v", err)
	}
	if want := (pki.Identity{Role: pki.Gateway, ID: localEnvoyID}); bundle.Identity() != want {
		t.Errorf("Envoy's certificate names %v, want %v", bundle.Identity(), want)
	}
	if fi, err := os.Stat(filepath.Join(filepath.Dir(certFile), pki.KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("Envoy's key file: %v, %v; want mode 0600", fi.Mode(), err)
	}

	stop()
}

func TestDataPlaneEnvoyAlwaysNeedsEnvoy(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := runDataPlane(context.Background(), slog.New(slog.DiscardHandler), localConfig{envoy: "always"}, "127.0.0.1:1", nil, nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "--envoy always") {
		t.Errorf("error %v, want one naming --envoy always", err)
	}
}
