package lrs

import (
	"context"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	loadstatsv3 "github.com/envoyproxy/go-control-plane/envoy/service/load_stats/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/proto"

	"github.com/kgate/kgate/translator/model"
)

// FuzzStreamLoadStats feeds the server load reports as a reporter sends
// them, bytes of LoadStatsRequest protos, and checks what the autoscaler
// relies on when it reads Collect: any input a reporter can send yields
// finite, non-negative, whole counts within what was reported, under
// revision keys that were reported, counted once; and the server holds no
// more than the reports named, and nothing once the streams close.
//
// The three inputs are three reports, sent in order with gap × 250 ms
// between them (MaxAge is 3 s, so a long gap ages counts out) on two
// streams: bit i of streams says which stream the i-th report goes to,
// and a stream's first report is the one that opens it. They go through
// StreamLoadStats as gRPC would hand them over, on a development server's
// anonymous connection; inputs that are not protos are skipped.
func FuzzStreamLoadStats(f *testing.F) {
	const maxAge = 3 * time.Second
	f.Fuzz(func(t *testing.T, a, b, c []byte, streams, gap uint8) {
		var reqs []*loadstatsv3.LoadStatsRequest
		for _, data := range [][]byte{a, b, c} {
			req := &loadstatsv3.LoadStatsRequest{}
			if err := proto.Unmarshal(data, req); err != nil {
				t.Skip("not a LoadStatsRequest")
			}
			reqs = append(reqs, req)
		}

		now := t0
		var demandMu sync.Mutex
		demanded := map[string]bool{}
		srv := New(Options{
			MaxAge: maxAge,
			Now:    func() time.Time { return now }, // moved only while no report is applied
			OnDemand: func(rev string) {
				demandMu.Lock()
				defer demandMu.Unlock()
				demanded[rev] = true
			},
		})
		applied := make(chan struct{}, 1)
		srv.applied = func() { applied <- struct{}{} }

		// What the reports said: the revisions a cluster name may count
		// for, the (side, revision) pairs, and bounds on the counts.
		reported := map[string]bool{}
		pairs := map[sideRev]bool{}
		var maxIssued float64
		for _, req := range reqs {
			for _, cs := range req.GetClusterStats() {
				name := cs.GetClusterName()
				side := gateway
				if rev, ok := strings.CutSuffix(name, "/"+podsSegment); ok && strings.Count(name, "/") == 2 {
					name, side = rev, activator
				}
				reported[name] = true
				pairs[sideRev{side, name}] = true
			}
			maxIssued += maxCount
		}

		open := map[int]*fuzzStream{}
		for i, req := range reqs {
			if i > 0 {
				now = now.Add(time.Duration(gap) * 250 * time.Millisecond)
			}
			n := int(streams>>i) & 1
			s := open[n]
			if s == nil {
				s = openFuzzStream(srv)
				open[n] = s
			}
			select {
			case s.reqs <- req:
			case err := <-s.ended:
				t.Fatalf("the stream ended before its report: %v", err)
			}
			select {
			case <-applied:
			case err := <-s.ended:
				t.Fatalf("the stream ended instead of applying its report: %v", err)
			}
		}

		first := srv.Collect(now)
		for rev, st := range first {
			if !reported[rev] {
				t.Errorf("Collect has %q, which no report named", rev)
			}
			checkStat(t, rev, st, float64(len(open))*maxCount, maxIssued)
		}
		demandMu.Lock()
		for rev := range demanded {
			if !reported[rev] {
				t.Errorf("OnDemand(%q), which no report named", rev)
			}
		}
		demandMu.Unlock()
		srv.table.mu.Lock()
		for id, gauges := range srv.table.streams {
			for key := range gauges {
				if !pairs[key] {
					t.Errorf("stream %d holds %v, which no report named", id, key)
				}
			}
		}
		srv.table.mu.Unlock()

		// Issued requests are handed out once; in-flight counts stay.
		for rev, st := range srv.Collect(now) {
			if st.Requests != 0 || st.Concurrency != first[rev].Concurrency {
				t.Errorf("a second Collect has %s: %+v after %+v", rev, st, first[rev])
			}
		}

		for _, s := range open {
			close(s.reqs)
			if err := <-s.ended; err != nil {
				t.Errorf("the stream ended with %v; want nil, its reporter having closed it", err)
			}
		}
		if got := srv.Collect(now); len(got) != 0 {
			t.Errorf("Collect after every stream closed = %v; want nothing", got)
		}
		srv.table.mu.Lock()
		defer srv.table.mu.Unlock()
		if len(srv.table.streams) != 0 || len(srv.table.issued) != 0 {
			t.Errorf("the table holds %d streams and %d issued counts after every stream closed and a Collect", len(srv.table.streams), len(srv.table.issued))
		}
	})
}

// checkStat fails t unless st is a load the autoscaler can use: finite,
// non-negative, whole and within the bounds of what was reported.
func checkStat(t *testing.T, rev string, st model.Stat, maxConcurrency, maxRequests float64) {
	t.Helper()
	for _, v := range []struct {
		name     string
		v, bound float64
	}{
		{"concurrency", st.Concurrency, maxConcurrency},
		{"requests", st.Requests, maxRequests},
	} {
		if math.IsNaN(v.v) || math.IsInf(v.v, 0) || v.v < 0 || v.v != math.Trunc(v.v) || v.v > v.bound {
			t.Errorf("%s: %s = %v; want a whole number in [0, %v]", rev, v.name, v.v, v.bound)
		}
	}
}

// fuzzStream is one reporter's stream as the server sees it: reports
// arrive from reqs, and closing reqs is the reporter closing the stream.
type fuzzStream struct {
	grpc.ServerStream // the rest of the interface; StreamLoadStats uses none of it
	ctx               context.Context
	reqs              chan *loadstatsv3.LoadStatsRequest
	ended             chan error // StreamLoadStats's result
}

// openFuzzStream starts serving a new stream.
func openFuzzStream(srv *Server) *fuzzStream {
	// A peer without TLS: a development server's connection.
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}})
	s := &fuzzStream{ctx: ctx, reqs: make(chan *loadstatsv3.LoadStatsRequest), ended: make(chan error, 1)}
	go func() { s.ended <- srv.StreamLoadStats(s) }()
	return s
}

func (s *fuzzStream) Context() context.Context { return s.ctx }

func (s *fuzzStream) Recv() (*loadstatsv3.LoadStatsRequest, error) {
	req, ok := <-s.reqs
	if !ok {
		return nil, io.EOF
	}
	return req, nil
}

func (s *fuzzStream) Send(*loadstatsv3.LoadStatsResponse) error { return nil }

var _ loadstatsv3.LoadReportingService_StreamLoadStatsServer = (*fuzzStream)(nil)
