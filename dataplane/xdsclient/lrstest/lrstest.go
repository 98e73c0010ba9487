// Package lrstest is a fake LRS server for tests of load reporting
// clients: it answers every stream with the settings it was given and
// records every request clients send.
package lrstest

import (
	"net"
	"testing"
	"time"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	loadstatsv3 "github.com/envoyproxy/go-control-plane/envoy/service/load_stats/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// waitFor bounds every wait for a request.
const waitFor = 10 * time.Second

// Request is one request a client sent, with when it arrived.
type Request struct {
	*loadstatsv3.LoadStatsRequest
	At time.Time
}

// Cluster returns the request's stats of the named cluster, nil if none.
func (r Request) Cluster(name string) *endpointv3.ClusterStats {
	for _, c := range r.GetClusterStats() {
		if c.GetClusterName() == name {
			return c
		}
	}
	return nil
}

// Server is a LoadReportingService that asks each client what settings
// says, once, at the start of its stream.
type Server struct {
	loadstatsv3.UnimplementedLoadReportingServiceServer
	settings *loadstatsv3.LoadStatsResponse
	requests chan Request
}

// NewServer returns a server answering with settings.
func NewServer(settings *loadstatsv3.LoadStatsResponse) *Server {
	return &Server{settings: settings, requests: make(chan Request, 10000)}
}

// Register adds the service to g, beside others (an xDS server).
func (s *Server) Register(g *grpc.Server) {
	loadstatsv3.RegisterLoadReportingServiceServer(g, s)
}

// Start serves a new server on loopback until the test ends and returns
// it with its address.
func Start(t testing.TB, settings *loadstatsv3.LoadStatsResponse) (*Server, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	s := NewServer(settings)
	g := grpc.NewServer()
	s.Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	return s, lis.Addr().String()
}

// StreamLoadStats records the client's requests; it answers the first
// with the settings.
func (s *Server) StreamLoadStats(stream loadstatsv3.LoadReportingService_StreamLoadStatsServer) error {
	for first := true; ; first = false {
		req, err := stream.Recv()
		if err != nil {
			return nil // the client went away
		}
		select {
		case s.requests <- Request{LoadStatsRequest: req, At: time.Now()}:
		case <-stream.Context().Done():
			return nil
		}
		if first {
			if err := stream.Send(proto.Clone(s.settings).(*loadstatsv3.LoadStatsResponse)); err != nil {
				return err
			}
		}
	}
}

// Next returns the next request, failing the test if none comes in 10 s.
func (s *Server) Next(t testing.TB) Request {
	t.Helper()
	select {
	case r := <-s.requests:
		return r
	case <-time.After(waitFor):
		t.Fatalf("no LRS request within %s", waitFor)
		return Request{}
	}
}

// None fails the test if a request arrives within d.
func (s *Server) None(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case r := <-s.requests:
		t.Fatalf("unexpected LRS request: %v", r.LoadStatsRequest)
	case <-time.After(d):
	}
}

// Await returns the first request for which match holds, skipping the
// others, failing the test if none comes in 10 s.
func (s *Server) Await(t testing.TB, what string, match func(Request) bool) Request {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case r := <-s.requests:
			if match(r) {
				return r
			}
		case <-deadline:
			t.Fatalf("no LRS request with %s within %s", what, waitFor)
			return Request{}
		}
	}
}
