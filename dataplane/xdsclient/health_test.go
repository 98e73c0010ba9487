package xdsclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/internal/testrun"
)

// bigADS is a delta ADS server that answers each stream's first request
// with one cluster of about size bytes, whatever was asked, and counts the
// streams.
type bigADS struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
	size    atomic.Int64
	streams atomic.Int32
}

func startBigADS(t *testing.T, size int) (*bigADS, string) {
	t.Helper()
	f := &bigADS{}
	f.size.Store(int64(size))
	g := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, f)
	lis := testrun.Listen(t)
	testrun.Go(t, context.Background(), "Serve", waitFor, func(ctx context.Context) error {
		context.AfterFunc(ctx, g.Stop)
		return g.Serve(lis)
	})
	return f, lis.Addr().String()
}

func (f *bigADS) DeltaAggregatedResources(s discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	f.streams.Add(1)
	req, err := s.Recv()
	if err != nil {
		return err
	}
	body, err := anypb.New(&clusterv3.Cluster{Name: "big", AltStatName: strings.Repeat("x", int(f.size.Load()))})
	if err != nil {
		return err
	}
	if err := s.Send(&discoveryv3.DeltaDiscoveryResponse{
		TypeUrl: req.GetTypeUrl(), Nonce: "1",
		Resources: []*discoveryv3.Resource{{Name: "big", Version: "1", Resource: body}},
	}); err != nil {
		return err
	}
	for { // ACKs, until the client goes
		if _, err := s.Recv(); err != nil {
			return nil
		}
	}
}

// record is one JSON log record.
type record struct {
	Level    string `json:"level"`
	Msg      string `json:"msg"`
	Error    string `json:"error"`
	Failures int    `json:"failures"`
}

// records decodes a JSON log.
func records(t *testing.T, logs *testrun.Buffer) []record {
	t.Helper()
	var out []record
	for line := range strings.Lines(logs.String()) {
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// atLevel returns the records of a level.
func atLevel(rs []record, level string) []record {
	var out []record
	for _, r := range rs {
		if r.Level == level {
			out = append(out, r)
		}
	}
	return out
}

// newLoggedClient is a client of addr, logging everything as JSON to logs,
// with a recorder watching every cluster.
func newLoggedClient(t *testing.T, addr string, opts xdsclient.Options) (*xdsclient.Client, *recorder, *testrun.Buffer) {
	t.Helper()
	logs := &testrun.Buffer{}
	opts.Node = xdsclient.Node{ID: "test-" + t.Name()}
	opts.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Backoff = fastBackoff
	c, err := xdsclient.New(dial(t, addr), opts)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	c.Watch(resource.ClusterType, rec.handle, xdsclient.Wildcard)
	return c, rec, logs
}

// The client takes messages up to its limit, 128 MiB unless told, whatever
// the connection's default (grpc-go's 4 MiB here); past it, Err says so.
func TestReceiveLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int
		size  int
		// wantErr is the code Err reports once the client tried, OK for
		// none: the response arrived.
		wantErr codes.Code
	}{
		{"5 MiB within the default limit", 0, 5 << 20, codes.OK},
		{"100 KiB within a limit of 200", 200 << 10, 100 << 10, codes.OK},
		{"100 KiB past a limit of 64", 64 << 10, 100 << 10, codes.ResourceExhausted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, addr := startBigADS(t, tc.size)
			c, rec, logs := newLoggedClient(t, addr, xdsclient.Options{MaxRecvMsgSize: tc.limit})
			run(t, c.Run)
			if tc.wantErr == codes.OK {
				expectUpdate(t, rec.next(t), []string{"big"}, nil)
				waitUntil(t, "Err to be nil", func() bool { return c.Err() == nil })
				if errs := atLevel(records(t, logs), "ERROR"); len(errs) > 0 {
					t.Errorf("errors logged: %+v", errs)
				}
				return
			}
			waitUntil(t, "the client to fail three streams", func() bool { return srv.streams.Load() >= 3 })
			err := c.Err()
			if status.Code(err) != tc.wantErr || !strings.Contains(err.Error(), "MaxRecvMsgSize") {
				t.Errorf("Err() = %v, want a %s naming Options.MaxRecvMsgSize", err, tc.wantErr)
			}
			rec.none(t)
		})
	}
}

// A run of failures is logged once, at error level when reconnecting does
// not cure it, with the retries at debug level, counted; the recovery is
// logged with the count, and Err clears.
func TestFailuresAreLoggedOnce(t *testing.T) {
	srv, addr := startBigADS(t, 100<<10)
	c, rec, logs := newLoggedClient(t, addr, xdsclient.Options{MaxRecvMsgSize: 64 << 10})
	run(t, c.Run)
	// A fifth stream opens only after the fourth failed and was logged: the
	// server counting four would race the client's log of the fourth.
	waitUntil(t, "the client to fail four streams", func() bool { return srv.streams.Load() >= 5 })
	if err := c.Err(); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("Err() = %v, want ResourceExhausted", err)
	}

	srv.size.Store(10)
	expectUpdate(t, rec.next(t), []string{"big"}, nil)
	waitUntil(t, "Err to clear", func() bool { return c.Err() == nil })
	rs := records(t, logs)
	errs := atLevel(rs, "ERROR")
	if len(errs) != 1 || !strings.Contains(errs[0].Error, "ResourceExhausted") || errs[0].Failures != 1 {
		t.Fatalf("error records %+v, want one, of the first failure, naming ResourceExhausted", errs)
	}
	retries := 0
	for _, r := range atLevel(rs, "DEBUG") {
		if r.Msg == errs[0].Msg {
			retries++
			if r.Failures != retries+1 {
				t.Errorf("retry %d logged as failure %d", retries, r.Failures)
			}
		}
	}
	var recovered []record
	for _, r := range atLevel(rs, "INFO") {
		if strings.Contains(r.Msg, "recovered") {
			recovered = append(recovered, r)
		}
	}
	if retries < 3 || len(recovered) != 1 || recovered[0].Failures != retries+1 {
		t.Errorf("%d retries logged at debug level, recoveries %+v: want at least 3, and one recovery counting them all", retries, recovered)
	}
	if warns := atLevel(rs, "WARN"); len(warns) > 0 {
		t.Errorf("warnings logged: %+v", warns)
	}
}

// Err follows the watches of every resource: not nil until each has
// accepted a response, and nil through a control plane restart once they
// have.
func TestErrUntilSynced(t *testing.T) {
	srv := startXDS(t, twoRevisions())
	logs := &testrun.Buffer{}
	c, err := xdsclient.New(dial(t, srv.addr), xdsclient.Options{
		Node:    xdsclient.Node{ID: "synced"},
		Backoff: fastBackoff,
		Logger:  slog.New(slog.NewJSONHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	clusters := newRecorder()
	var reject atomic.Bool
	reject.Store(true)
	clusters.reject = func(xdsclient.Update) error {
		if reject.Load() {
			return errors.New("not today")
		}
		return nil
	}
	c.Watch(resource.ClusterType, clusters.handle, xdsclient.Wildcard)
	// A watch of names does not count: a server need not answer it.
	c.Watch(resource.EndpointType, newRecorder().handle, "default/none/pods")
	if err := c.Err(); err == nil || !strings.Contains(err.Error(), "no "+resource.ClusterType+" response yet") {
		t.Errorf("before Run: Err() = %v, want no response yet", err)
	}

	run(t, c.Run)
	waitUntil(t, "Err to name the rejection", func() bool {
		err := c.Err()
		return err != nil && strings.Contains(err.Error(), "rejected the first") && strings.Contains(err.Error(), "not today")
	})
	reject.Store(false)
	srv.must(srv.eng.SetRevision(revision("a", 3)))
	clusters.next(t)
	// The handler hands the update over before the client records that it
	// accepted it: Err clears just after.
	waitUntil(t, "Err to clear once a response is accepted", func() bool { return c.Err() == nil })

	// The control plane goes away: the client keeps what it has, ready,
	// and says so once.
	srv.stop()
	waitUntil(t, "the client to log the stream's end", func() bool {
		return len(atLevel(records(t, logs), "WARN")) > 0
	})
	if err := c.Err(); err != nil {
		t.Errorf("the control plane away: Err() = %v", err)
	}
	srv.start(twoRevisions())
	waitUntil(t, "the client to log its recovery", func() bool {
		for _, r := range atLevel(records(t, logs), "INFO") {
			if strings.Contains(r.Msg, "recovered") {
				return true
			}
		}
		return false
	})
	failures := 0
	for _, r := range atLevel(records(t, logs), "WARN") {
		if strings.Contains(r.Msg, "stream failed") {
			failures++
		}
	}
	if failures != 1 {
		t.Errorf("%d stream failures logged at warning level, want one:\n%s", failures, logs)
	}
	if errs := atLevel(records(t, logs), "ERROR"); len(errs) != 0 {
		t.Errorf("errors %+v, want none", errs)
	}
	if err := c.Err(); err != nil {
		t.Errorf("reconnected: Err() = %v", err)
	}
}
