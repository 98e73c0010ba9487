//go:build unix

package xds

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/internal/transportbench"
	"github.com/kgate/kgate/pki"
	"github.com/kgate/kgate/translator/model"
)

// The transport benchmarks run the same steady-state exchange over
// plaintext gRPC and over mutual TLS, in interleaved rounds within one
// process, so that benchstat compares the two:
//
//	benchstat -col /transport -ignore /round out.txt
//
// Both servers and clients are set up first, once; then each round runs
// the plaintext leaf and the mTLS leaf one after the other (plaintext first
// in odd rounds, mTLS first in even ones), so that other work on a shared
// machine weighs on both alike. hack/bench-tls.sh runs several processes
// of these rounds. The handshake happens while connecting, before any
// clock starts: what they measure is the cost per message on a connection
// that is already up. Besides the time per operation (sec/op), which other
// work on the machine moves a lot, they report cpu-ns/op: the CPU the
// process (client, server and runtime) spent per operation, user and
// system, which moves less. They are unix-only for that (getrusage).

// BenchmarkTransport/propagation: one Service's traffic split changes, and
// the clock stops once a delta gateway subscribed to everything has
// received the push and the server has processed its ACK. The same as
// BenchmarkPropagation, with the ACK's way back in the operation, over
// each transport. wire-B/op counts the bytes both ways on the server's
// side of the socket: payload plus HTTP/2 framing, plus TLS records with
// mTLS.
func BenchmarkTransport(b *testing.B) {
	b.Run("propagation", func(b *testing.B) {
		for _, n := range []int{1000, 10000} {
			b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
				cfg := fleet(n)
				servers := map[string]*transportServer{}
				for _, tr := range []string{transportbench.Plaintext, transportbench.MTLS} {
					servers[tr] = newTransportServer(b, cfg, tr)
					servers[tr].gw = servers[tr].subscribe(b, cfg)
				}
				transportbench.RunRounds(b, func(b *testing.B, tr string) {
					benchPropagation(b, servers[tr], cfg)
				})
			})
		}
	})
}

func benchPropagation(b *testing.B, s *transportServer, cfg model.Config) {
	n := len(cfg.Services)
	// The client fails the leaf running it.
	s.gw.t = b
	var payload int
	iters := 0
	wire, cpu := s.wire.Load(), transportbench.CPUTime(b)
	for b.Loop() {
		// As BenchmarkPropagation: each pass over the fleet moves every
		// split to a new value. The count goes on from leaf to leaf, so
		// that every change is one.
		i := s.changes
		s.changes++
		svc := cfg.Services[i%n]
		p := uint32(10 + (i/n)%80)
		svc.VirtualHosts = []model.VirtualHost{vhost(svc.VirtualHosts[0].Host, model.External,
			split(svc.VirtualHosts[0].Routes[0].Splits[0].Revision, p),
			split(svc.VirtualHosts[0].Routes[0].Splits[1].Revision, 100-p))}
		if err := s.eng.SetService(svc); err != nil {
			b.Fatal(err)
		}
		resp := s.gw.next(resource.RouteType)
		if len(resp.GetResources()) != 1 || resp.GetResources()[0].GetName() != routeName("external", svc.Name) {
			b.Fatalf("push %d carried %v, want only %s", i, deltaNames(resp), routeName("external", svc.Name))
		}
		payload += proto.Size(resp)
		s.gw.ack(resp)
		s.waitACK(b)
		iters++
	}
	cpu = transportbench.CPUTime(b) - cpu
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(iters), "cpu-ns/op")
	b.ReportMetric(float64(s.wire.Load()-wire)/float64(iters), "wire-B/op")
	b.ReportMetric(float64(payload)/float64(iters), "bytes/push")
}

// transportServer is a running Server and Engine, and a gateway's
// connection to it over one transport.
type transportServer struct {
	*harness
	gw *deltaClient
	// changes counts the changes made so far.
	changes int
	// acks receives one value per ACK the server has processed.
	acks chan struct{}
	// wire counts the bytes read and written on the server's connections.
	wire *atomic.Int64
}

func newTransportServer(b *testing.B, cfg model.Config, tr string) *transportServer {
	b.Helper()
	s := &transportServer{acks: make(chan struct{}, 1024), wire: &atomic.Int64{}}
	opts := ServerOptions{OnACK: func(string, string) {
		select {
		case s.acks <- struct{}{}:
		default: // never with one ACK in flight; a lost one times out
		}
	}}
	var client *tls.Config
	if tr == transportbench.MTLS {
		server, gateway := transportbench.Bundles(b, pki.Identity{Role: pki.Gateway, ID: gatewayNode.GetId()})
		opts.TLS = pki.ServerConfig(pki.Static{B: server})
		client = pki.ClientConfig(pki.Static{B: gateway})
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := NewServer(ctx, opts)
	eng, err := NewEngine(srv, EngineOptions{})
	if err != nil {
		b.Fatalf("NewEngine: %v", err)
	}
	if err := eng.Update(cfg); err != nil {
		b.Fatalf("Update: %v", err)
	}
	lis := &transportbench.CountingListener{Listener: testrun.Listen(b), N: s.wire}
	testrun.Go(b, ctx, "Serve", waitFor, func(ctx context.Context) error { return srv.Serve(ctx, lis) })
	b.Cleanup(cancel)

	// The same call options as dial's, over either transport.
	callOpts := grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256 << 20))
	var conn *grpc.ClientConn
	if client == nil {
		conn = testrun.Dial(b, lis.Addr().String(), callOpts)
	} else {
		conn, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(client)), callOpts)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
	}
	s.harness = &harness{srv: srv, eng: eng, conn: conn}
	return s
}

// waitACK waits for the server to process the next ACK.
func (s *transportServer) waitACK(b *testing.B) {
	b.Helper()
	select {
	case <-s.acks:
	case <-time.After(waitFor):
		b.Fatalf("the server processed no ACK within %s", waitFor)
	}
}

// subscribe connects a delta gateway as subscribeEverything does, waiting
// after each ACK until the server has processed it, so that the ACKs the
// benchmark waits for later are its own.
func (s *transportServer) subscribe(b *testing.B, cfg model.Config) *deltaClient {
	b.Helper()
	return subscribeEverythingWith(b, s.harness, cfg, 2, nil, func() { s.waitACK(b) })
}
