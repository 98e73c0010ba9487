package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/kgate/kgate/internal/testrun"
)

// TestXDSServesAFolder runs the xds command's loop on a folder and watches
// it from a state-of-the-world ADS client, as Envoy would: the clusters
// follow the files, and an invalid edit keeps the last good config.
func TestXDSServesAFolder(t *testing.T) {
	dir := t.TempDir()
	copyExample(t, "hello.yaml", dir)

	lis := testrun.Listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	testrun.Go(t, ctx, "runXDS", 10*time.Second, func(ctx context.Context) error {
		return runXDS(ctx, slog.New(slog.DiscardHandler), []string{dir}, lis, nil)
	})
	t.Cleanup(cancel) // the stream's context, ended with runXDS's

	conn := testrun.Dial(t, lis.Addr().String())
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: "envoy-test", Cluster: "kgate", UserAgentName: "envoy"}
	req := &discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resource.ClusterType}
	clusters := func() []string {
		t.Helper()
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		resp, err := recvWithin(stream, 5*time.Second)
		if err != nil {
			t.Fatalf("waiting for clusters: %v", err)
		}
		// ACK it, so that the next Recv is the next push.
		req = &discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resource.ClusterType,
			VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()}
		var names []string
		for _, r := range resp.GetResources() {
			var c clusterv3.Cluster
			if err := proto.Unmarshal(r.GetValue(), &c); err != nil {
				t.Fatalf("decoding a cluster: %v", err)
			}
			names = append(names, c.GetName())
		}
		slices.Sort(names)
		return names
	}

	steps := []struct {
		name string
		edit func()
		want []string
	}{
		{"initial folder", func() {}, []string{"default/hello-00001"}},
		{"a second Service", func() { copyExample(t, "helloworld-go.yaml", dir) },
			[]string{"default/hello-00001", "default/helloworld-go-00001"}},
		{"a new revision of hello", func() {
			replaceIn(t, filepath.Join(dir, "hello.yaml"), `value: "World"`, `value: "Knative"`)
			// The first revision keeps its cluster: a route may send
			// traffic back to it without waiting for a cluster to warm.
		}, []string{"default/hello-00001", "default/hello-00002", "default/helloworld-go-00001"}},
		{"an invalid hello, and helloworld-go removed", func() {
			replaceIn(t, filepath.Join(dir, "hello.yaml"), `containerPort: 8080`, `containerPort: 99999`)
			if err := os.Remove(filepath.Join(dir, "helloworld-go.yaml")); err != nil {
				t.Fatal(err)
			}
		}, []string{"default/hello-00001", "default/hello-00002"}},
	}
	for _, step := range steps {
		step.edit()
		if got := clusters(); !slices.Equal(got, step.want) {
			t.Fatalf("%s: clusters %v, want %v", step.name, got, step.want)
		}
	}
}

// recvWithin bounds a Recv: a push that never comes fails the test instead
// of hanging it.
func recvWithin(stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient, d time.Duration) (*discoveryv3.DiscoveryResponse, error) {
	type result struct {
		resp *discoveryv3.DiscoveryResponse
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := stream.Recv()
		got <- result{resp, err}
	}()
	select {
	case r := <-got:
		return r.resp, r.err
	case <-time.After(d):
		return nil, fmt.Errorf("no response within %s", d)
	}
}

func copyExample(t *testing.T, name, dir string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func replaceIn(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s does not contain %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}
