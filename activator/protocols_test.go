package activator

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/translator/model"
)

// h2cClient speaks cleartext HTTP/2 with prior knowledge, as Envoy does to
// an h2c cluster.
func h2cClient(t testing.TB) *http.Client {
	transport := &http.Transport{Protocols: new(http.Protocols)}
	transport.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(transport.CloseIdleConnections)
	return &http.Client{Transport: transport}
}

// Whatever the client speaks, the pod is spoken to in its own protocol,
// and trailers come back both ways.
func TestProtocols(t *testing.T) {
	pod := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Pod-Trailer")
		_, _ = io.WriteString(w, r.Proto)
		w.Header().Set("X-Pod-Trailer", "done")
	})
	for _, tc := range []struct {
		client, want string
		revision     model.Protocol
	}{
		{"HTTP/1.1", "HTTP/1.1", model.HTTP1},
		{"HTTP/1.1", "HTTP/2.0", model.H2C},
		{"HTTP/2.0", "HTTP/1.1", model.HTTP1},
		{"HTTP/2.0", "HTTP/2.0", model.H2C},
	} {
		t.Run(tc.client+" to "+string(tc.revision), func(t *testing.T) {
			h := newHarness(t, Options{})
			h.act.SetRevision(testKey, RevisionConfig{Protocol: tc.revision})
			h.act.SetEndpoints(testKey, []model.Endpoint{startBackend(t, tc.revision, pod)})
			client := h.client
			if tc.client == "HTTP/2.0" {
				client = h2cClient(t)
			}

			resp, err := client.Do(h.request(context.Background(), t, "/"))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Proto != tc.client {
				t.Errorf("client got %s, want %s", resp.Proto, tc.client)
			}
			if string(body) != tc.want {
				t.Errorf("pod was spoken to in %s, want %s", body, tc.want)
			}
			if got := resp.Trailer.Get("X-Pod-Trailer"); got != "done" {
				t.Errorf("trailer X-Pod-Trailer = %q, want done", got)
			}
		})
	}
}

// healthPod is a gRPC service whose answers end with trailers: status and
// metadata set by the pod.
type healthPod struct {
	healthpb.UnimplementedHealthServer
}

func (healthPod) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if err := grpc.SetTrailer(ctx, metadata.Pairs("x-pod-trailer", "check")); err != nil {
		return nil, err
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func (healthPod) Watch(_ *healthpb.HealthCheckRequest, stream grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	for range 3 {
		if err := stream.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}); err != nil {
			return err
		}
	}
	stream.SetTrailer(metadata.Pairs("x-pod-trailer", "watch"))
	return status.Error(codes.ResourceExhausted, "three is enough")
}

// routeToTestRevision adds the routing headers the gateway would set.
func routeToTestRevision(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx,
		NamespaceHeader, testNamespace, RevisionHeader, testRevision)
}

func TestGRPC(t *testing.T) {
	h := newHarness(t, Options{})
	h.act.SetRevision(testKey, RevisionConfig{Protocol: model.H2C})
	ln := testrun.Listen(t)
	pod := grpc.NewServer()
	healthpb.RegisterHealthServer(pod, healthPod{})
	served := make(chan error, 1)
	go func() { served <- pod.Serve(ln) }()
	t.Cleanup(func() {
		pod.Stop()
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("gRPC pod: %v", err)
		}
	})
	h.act.SetEndpoints(testKey, []model.Endpoint{endpointOf(t, ln.Addr())})

	conn, err := grpc.NewClient(h.addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			return invoker(routeToTestRevision(ctx), method, req, reply, cc, opts...)
		}),
		grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			return streamer(routeToTestRevision(ctx), desc, cc, method, opts...)
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	ctx := context.Background()

	t.Run("unary", func(t *testing.T) {
		var trailer metadata.MD
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Trailer(&trailer))
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("status %v, want SERVING", resp.GetStatus())
		}
		if got := trailer.Get("x-pod-trailer"); len(got) != 1 || got[0] != "check" {
			t.Errorf("trailer x-pod-trailer = %v, want [check]", got)
		}
	})

	t.Run("server streaming", func(t *testing.T) {
		stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		received := 0
		for {
			_, err = stream.Recv()
			if err != nil {
				break
			}
			received++
		}
		if received != 3 || status.Code(err) != codes.ResourceExhausted {
			t.Errorf("received %d messages then %v, want 3 then ResourceExhausted", received, err)
		}
		if got := stream.Trailer().Get("x-pod-trailer"); len(got) != 1 || got[0] != "watch" {
			t.Errorf("trailer x-pod-trailer = %v, want [watch]", got)
		}
	})

	if s := h.stats(); s.Completed != 2 || s.Errors != 0 {
		t.Errorf("stats: %+v, want 2 completed without error", s)
	}
}
