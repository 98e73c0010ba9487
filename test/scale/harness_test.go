// Package scale checks that every kind of client kgate's control plane
// serves follows a large fleet with the defaults: a real xds.Server over
// mutual TLS with auth's default limits, holding N Services (10,000 in
// `make bench-scale`), is synced by the dev gateway, the activator and
// grpc-go's own xDS client, each with its default client options. Each
// reports how long it took to hold what it needs.
//
// The tests run a small fleet (KGATE_SCALE_SERVICES, 300 by default), so
// that go test -race exercises the same path in seconds; the benchmarks
// run 10,000 unless KGATE_SCALE_SERVICES says otherwise.
//
// The package has no non-test code.
package scale

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/pki"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/xds"
	"github.com/kgate/kgate/xds/auth"
	"github.com/kgate/kgate/xds/lrs"
)

const (
	// testServices is the fleet the tests run unless servicesEnv says
	// otherwise: small enough for go test -race; xds's own tests check
	// that responses past the budget come in parts.
	testServices = 300
	// benchServices is the fleet the benchmarks run unless servicesEnv
	// says otherwise: the issue's 10,000.
	benchServices = 10000
	// servicesEnv sets the fleet's size.
	servicesEnv = "KGATE_SCALE_SERVICES"

	// waitFor bounds every other wait: a request, a component stopping.
	waitFor = 30 * time.Second

	// podBody starts what the pod answers a plain HTTP request.
	podBody = "pod: "
)

// fleetSize is how many Services a run serves: servicesEnv, or def.
func fleetSize(tb testing.TB, def int) int {
	tb.Helper()
	s := os.Getenv(servicesEnv)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 3 {
		tb.Fatalf("%s=%q: want a number of Services, at least 3", servicesEnv, s)
	}
	return n
}

// syncWithin bounds one client's sync of n Services: a bound against
// never, not a performance figure, with room for the race detector on a
// loaded machine (a minute at 300, five at 10,000).
func syncWithin(n int) time.Duration {
	return time.Minute + time.Duration(n)*25*time.Millisecond
}

// fleet is n Services as Knative makes them: Service i is "svc-<i>" in
// namespace "ns-<i mod 100>", with its external host and the three
// cluster-local names, splitting 90/10 between its revisions "svc-<i>-00002"
// and "svc-<i>-00001" (each split setting Knative's revision headers), each
// revision served by pod, in Serve mode, with the activator listed for
// Proxy mode.
func fleet(n int, pod, act model.Endpoint) model.Config {
	var cfg model.Config
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		s := sampleService(i)
		older, newer := s.revisions[0], s.revisions[1]
		route := model.Route{PathPrefix: "/", Timeout: 300 * time.Second, Splits: []model.Split{
			knativeSplit(s.ns, newer, 90), knativeSplit(s.ns, older, 10),
		}}
		svc := model.Service{Namespace: s.ns, Name: s.name, Created: created.Add(time.Duration(i) * time.Second)}
		svc.VirtualHosts = append(svc.VirtualHosts, model.VirtualHost{Host: s.external, Visibility: model.External, Routes: []model.Route{route}})
		for _, h := range []string{s.name + "." + s.ns, s.name + "." + s.ns + ".svc", s.local} {
			svc.VirtualHosts = append(svc.VirtualHosts, model.VirtualHost{Host: h, Visibility: model.ClusterLocal, Routes: []model.Route{route}})
		}
		cfg.Services = append(cfg.Services, svc)
		for _, rev := range s.revisions {
			cfg.Revisions = append(cfg.Revisions, model.Revision{Namespace: s.ns, Name: rev, Protocol: model.HTTP1, Timeout: 300 * time.Second})
			cfg.Endpoints = append(cfg.Endpoints, model.RevisionEndpoints{
				Revision: s.ns + "/" + rev, Mode: model.Serve,
				Pods: []model.Endpoint{pod}, Activators: []model.Endpoint{act},
			})
		}
	}
	return cfg
}

func knativeSplit(ns, rev string, percent uint32) model.Split {
	return model.Split{Revision: ns + "/" + rev, Percent: percent, SetHeaders: []model.Header{
		{Name: "Knative-Serving-Revision", Value: rev}, {Name: "Knative-Serving-Namespace", Value: ns},
	}}
}

// service names the parts of one Service of fleet.
type service struct {
	ns, name string
	// external is its external host, local its fully qualified
	// cluster-local one.
	external, local string
	// revisions are its revisions' names, oldest first.
	revisions [2]string
}

func sampleService(i int) service {
	ns, name := fmt.Sprintf("ns-%d", i%100), fmt.Sprintf("svc-%d", i)
	return service{
		ns: ns, name: name,
		external:  name + "." + ns + ".example.com",
		local:     name + "." + ns + ".svc.cluster.local",
		revisions: [2]string{name + "-00001", name + "-00002"},
	}
}

// samples are the Services the checks send requests to: the first, one in
// the middle and the last of a fleet of n.
func samples(n int) []service {
	return []service{sampleService(0), sampleService(n / 2), sampleService(n - 1)}
}

// controlPlane is a running xDS and LRS server over mutual TLS, with the
// default limits, holding a fleet, and the pod every revision runs on.
type controlPlane struct {
	n    int
	cfg  model.Config
	opts translator.Options
	srv  *xds.Server
	eng  *xds.Engine
	ca   *pki.CA
	addr string
	// acked is signalled (without blocking) whenever a node ACKs.
	acked chan struct{}
	// logs holds what the server logged at warning level and above.
	logs *testrun.Buffer
	// act is the listener an activator serves on: the fleet's endpoints
	// name it.
	act net.Listener
	// setup is how long publishing the fleet to the engine took.
	setup time.Duration
	// want is what wants returns, once computed.
	want *clientWants
}

// newControlPlane starts a control plane as kgate's modes wire it (one
// gate shared by xDS and LRS, default limits, mutual TLS), publishes a
// fleet of n Services to it, and serves it until the test ends.
func newControlPlane(tb testing.TB, n int) *controlPlane {
	tb.Helper()
	ca, err := pki.NewCA("kgate-scale", time.Now(), 0)
	if err != nil {
		tb.Fatal(err)
	}
	// grpc-go checks the server's address against its certificate, as any
	// TLS client; kgate's own clients check its role instead.
	serverCert, err := ca.Issue(pki.Request{
		Identity: pki.Identity{Role: pki.Server, ID: "kgate-scale"},
		IPs:      []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		Now: time.Now(),
	})
	if err != nil {
		tb.Fatal(err)
	}

	cp := &controlPlane{n: n, ca: ca, acked: make(chan struct{}, 1), logs: &testrun.Buffer{}}
	log := slog.New(slog.NewTextHandler(cp.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	gate := auth.NewGate(auth.Limits{}, log)
	lrsSrv := lrs.New(lrs.Options{Logger: log, Gate: gate})
	cp.srv = xds.NewServer(ctx, xds.ServerOptions{
		Logger: log, Services: []xds.Service{lrsSrv}, Gate: gate,
		TLS: pki.ServerConfig(pki.Static{B: serverCert}),
		OnACK: func(string, string) {
			select { // runs on the stream's goroutine: must not block
			case cp.acked <- struct{}{}:
			default:
			}
		},
	})
	// Listeners on loopback, as kgate local's; the dev gateway binds them
	// where the test says.
	cp.opts = translator.Options{
		ExternalAddress: "127.0.0.1", ExternalPort: 8080,
		InternalAddress: "127.0.0.1", InternalPort: 8081,
		LoadReporting: true,
	}
	cp.eng, err = xds.NewEngine(cp.srv, xds.EngineOptions{Translator: cp.opts, Logger: log})
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	lis := testrun.Listen(tb)
	cp.addr = lis.Addr().String()
	testrun.Go(tb, ctx, "xDS Serve", waitFor, func(ctx context.Context) error { return cp.srv.Serve(ctx, lis) })
	tb.Cleanup(cancel) // before Go's cleanup: the server's context ends with Serve's

	pod := startPod(tb)
	cp.act = testrun.Listen(tb)
	cp.cfg = fleet(n, pod, endpointOf(cp.act.Addr()))
	start := time.Now()
	if err := cp.eng.Update(cp.cfg); err != nil {
		tb.Fatal(err)
	}
	cp.setup = time.Since(start)
	return cp
}

// endpointOf is a loopback listener's address as the model names it.
func endpointOf(addr net.Addr) model.Endpoint {
	tcp := addr.(*net.TCPAddr)
	return model.Endpoint{Address: tcp.IP.String(), Port: uint32(tcp.Port)}
}

// issue makes a certificate for id.
func (cp *controlPlane) issue(tb testing.TB, id pki.Identity) *pki.Bundle {
	tb.Helper()
	b, err := cp.ca.Issue(pki.Request{Identity: id, Now: time.Now()})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// dial connects to the server with a certificate for id, as kgate's
// components do, and no other option; the connection closes with the test
// at the latest.
func (cp *controlPlane) dial(tb testing.TB, id pki.Identity) *grpc.ClientConn {
	tb.Helper()
	conn, err := grpc.NewClient(cp.addr, grpc.WithTransportCredentials(credentials.NewTLS(pki.ClientConfig(pki.Static{B: cp.issue(tb, id)}))))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

// checkQuiet fails the test if the server logged a warning (a NACK, a
// refusal, a stream failure) or refused anything.
func (cp *controlPlane) checkQuiet(tb testing.TB) {
	tb.Helper()
	if refused := cp.srv.Refusals(); len(refused) > 0 {
		tb.Errorf("the server refused: %v", refused)
	}
	if logs := cp.logs.String(); logs != "" {
		tb.Errorf("the server logged:\n%s", logs)
	}
}

// ackWant is a resource version a node must have ACKed.
type ackWant struct {
	typeURL, name, version string
}

// clientWants are the resources each kind of kgate client holds once in
// sync, at the versions the server publishes (the engine publishes what
// Translate makes of the whole model).
type clientWants struct {
	// gateway: both listeners, every scope, route configuration and
	// cluster, and the load assignments the clusters name.
	gateway []ackWant
	// activator: every cluster, and each revision's pods.
	activator []ackWant
}

// wants returns the control plane's clientWants, computed once.
func (cp *controlPlane) wants(tb testing.TB) clientWants {
	tb.Helper()
	if cp.want != nil {
		return *cp.want
	}
	out := translator.Translate(cp.cfg, cp.opts)
	if len(out.Conflicts) > 0 {
		tb.Fatalf("the fleet has host conflicts: %v", out.Conflicts[0])
	}
	var w clientWants
	want := func(typeURL, name string, res types.Resource) ackWant {
		v, err := xds.ResourceVersion(res)
		if err != nil {
			tb.Fatal(err)
		}
		return ackWant{typeURL: typeURL, name: name, version: v}
	}
	for _, r := range out.Listeners {
		w.gateway = append(w.gateway, want(resource.ListenerType, r.GetName(), r))
	}
	for _, r := range out.ScopedRoutes {
		w.gateway = append(w.gateway, want(resource.ScopedRouteType, r.GetName(), r))
	}
	for _, r := range out.Routes {
		w.gateway = append(w.gateway, want(resource.RouteType, r.GetName(), r))
	}
	named := map[string]bool{}
	for _, r := range out.Clusters {
		c := want(resource.ClusterType, r.GetName(), r)
		w.gateway = append(w.gateway, c)
		w.activator = append(w.activator, c)
		if eds := r.GetEdsClusterConfig(); eds != nil {
			named[cmp.Or(eds.GetServiceName(), r.GetName())] = true
		}
	}
	pods := map[string]bool{}
	for _, rev := range cp.cfg.Revisions {
		pods[translator.PodsName(rev.Key())] = true
	}
	gatewayCLAs, activatorCLAs := 0, 0
	for _, r := range out.Endpoints {
		if named[r.GetClusterName()] {
			w.gateway = append(w.gateway, want(resource.EndpointType, r.GetClusterName(), r))
			gatewayCLAs++
		}
		if pods[r.GetClusterName()] {
			w.activator = append(w.activator, want(resource.EndpointType, r.GetClusterName(), r))
			activatorCLAs++
		}
	}
	if gatewayCLAs != 2*cp.n || activatorCLAs != 2*cp.n {
		tb.Fatalf("%d load assignments for the gateway's clusters and %d of revisions' pods, want one each per revision (%d)",
			gatewayCLAs, activatorCLAs, 2*cp.n)
	}
	cp.want = &w
	return w
}

// waitACKed waits until the server has recorded node's ACK of every one
// of want, checking whenever a node ACKs something. Resources are checked
// in order, each once: a version never changes here, so an ACK holds.
func (cp *controlPlane) waitACKed(tb testing.TB, node string, want []ackWant) {
	tb.Helper()
	within := syncWithin(cp.n)
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	next := 0
	for {
		for next < len(want) && cp.hasACKed(node, want[next]) {
			next++
		}
		if next == len(want) {
			return
		}
		select {
		case <-cp.acked:
		case <-tick.C:
		case <-deadline.C:
			w := want[next]
			tb.Fatalf("%s ACKed %d of %d resources within %v; not %s %q version %s (the server's streams report %+v)\n%s",
				node, next, len(want), within, w.typeURL, w.name, w.version, cp.srv.Acked(w.typeURL, w.name), cp.logs.String())
		}
	}
}

func (cp *controlPlane) hasACKed(node string, w ackWant) bool {
	for _, a := range cp.srv.Acked(w.typeURL, w.name) {
		if a.NodeID == node && a.Version == w.version {
			return true
		}
	}
	return false
}

// ackedAs says whether node, as a client of kind, has ACKed a version of
// the named resource.
func (cp *controlPlane) ackedAs(node string, kind xds.NodeKind, typeURL, name string) bool {
	for _, a := range cp.srv.Acked(typeURL, name) {
		if a.NodeID == node && a.Kind == kind && a.Version != "" {
			return true
		}
	}
	return false
}

// startPod serves what every revision runs until the test ends: plain
// HTTP/1.1 answering podBody and the revision headers it got, and gRPC's
// TestService over h2c (prior knowledge), as a gRPC revision would, for
// grpc-go. It returns its address.
func startPod(tb testing.TB) model.Endpoint {
	tb.Helper()
	rpc := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(rpc, podService{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && r.Header.Get("Content-Type") == "application/grpc" {
			rpc.ServeHTTP(w, r)
			return
		}
		fmt.Fprintf(w, "%s%s/%s", podBody, r.Header.Get("Knative-Serving-Namespace"), r.Header.Get("Knative-Serving-Revision"))
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	tb.Cleanup(func() {
		srv.Close()
		rpc.Stop()
	})
	return endpointOf(srv.Listener.Addr())
}

// podService answers UnaryCall with the pod's name as server_id.
type podService struct {
	testgrpc.UnimplementedTestServiceServer
}

func (podService) UnaryCall(context.Context, *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{ServerId: "pod"}, nil
}

// syncTime is what one sync took: wall clock and the process's CPU time.
type syncTime struct {
	wall, cpu time.Duration
}

// startSync collects the garbage of what ran before, which a sync would
// otherwise pay for (the fleet's set-up, the previous sync: hundreds of
// MB at 10,000 Services), and returns the clocks a sync starts from.
func startSync() (time.Time, time.Duration) {
	runtime.GC()
	return time.Now(), cpuTime()
}

// since is the sync time from start, taken with startCPU = cpuTime().
func since(start time.Time, startCPU time.Duration) syncTime {
	return syncTime{wall: time.Since(start), cpu: cpuTime() - startCPU}
}

func (t syncTime) String() string {
	return fmt.Sprintf("%v (CPU %v)", t.wall.Round(time.Millisecond), t.cpu.Round(time.Millisecond))
}

// syncStats gathers sync times over a benchmark's iterations.
type syncStats struct {
	total       syncTime
	n           int
	best, worst time.Duration
}

// add records one sync, and logs it with the machine's load: on a shared
// machine the spread says as much as the mean.
func (s *syncStats) add(b *testing.B, t syncTime) {
	b.Helper()
	b.Logf("sync %d: %v; load average %s", s.n+1, t, loadAverage())
	s.total.wall += t.wall
	s.total.cpu += t.cpu
	if s.n == 0 || t.wall < s.best {
		s.best = t.wall
	}
	s.worst = max(s.worst, t.wall)
	s.n++
}

// report adds the mean, best and worst sync to the benchmark's figures,
// with the fleet's setup.
func (s *syncStats) report(b *testing.B, cp *controlPlane) {
	if s.n == 0 {
		return
	}
	b.ReportMetric((s.total.wall / time.Duration(s.n)).Seconds(), "s/sync")
	b.ReportMetric((s.total.cpu / time.Duration(s.n)).Seconds(), "cpu-s/sync")
	b.ReportMetric(s.best.Seconds(), "s/best-sync")
	b.ReportMetric(s.worst.Seconds(), "s/worst-sync")
	b.ReportMetric(cp.setup.Seconds(), "s/setup")
	b.ReportMetric(float64(cp.n), "services")
}

// loadAverage is the machine's 1, 5 and 15 minute load averages, where
// Linux tells them.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
