package grpcpeer

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	grpcxds "google.golang.org/grpc/xds"

	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/xds"
)

const (
	namespace   = "default"
	serviceName = "hello"
	host        = "hello.default.example.com"
	revA        = "hello-00001"
	revB        = "hello-00002"
	// nodeID is the grpc-go client's node id in its bootstrap.
	nodeID = "kgate-grpcpeer"

	// switchBound is the most a split or endpoint change may take until
	// every RPC lands where the new config says.
	switchBound = time.Second
	// waitFor bounds every other wait: a server stopping, grpc-go's ACKs, a
	// switch that never completes (reported with what was seen, not as a
	// bare timeout).
	waitFor = 10 * time.Second
	// rpcTimeout bounds one RPC, the first one included (it waits for xDS
	// resolution).
	rpcTimeout = 5 * time.Second
	// workers send RPCs concurrently: more RPCs in flight while the config
	// changes, so a transient failure has more chances to show.
	workers = 4
	// warmRPCs must land on the old backend before a change is made.
	warmRPCs = 100
	// settledRPCs in a row must land on the new backend after a change
	// before the measurement stops.
	settledRPCs = 300
	// tolerancePP is the allowed deviation of a split, in percentage points.
	tolerancePP = 5
)

// Backend ids: each backend answers UnaryCall with its id as server_id.
const (
	backendA = "backend-a"
	backendB = "backend-b"
	backendC = "backend-c"
)

// TestWeightedSplits checks that grpc-go honours the route's weighted
// clusters per RPC, never sends an RPC to a 0 % target, and follows the
// Knative tag routes (header matches).
func TestWeightedSplits(t *testing.T) {
	tests := []struct {
		name   string
		layout layout
		rpcs   int
	}{
		{name: "80-20", layout: layout{pctA: 80, pctB: 20, podsA: []string{backendA}, podsB: []string{backendB}}, rpcs: 2000},
		{name: "20-80", layout: layout{pctA: 20, pctB: 80, podsA: []string{backendA}, podsB: []string{backendB}}, rpcs: 2000},
		{name: "100-0", layout: layout{pctA: 100, pctB: 0, podsA: []string{backendA}, podsB: []string{backendB}}, rpcs: 500},
		{name: "0-100", layout: layout{pctA: 0, pctB: 100, podsA: []string{backendA}, podsB: []string{backendB}}, rpcs: 500},
		// The 0 % revision's cluster is watched and reachable through its
		// tag route, and still gets no untagged RPC.
		{name: "100-0 tagged", layout: layout{pctA: 100, pctB: 0, podsA: []string{backendA}, podsB: []string{backendB}, tagged: true}, rpcs: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A fresh client per case: no RPC can be routed by an older
			// config, so a 0 % target must get exactly nothing.
			p := newPeer(t)
			cfg := p.config(tt.layout)
			p.update(t, cfg)

			counts := p.spray(t, tt.rpcs, "")
			t.Logf("split %d/%d over %d RPCs: %v", tt.layout.pctA, tt.layout.pctB, tt.rpcs, counts)
			for _, b := range []struct {
				id  string
				pct uint32
			}{{backendA, tt.layout.pctA}, {backendB, tt.layout.pctB}} {
				got := counts[b.id]
				if b.pct == 0 {
					if got != 0 {
						t.Errorf("%s is a 0 %% target but answered %d of %d RPCs", b.id, got, tt.rpcs)
					}
					continue
				}
				lo := tt.rpcs * max(0, int(b.pct)-tolerancePP) / 100
				hi := tt.rpcs * min(100, int(b.pct)+tolerancePP) / 100
				if got < lo || got > hi {
					t.Errorf("%s answered %d of %d RPCs, want %d..%d (%d %% ± %d points)", b.id, got, tt.rpcs, lo, hi, b.pct, tolerancePP)
				}
			}
			if other := tt.rpcs - counts[backendA] - counts[backendB]; other != 0 {
				t.Errorf("%d RPCs landed on neither revision's backend: %v", other, counts)
			}
			if tt.layout.tagged {
				for _, tag := range []struct{ tag, backend string }{{tagA, backendA}, {tagB, backendB}} {
					const n = 100
					if got := p.spray(t, n, tag.tag); got[tag.backend] != n {
						t.Errorf("RPCs tagged %q landed on %v, want all %d on %s", tag.tag, got, n, tag.backend)
					}
				}
			}
			p.waitACKed(t, cfg)
		})
	}
}

// TestTrafficMoves checks that a split or endpoint change published through
// the Engine moves every RPC within switchBound, with no RPC failing while
// it happens, also when a route sends traffic to a revision for the first
// time (the translator's warm route has the client hold its cluster
// before: grpc-go fails the picks of a cluster that first appears with the
// route using it). RPCs run continuously from before the
// change until the new state has held for settledRPCs RPCs in a row.
func TestTrafficMoves(t *testing.T) {
	setService := func(e *xds.Engine, cfg model.Config) error { return e.SetService(cfg.Services[0]) }
	setEndpointsA := func(e *xds.Engine, cfg model.Config) error {
		return e.SetEndpoints(cfg.Endpoints[0]) // revA's, see config
	}
	tests := []struct {
		name           string
		from, to       string
		initial, final layout
		change         func(*xds.Engine, model.Config) error
	}{{
		// The tag routes keep both clusters in grpc-go's cluster manager,
		// so only the weights change.
		name: "split 100-0 to 0-100",
		from: backendA, to: backendB,
		initial: layout{pctA: 100, pctB: 0, podsA: []string{backendA}, podsB: []string{backendB}, tagged: true},
		final:   layout{pctA: 0, pctB: 100, podsA: []string{backendA}, podsB: []string{backendB}, tagged: true},
		change:  setService,
	}, {
		name: "split 0-100 to 100-0",
		from: backendB, to: backendA,
		initial: layout{pctA: 0, pctB: 100, podsA: []string{backendA}, podsB: []string{backendB}, tagged: true},
		final:   layout{pctA: 100, pctB: 0, podsA: []string{backendA}, podsB: []string{backendB}, tagged: true},
		change:  setService,
	}, {
		// The 0 % target is left out of the routing route but named by
		// the never-matching warm route, so the client holds its cluster
		// before traffic moves to it: no pick fails.
		name: "split 100-0 to 0-100 without tag routes",
		from: backendA, to: backendB,
		initial: layout{pctA: 100, pctB: 0, podsA: []string{backendA}, podsB: []string{backendB}},
		final:   layout{pctA: 0, pctB: 100, podsA: []string{backendA}, podsB: []string{backendB}},
		change:  setService,
	}, {
		// The other backend, which grpc-go already holds a connection to
		// through revB's cluster.
		name: "endpoints to the other backend",
		from: backendA, to: backendB,
		initial: layout{pctA: 100, pctB: 0, podsA: []string{backendA}, podsB: []string{backendB}},
		final:   layout{pctA: 100, pctB: 0, podsA: []string{backendB}, podsB: []string{backendB}},
		change:  setEndpointsA,
	}, {
		// A third backend, never seen before: a pod replaced by a new one.
		name: "endpoints to a third backend",
		from: backendA, to: backendC,
		initial: layout{pctA: 100, pctB: 0, podsA: []string{backendA}, podsB: []string{backendB}},
		final:   layout{pctA: 100, pctB: 0, podsA: []string{backendC}, podsB: []string{backendB}},
		change:  setEndpointsA,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPeer(t)
			initial, final := p.config(tt.initial), p.config(tt.final)
			p.update(t, initial)
			p.waitACKed(t, initial)

			st := p.measureSwitch(t, tt.from, tt.to, func() error { return tt.change(p.eng, final) })
			t.Logf("%s: every RPC on %s %v after the change (first answer from it after %v; Engine push took %v); "+
				"%d RPCs in all, %d on %s and %d on %s after the change",
				tt.name, tt.to, st.latency, st.firstNew, st.push, st.total, st.fromAfter, tt.from, st.toAfter, tt.to)
			if st.latency >= switchBound {
				t.Errorf("traffic took %v to move from %s to %s, want < %v", st.latency, tt.from, tt.to, switchBound)
			}
			p.waitACKed(t, final)
		})
	}
}

// peer is one running xDS server and engine, three gRPC backends and a
// grpc-go client resolving xds:///<host> against the server.
type peer struct {
	srv    *xds.Server
	eng    *xds.Engine
	logs   *logSink
	conn   *grpc.ClientConn
	client testgrpc.TestServiceClient
	// ports of the backends by id.
	ports map[string]uint32
	// acked receives a token whenever the client ACKs something.
	acked chan struct{}
}

// newPeer starts everything on 127.0.0.1; the test's cleanup stops it all,
// the client first and the log sink last, so that a NACK sent at any time
// is reported.
func newPeer(t *testing.T) *peer {
	t.Helper()
	p := &peer{logs: newLogSink(t), ports: map[string]uint32{}, acked: make(chan struct{}, 1)}
	logger := slog.New(p.logs.handler())

	ctx, cancel := context.WithCancel(context.Background())
	p.srv = xds.NewServer(ctx, xds.ServerOptions{
		Logger: logger,
		OnACK: func(node, _ string) {
			if node != nodeID {
				return
			}
			select { // must not block: it runs on the stream's goroutine
			case p.acked <- struct{}{}:
			default:
			}
		},
	})
	eng, err := xds.NewEngine(p.srv, xds.EngineOptions{Logger: logger})
	if err != nil {
		cancel()
		t.Fatalf("creating the engine: %v", err)
	}
	p.eng = eng
	lis := testrun.Listen(t)
	testrun.Go(t, ctx, "xDS Serve", waitFor, func(ctx context.Context) error { return p.srv.Serve(ctx, lis) })
	t.Cleanup(cancel) // before Go's cleanup: the server's context ends with Serve's

	for _, id := range []string{backendA, backendB, backendC} {
		p.ports[id] = startBackend(t, id)
	}

	bootstrap, err := bootstrapJSON(lis.Addr().String())
	if err != nil {
		t.Fatalf("building the bootstrap: %v", err)
	}
	// The resolver gets the bootstrap in process: the environment variable
	// is read once per process, and each test needs its own server.
	builder, err := grpcxds.NewXDSResolverWithConfigForTesting(bootstrap)
	if err != nil {
		t.Fatalf("creating the xds resolver: %v", err)
	}
	conn, err := grpc.NewClient("xds:///"+host,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(builder))
	if err != nil {
		t.Fatalf("creating the client for xds:///%s: %v", host, err)
	}
	t.Cleanup(func() {
		if err := conn.Close(); err != nil {
			t.Errorf("closing the client: %v", err)
		}
	})
	p.conn = conn
	p.client = testgrpc.NewTestServiceClient(conn)
	return p
}

// bootstrapJSON is grpc-go's bootstrap for the xDS server at serverURI.
// grpc-go adds the user agent ("gRPC Go") to the node itself, which is how
// the server tells a proxyless client (see xds.KindOf).
func bootstrapJSON(serverURI string) ([]byte, error) {
	type server struct {
		ServerURI      string              `json:"server_uri"`
		ChannelCreds   []map[string]string `json:"channel_creds"`
		ServerFeatures []string            `json:"server_features"`
	}
	b, err := json.Marshal(map[string]any{
		"xds_servers": []server{{
			ServerURI:      serverURI,
			ChannelCreds:   []map[string]string{{"type": "insecure"}},
			ServerFeatures: []string{"xds_v3"},
		}},
		"node": map[string]string{"id": nodeID, "cluster": "kgate-grpcpeer"},
	})
	if err != nil {
		return nil, fmt.Errorf("encoding the bootstrap: %w", err)
	}
	return b, nil
}

// idServer is a TestService backend that names itself in every answer.
type idServer struct {
	testgrpc.UnimplementedTestServiceServer
	id string
}

// UnaryCall answers with the backend's id as server_id.
func (s idServer) UnaryCall(context.Context, *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{ServerId: s.id}, nil
}

// startBackend serves a TestService on 127.0.0.1 until the test ends and
// returns its port.
func startBackend(t *testing.T, id string) uint32 {
	t.Helper()
	lis := testrun.Listen(t)
	g := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(g, idServer{id: id})
	served := make(chan error, 1)
	go func() { served <- g.Serve(lis) }()
	t.Cleanup(func() {
		g.Stop()
		if err := <-served; err != nil {
			t.Errorf("serving %s: %v", id, err)
		}
	})
	return uint32(lis.Addr().(*net.TCPAddr).Port)
}

// Knative tag names of the two revisions.
const (
	tagA = "current"
	tagB = "candidate"
)

// layout is what a case varies in the model.
type layout struct {
	// pctA and pctB split the default route between revA and revB.
	pctA, pctB uint32
	// podsA and podsB are the backends serving revA and revB.
	podsA, podsB []string
	// tagged adds Knative's tag routes: header Knative-Serving-Tag tagA
	// sends to revA, tagB to revB, whatever the split; grpc-go then
	// watches both revisions' clusters all along.
	tagged bool
}

// config is the model of Service default/hello: host
// hello.default.example.com, a default route "/" split between revA and
// revB (with the headers Knative sets per split), tag routes if asked,
// both revisions speaking h2c, and their endpoints in Serve mode. The
// Service comes first in Services, revA's endpoints first in Endpoints.
func (p *peer) config(l layout) model.Config {
	routes := []model.Route{{
		PathPrefix: "/",
		Splits:     []model.Split{split(revA, l.pctA), split(revB, l.pctB)},
	}}
	if l.tagged {
		for _, tag := range []struct{ tag, rev string }{{tagA, revA}, {tagB, revB}} {
			routes = append(routes, model.Route{
				PathPrefix: "/",
				Headers:    []model.HeaderMatch{{Name: "Knative-Serving-Tag", Value: tag.tag}},
				Splits:     []model.Split{split(tag.rev, 100)},
			})
		}
	}
	return model.Config{
		Services: []model.Service{{
			Namespace: namespace,
			Name:      serviceName,
			Created:   time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			VirtualHosts: []model.VirtualHost{{
				Host:       host,
				Visibility: model.External,
				Routes:     routes,
			}},
		}},
		Revisions: []model.Revision{
			// H2C gives the cluster HTTP/2 upstream options, as a gRPC
			// revision has; grpc-go ignores them.
			{Namespace: namespace, Name: revA, Protocol: model.H2C},
			{Namespace: namespace, Name: revB, Protocol: model.H2C},
		},
		Endpoints: []model.RevisionEndpoints{p.endpoints(revA, l.podsA), p.endpoints(revB, l.podsB)},
	}
}

func split(rev string, pct uint32) model.Split {
	return model.Split{
		Revision: namespace + "/" + rev,
		Percent:  pct,
		SetHeaders: []model.Header{
			{Name: "Knative-Serving-Revision", Value: rev},
			{Name: "Knative-Serving-Namespace", Value: namespace},
		},
	}
}

func (p *peer) endpoints(rev string, backends []string) model.RevisionEndpoints {
	ep := model.RevisionEndpoints{Revision: namespace + "/" + rev, Mode: model.Serve}
	for _, id := range backends {
		ep.Pods = append(ep.Pods, model.Endpoint{Address: "127.0.0.1", Port: p.ports[id]})
	}
	return ep
}

// update publishes cfg as the whole model and has the client resolve it:
// a new channel is idle, with no xDS stream, until asked to connect.
func (p *peer) update(t *testing.T, cfg model.Config) {
	t.Helper()
	if err := p.eng.Update(cfg); err != nil {
		t.Fatalf("publishing the model: %v", err)
	}
	p.conn.Connect()
}

// call sends one UnaryCall, with header Knative-Serving-Tag unless tag is
// empty, and returns the id of the backend that answered.
func (p *peer) call(tag string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	if tag != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "knative-serving-tag", tag)
	}
	resp, err := p.client.UnaryCall(ctx, &testgrpc.SimpleRequest{FillServerId: true})
	if err != nil {
		return "", fmt.Errorf("UnaryCall via xds:///%s: %w", host, err)
	}
	return resp.GetServerId(), nil
}

// spray sends n RPCs (tagged unless tag is empty) and counts them by
// answering backend; a failed RPC fails the test.
func (p *peer) spray(t *testing.T, n int, tag string) map[string]int {
	t.Helper()
	var (
		next   atomic.Int64
		mu     sync.Mutex
		counts = map[string]int{}
		failed []error
		wg     sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				id, err := p.call(tag)
				mu.Lock()
				if err != nil {
					failed = append(failed, err)
				} else {
					counts[id]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d of %d RPCs failed; first: %v%s", len(failed), n, failed[0], p.logs.summary())
	}
	return counts
}

// rpcResult is one RPC of measureSwitch.
type rpcResult struct {
	start, end time.Time
	backend    string
	err        error
}

// switchStats are measureSwitch's figures, times relative to the change.
type switchStats struct {
	// latency is when every RPC started from then on landed on the new
	// backend: the start of the first RPC after the last one that did not.
	latency time.Duration
	// firstNew is when the first answer from the new backend arrived.
	firstNew time.Duration
	// push is how long the Engine call took.
	push time.Duration
	// total counts every RPC; fromAfter and toAfter those started after
	// the change, by backend.
	total, fromAfter, toAfter int
}

// measureSwitch runs RPCs continuously on workers goroutines: until
// warmRPCs landed on from, then it calls change, then until settledRPCs in
// a row landed on to. It fails the test if any RPC failed, landed
// elsewhere, or landed on to before the change.
func (p *peer) measureSwitch(t *testing.T, from, to string, change func() error) switchStats {
	t.Helper()
	results := make(chan rpcResult, 256)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				id, err := p.call("")
				results <- rpcResult{start: start, end: time.Now(), backend: id, err: err}
			}
		})
	}
	var all []rpcResult
	// finish stops the workers and keeps every result, also those of RPCs
	// in flight: an RPC failing at the end still counts. Deferred too, so
	// that a fatal path never leaves workers running.
	finished := false
	finish := func() {
		if finished {
			return
		}
		finished = true
		close(stop)
		go func() { wg.Wait(); close(results) }()
		for r := range results {
			all = append(all, r)
		}
	}
	defer finish()
	// collect keeps results until done says so, or gives up at the deadline.
	collect := func(within time.Duration, done func(rpcResult) bool) bool {
		timer := time.NewTimer(within)
		defer timer.Stop()
		for {
			select {
			case r := <-results:
				all = append(all, r)
				if done(r) {
					return true
				}
			case <-timer.C:
				return false
			}
		}
	}

	warm := 0
	warmed := collect(waitFor, func(r rpcResult) bool {
		if r.err == nil && r.backend == from {
			warm++
		}
		return warm >= warmRPCs
	})
	if !warmed {
		finish()
		t.Fatalf("only %d RPCs of %d landed on %s within %v before the change%s%s", warm, len(all), from, waitFor, describe(all), p.logs.summary())
	}

	t0 := time.Now()
	err := change()
	push := time.Since(t0)
	if err != nil {
		finish()
		t.Fatalf("changing the model: %v", err)
	}
	run := 0
	settled := collect(waitFor, func(r rpcResult) bool {
		if r.err == nil && r.backend == to {
			run++
		} else {
			run = 0
		}
		return run >= settledRPCs
	})
	finish()

	st := switchStats{push: push, total: len(all), firstNew: -1}
	var failed, stray, early []rpcResult
	for _, r := range all {
		switch {
		case r.err != nil:
			failed = append(failed, r)
		case r.backend != from && r.backend != to:
			stray = append(stray, r)
		case r.backend == to && r.end.Before(t0):
			early = append(early, r)
		}
		if r.err == nil && r.start.After(t0) {
			switch r.backend {
			case from:
				st.fromAfter++
			case to:
				st.toAfter++
			}
		}
		if r.err == nil && r.backend == to && (st.firstNew < 0 || r.end.Sub(t0) < st.firstNew) {
			st.firstNew = r.end.Sub(t0)
		}
	}
	if len(failed) > 0 {
		t.Errorf("%d of %d RPCs failed while traffic moved from %s to %s; first (started %v after the change): %v%s",
			len(failed), len(all), from, to, failed[0].start.Sub(t0), failed[0].err, p.logs.summary())
	}
	if len(stray) > 0 {
		t.Errorf("%d RPCs landed on neither %s nor %s; first on %s", len(stray), from, to, stray[0].backend)
	}
	if len(early) > 0 {
		t.Errorf("%d RPCs landed on %s before the change was made", len(early), to)
	}
	if !settled {
		t.Fatalf("RPCs did not settle on %s within %v of the change%s%s", to, waitFor, describe(all), p.logs.summary())
	}

	// Every RPC started after the last one not landing on to landed on to.
	slices.SortFunc(all, func(a, b rpcResult) int { return a.start.Compare(b.start) })
	last := -1
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].err != nil || all[i].backend != to {
			last = i
			break
		}
	}
	if last+1 >= len(all) {
		t.Fatalf("the last RPC did not land on %s%s", to, describe(all))
	}
	st.latency = max(0, all[last+1].start.Sub(t0))
	return st
}

// describe counts results by outcome, for failure messages.
func describe(all []rpcResult) string {
	counts := map[string]int{}
	for _, r := range all {
		if r.err != nil {
			counts["failed"]++
			continue
		}
		counts[r.backend]++
	}
	return fmt.Sprintf(" (outcomes: %v)", counts)
}

// ackWant is a resource version grpc-go must have ACKed.
type ackWant struct {
	typeURL, name, version string
}

// waitACKed waits until the client's ADS stream, seen by the server as a
// proxyless node, has ACKed exactly the version kgate publishes of every
// resource grpc-go needs for cfg: the API listener and route configuration
// of each Service, and the cluster and load assignment of each revision a
// route sends traffic to.
func (p *peer) waitACKed(t *testing.T, cfg model.Config) {
	t.Helper()
	want := p.wantACKs(t, cfg)
	timer := time.NewTimer(waitFor)
	defer timer.Stop()
	for {
		missing := slices.IndexFunc(want, func(w ackWant) bool { return !p.hasACKed(w) })
		if missing < 0 {
			return
		}
		select {
		case <-p.acked:
		case <-timer.C:
			w := want[missing]
			t.Fatalf("grpc-go did not ACK %s %q version %s within %v; the server's streams report %+v%s",
				w.typeURL, w.name, w.version, waitFor, p.srv.Acked(w.typeURL, w.name), p.logs.summary())
		}
	}
}

func (p *peer) hasACKed(w ackWant) bool {
	for _, a := range p.srv.Acked(w.typeURL, w.name) {
		if a.NodeID == nodeID && a.Kind == xds.Proxyless && a.Version == w.version {
			return true
		}
	}
	return false
}

func (p *peer) wantACKs(t *testing.T, cfg model.Config) []ackWant {
	t.Helper()
	want := map[ackWant]bool{}
	add := func(typeURL, name string, res types.Resource) {
		v, err := xds.ResourceVersion(res)
		if err != nil {
			t.Fatalf("computing the version of %s %q: %v", typeURL, name, err)
		}
		want[ackWant{typeURL: typeURL, name: name, version: v}] = true
	}
	revisions := map[string]model.Revision{}
	for _, r := range cfg.Revisions {
		revisions[r.Key()] = r
	}
	endpoints := map[string]model.RevisionEndpoints{}
	for _, ep := range cfg.Endpoints {
		endpoints[ep.Revision] = ep
	}
	for _, svc := range cfg.Services {
		versions, err := p.eng.ServiceVersions(svc.Key())
		if err != nil {
			t.Fatalf("reading the versions of Service %s: %v", svc.Key(), err)
		}
		// Scoped routes are for gateways; grpc-go never asks for them.
		for _, typeURL := range []string{resource.ListenerType, resource.RouteType} {
			if len(versions[typeURL]) == 0 {
				t.Fatalf("Service %s publishes no %s", svc.Key(), typeURL)
			}
			for name, v := range versions[typeURL] {
				want[ackWant{typeURL: typeURL, name: name, version: v}] = true
			}
		}
		for _, vh := range svc.VirtualHosts {
			for _, r := range vh.Routes {
				for _, s := range r.Splits {
					if s.Percent == 0 {
						continue // left out of the route: grpc-go never watches it
					}
					for _, c := range translator.Revision(revisions[s.Revision], translator.Options{}).Clusters {
						add(resource.ClusterType, c.GetName(), c)
					}
					// grpc-go asks EDS for the cluster's service name, not
					// for the "/pods" assignment the activator reads.
					for _, cla := range translator.Endpoints(endpoints[s.Revision], translator.Options{}).Endpoints {
						if cla.GetClusterName() == translator.ClusterName(s.Revision) {
							add(resource.EndpointType, cla.GetClusterName(), cla)
						}
					}
				}
			}
		}
	}
	out := make([]ackWant, 0, len(want))
	for w := range want {
		out = append(out, w)
	}
	slices.SortFunc(out, func(a, b ackWant) int {
		return strings.Compare(a.typeURL+" "+a.name, b.typeURL+" "+b.name)
	})
	return out
}

// logSink forwards the xDS server's log to t.Log and keeps every record at
// Warn or above: the server logs a client's NACK at Warn, with the
// client's reason. Any such record fails the test.
type logSink struct {
	t        testing.TB
	mu       sync.Mutex
	done     bool
	problems []string
}

// newLogSink returns a sink whose check runs as the test's last cleanup,
// after everything logging to it has stopped.
func newLogSink(t testing.TB) *logSink {
	s := &logSink{t: t}
	t.Cleanup(func() {
		s.mu.Lock()
		s.done = true // the server's goroutines may outlive the test
		problems := slices.Clone(s.problems)
		s.mu.Unlock()
		for _, p := range problems {
			t.Errorf("the xDS server logged: %s", p)
		}
	})
	return s
}

// Write takes one record from the text handler.
func (s *logSink) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done {
		s.t.Log(strings.TrimSuffix(string(b), "\n"))
	}
	return len(b), nil
}

func (s *logSink) handler() slog.Handler {
	return problemHandler{
		Handler: slog.NewTextHandler(s, &slog.HandlerOptions{Level: slog.LevelDebug}),
		sink:    s,
	}
}

func (s *logSink) problem(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.problems = append(s.problems, msg)
}

// summary lists the problems so far, to explain a failing RPC or a
// missing ACK.
func (s *logSink) summary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.problems) == 0 {
		return ""
	}
	return "\nthe xDS server logged:\n  " + strings.Join(s.problems, "\n  ")
}

// problemHandler records Warn and above in its sink, then logs as usual.
type problemHandler struct {
	slog.Handler
	sink *logSink
}

// Handle records a Warn or Error record with its attributes (a NACK's
// node, type, resources and error).
func (h problemHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		var b strings.Builder
		b.WriteString(r.Message)
		r.Attrs(func(a slog.Attr) bool {
			fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
			return true
		})
		h.sink.problem(b.String())
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the recording.
func (h problemHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return problemHandler{Handler: h.Handler.WithAttrs(attrs), sink: h.sink}
}

// WithGroup keeps the recording.
func (h problemHandler) WithGroup(name string) slog.Handler {
	return problemHandler{Handler: h.Handler.WithGroup(name), sink: h.sink}
}
