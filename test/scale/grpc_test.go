package scale

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	grpcxds "google.golang.org/grpc/xds"

	"github.com/kgate/kgate/pki"
	"github.com/kgate/kgate/xds"
)

// proxylessID is the node id prefix of the grpc-go clients; each has a
// certificate for its own node id.
const proxylessID = "scale-grpc-"

// grpc-go's own xDS client, over mutual TLS from its bootstrap, resolves
// sampled hosts of the fleet and its RPCs reach the pod.
func TestGRPCClientSyncsTheFleet(t *testing.T) {
	cp := newControlPlane(t, fleetSize(t, testServices))
	took := syncGRPC(t, cp, proxylessID+"0")
	t.Logf("%d Services: fleet published in %v; grpc-go resolved %d hosts and answered an RPC to each in %v",
		cp.n, cp.setup.Round(time.Millisecond), len(grpcTargets(cp.n)), took)
	cp.checkQuiet(t)
}

// BenchmarkGRPCClientSync measures how long grpc-go takes from creating
// its channels to the first answered RPC on every sampled host; each
// iteration is a new xDS client (a new node id) and new channels.
func BenchmarkGRPCClientSync(b *testing.B) {
	cp := newControlPlane(b, fleetSize(b, benchServices))
	var stats syncStats
	for i := 0; b.Loop(); i++ {
		stats.add(b, syncGRPC(b, cp, fmt.Sprint(proxylessID, i)))
	}
	stats.report(b, cp)
	b.ReportMetric(float64(len(grpcTargets(cp.n))), "hosts")
	cp.checkQuiet(b)
}

// grpcTargets are the hosts grpc-go resolves: the first, middle and last
// Services' external hosts and cluster-local names. grpc-go opens one xDS
// stream per target, and one load report stream per target once it has
// sent RPCs: two streams a host under one node id, 12 here, past the 8 an
// Envoy's node id may hold (the proxyless role has its own limit).
func grpcTargets(n int) []string {
	var out []string
	for _, s := range samples(n) {
		out = append(out, s.external, s.local)
	}
	return out
}

// syncGRPC resolves grpcTargets with grpc-go's xDS resolver as node id,
// until an RPC on each is answered by the pod, and returns how long that
// took from creating the channels.
func syncGRPC(tb testing.TB, cp *controlPlane, id string) syncTime {
	tb.Helper()
	builder, err := grpcxds.NewXDSResolverWithConfigForTesting(grpcBootstrap(tb, cp, id))
	if err != nil {
		tb.Fatalf("grpc-go's xds resolver: %v", err)
	}
	targets := grpcTargets(cp.n)
	start, startCPU := startSync()
	conns := make([]*grpc.ClientConn, len(targets))
	for i, host := range targets {
		// The pod speaks plaintext h2c; the xDS channel is TLS from the
		// bootstrap.
		conns[i], err = grpc.NewClient("xds:///"+host, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(builder))
		if err != nil {
			tb.Fatalf("a channel to xds:///%s: %v", host, err)
		}
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var wg sync.WaitGroup
	took := make([]time.Duration, len(targets))
	errs := make([]error, len(targets))
	for i, host := range targets {
		wg.Go(func() { took[i], errs[i] = firstRPC(conns[i], host, start, syncWithin(cp.n)) })
	}
	wg.Wait()
	// The CPU time is until the last RPC was answered, give or take a
	// little of the other channels' retries.
	st := since(start, startCPU)
	st.wall = 0
	for i, err := range errs {
		if err != nil {
			tb.Errorf("%s: %v", id, err)
		}
		st.wall = max(st.wall, took[i])
	}
	if tb.Failed() {
		tb.FailNow()
	}
	// The server served them as a proxyless client's: API listeners.
	for _, host := range targets {
		if !cp.ackedAs(id, xds.Proxyless, resource.ListenerType, host) {
			tb.Errorf("%s: the server has no ACK of API listener %s from it as a proxyless client: %+v", id, host, cp.srv.Acked(resource.ListenerType, host))
		}
	}
	return st
}

// firstRPC sends UnaryCall on conn until one is answered by the pod, and
// returns when that was, from start; it gives up within that of start,
// with the last error.
func firstRPC(conn *grpc.ClientConn, host string, start time.Time, within time.Duration) (time.Duration, error) {
	client := testgrpc.NewTestServiceClient(conn)
	var last error
	for time.Since(start) < within {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		resp, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{FillServerId: true})
		cancel()
		if err == nil {
			if resp.GetServerId() != "pod" {
				return 0, fmt.Errorf("xds:///%s: answered by %q, want the pod", host, resp.GetServerId())
			}
			return time.Since(start), nil
		}
		last = err
		time.Sleep(10 * time.Millisecond)
	}
	return 0, fmt.Errorf("xds:///%s: no RPC answered within %v; last: %w", host, within, last)
}

// grpcBootstrap is grpc-go's bootstrap for the control plane: the server,
// mutual TLS with a proxyless certificate for node id from files
// (grpc-go's "tls" channel credentials, gRFC A65), and node id.
func grpcBootstrap(tb testing.TB, cp *controlPlane, id string) []byte {
	tb.Helper()
	dir := tb.TempDir()
	if err := cp.issue(tb, pki.Identity{Role: pki.Proxyless, ID: id}).WriteFiles(dir); err != nil {
		tb.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{
		"xds_servers": []any{map[string]any{
			"server_uri": cp.addr,
			"channel_creds": []any{map[string]any{"type": "tls", "config": map[string]string{
				"ca_certificate_file": filepath.Join(dir, pki.CAFile),
				"certificate_file":    filepath.Join(dir, pki.CertFile),
				"private_key_file":    filepath.Join(dir, pki.KeyFile),
			}}},
			"server_features": []string{"xds_v3"},
		}},
		"node": map[string]string{"id": id, "cluster": "kgate"},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
