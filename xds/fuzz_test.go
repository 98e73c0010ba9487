package xds

import (
	"context"
	"log/slog"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/xds/auth"
)

// The fuzz targets send a client's requests, any bytes that decode as
// requests, to a real server over gRPC: the server must never panic, and
// once the stream ends it must hold nothing of it (guard, ACK tracker,
// stream counts), whatever the requests said.

// fuzzServer is one server shared by every input of a fuzz run, with low
// limits so that inputs reach them.
func fuzzServer(f *testing.F) (*Server, *grpc.ClientConn) {
	ctx, cancel := context.WithCancel(context.Background())
	srv := NewServer(ctx, ServerOptions{
		Logger: slog.New(slog.DiscardHandler),
		Gate:   auth.NewGate(auth.Limits{StreamsPerNode: 2, NamesPerStream: 64, RequestBytes: 64 << 10}, nil),
	})
	eng, err := NewEngine(srv, EngineOptions{})
	if err != nil {
		f.Fatal(err)
	}
	if err := eng.Update(hello()); err != nil {
		f.Fatal(err)
	}
	lis := testrun.Listen(f)
	testrun.Go(f, ctx, "Serve", waitFor, func(ctx context.Context) error { return srv.Serve(ctx, lis) })
	f.Cleanup(cancel)
	return srv, dial(f, lis.Addr().String())
}

// seedRequests are requests as Envoy and grpc-go send them, and some no
// client should.
func seedRequests() []proto.Message {
	node := &corev3.Node{Id: "envoy-1", UserAgentName: "envoy"}
	return []proto.Message{
		&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resource.ListenerType, ResourceNamesSubscribe: []string{"*"}},
		&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resource.RouteType, ResourceNamesSubscribe: []string{"external", "internal"}, InitialResourceVersions: map[string]string{"external": "v1"}},
		&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resource.RouteType, ResponseNonce: "1", ErrorDetail: &statuspb.Status{Code: 3, Message: "rejected"}},
		&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resource.SecretType, ResourceNamesUnsubscribe: []string{"*", "x"}},
		&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "grpc-1", UserAgentName: "gRPC Go"}, TypeUrl: resource.ListenerType, ResourceNames: []string{"hello.default.example.com"}},
		&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resource.ClusterType, VersionInfo: "v", ResponseNonce: "2"},
		&discoveryv3.DiscoveryRequest{TypeUrl: "type.googleapis.com/unknown"},
	}
}

func addSeeds(f *testing.F, delta bool) {
	var msgs [][]byte
	for _, m := range seedRequests() {
		if _, isDelta := m.(*discoveryv3.DeltaDiscoveryRequest); isDelta != delta {
			continue
		}
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		msgs = append(msgs, b)
	}
	for i := range msgs {
		f.Add(msgs[i], msgs[(i+1)%len(msgs)])
	}
}

func FuzzDeltaRequests(f *testing.F) {
	addSeeds(f, true)
	srv, conn := fuzzServer(f)
	f.Fuzz(func(t *testing.T, first, second []byte) {
		fuzzStream(t, srv, first, second, func(ctx context.Context) (grpc.ClientStream, error) {
			return discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
		}, func() *discoveryv3.DeltaDiscoveryRequest { return &discoveryv3.DeltaDiscoveryRequest{} })
	})
}

func FuzzSotwRequests(f *testing.F) {
	addSeeds(f, false)
	srv, conn := fuzzServer(f)
	f.Fuzz(func(t *testing.T, first, second []byte) {
		fuzzStream(t, srv, first, second, func(ctx context.Context) (grpc.ClientStream, error) {
			return discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
		}, func() *discoveryv3.DiscoveryRequest { return &discoveryv3.DiscoveryRequest{} })
	})
}

// fuzzStream sends the inputs that decode as requests of type R on a new
// stream, reads what comes back for a moment, ends the stream and checks
// the server forgot it.
func fuzzStream[R proto.Message](t *testing.T, srv *Server, first, second []byte,
	open func(context.Context) (grpc.ClientStream, error), fresh func() R,
) {
	var reqs []R
	for _, b := range [][]byte{first, second} {
		req := fresh()
		if proto.Unmarshal(b, req) == nil {
			reqs = append(reqs, req)
		}
	}
	if len(reqs) == 0 {
		t.Skip()
	}
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := open(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	for _, r := range reqs {
		_ = stream.SendMsg(r)
	}
	// Responses are read and dropped: Empty keeps any message's fields as
	// unknown ones.
	drain(func() error { return stream.RecvMsg(&emptypb.Empty{}) })
	cancel()
	assertForgotten(t, srv)
}

// drain reads responses until the stream ends or is quiet for a moment.
func drain(recv func() error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for recv() == nil {
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Millisecond):
	}
}

// assertForgotten waits for the server to drop every trace of the closed
// streams.
func assertForgotten(t *testing.T, srv *Server) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		srv.guard.mu.Lock()
		open := len(srv.guard.open)
		srv.guard.mu.Unlock()
		srv.acks.mu.Lock()
		tracked := len(srv.acks.streams)
		srv.acks.mu.Unlock()
		if open == 0 && tracked == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the stream ended the server still holds %d guarded and %d tracked streams", open, tracked)
		}
		time.Sleep(time.Millisecond)
	}
}
