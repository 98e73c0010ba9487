package xdsclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	loadstatsv3 "github.com/envoyproxy/go-control-plane/envoy/service/load_stats/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/kgate/kgate/translator"
)

// LoadFunc returns the load of every cluster the caller counts, by cluster
// name. It is called on the reporter's goroutine at each report.
type LoadFunc func() map[string]Load

// LoadReportOptions configure a LoadReporter.
type LoadReportOptions struct {
	// Node identifies the client to the server.
	Node Node
	// Load supplies the counts to report; required.
	Load LoadFunc
	// Locality is the one locality every cluster's load is reported in;
	// nil means zone translator.Zone, where kgate puts every endpoint.
	Locality *corev3.Locality
	// Logger receives stream failures; nil discards them.
	Logger *slog.Logger
	// Backoff paces reconnections.
	Backoff Backoff
}

// LoadReporter reports load over LRS (LoadReportingService.StreamLoadStats):
// it sends its node, then, at the interval the server's last response
// asks for, the load of the clusters it asks for (or of every cluster, with
// send_all_clusters), and at once on ReportNow. Its methods are safe for
// concurrent use.
type LoadReporter struct {
	lrs     loadstatsv3.LoadReportingServiceClient
	node    *corev3.Node
	load    LoadFunc
	log     *slog.Logger
	backoff Backoff
	outage  *outage
	running atomic.Bool
	// ledger is only used on Run's goroutine.
	ledger *ledger

	mu sync.Mutex
	// now are the clusters ReportNow asked for and not yet reported; all
	// says every cluster.
	now    map[string]struct{}
	nowAll bool
	// poke wakes Run when ReportNow is called; it holds one wake-up at most.
	poke chan struct{}
}

// NewLoadReporter returns a reporter that will speak to the server behind
// conn once Run is called.
func NewLoadReporter(conn grpc.ClientConnInterface, opts LoadReportOptions) (*LoadReporter, error) {
	node, err := opts.Node.proto()
	if err != nil {
		return nil, err
	}
	if opts.Load == nil {
		return nil, errors.New("xdsclient: a LoadReporter needs a Load function")
	}
	locality := opts.Locality
	if locality == nil {
		locality = &corev3.Locality{Zone: translator.Zone}
	}
	return &LoadReporter{
		lrs:     loadstatsv3.NewLoadReportingServiceClient(conn),
		node:    node,
		load:    opts.Load,
		log:     orDiscard(opts.Logger),
		backoff: opts.Backoff.withDefaults(),
		outage:  newOutage(orDiscard(opts.Logger), "LRS"),
		ledger:  newLedger(proto.Clone(locality).(*corev3.Locality), time.Now()),
		now:     map[string]struct{}{},
		poke:    make(chan struct{}, 1),
	}, nil
}

// ReportNow reports the named clusters (every cluster when none is named)
// at once, outside the interval; the next periodic report of each covers
// what follows. Before the server has answered the stream's first
// request, the report waits for its answer. It never blocks.
func (r *LoadReporter) ReportNow(clusters ...string) {
	r.mu.Lock()
	if len(clusters) == 0 {
		r.nowAll = true
	}
	for _, c := range clusters {
		r.now[c] = struct{}{}
	}
	r.mu.Unlock()
	select {
	case r.poke <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// takeNow returns and clears what ReportNow asked for: nil names with all
// for every cluster.
func (r *LoadReporter) takeNow() (names map[string]struct{}, all bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	names, all = r.now, r.nowAll
	r.now, r.nowAll = map[string]struct{}{}, false
	return names, all
}

// Run reports until ctx ends, reopening the stream after failures. It
// returns nil once ctx ends, with every goroutine it started ended; it
// fails only when called twice.
func (r *LoadReporter) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("xdsclient: LoadReporter.Run called twice")
	}
	retry(ctx, r.backoff, r.outage, r.runStream)
	return nil
}

// plan is what the server asked for in its last response.
type plan struct {
	all      bool
	clusters map[string]struct{}
	interval time.Duration
}

func planOf(resp *loadstatsv3.LoadStatsResponse) plan {
	p := plan{all: resp.GetSendAllClusters(), clusters: map[string]struct{}{}}
	for _, c := range resp.GetClusters() {
		p.clusters[c] = struct{}{}
	}
	if d := resp.GetLoadReportingInterval(); d != nil {
		p.interval = d.AsDuration()
	}
	return p
}

func (p plan) wants(cluster string) bool {
	_, ok := p.clusters[cluster]
	return p.all || ok
}

// runStream runs one LRS stream until it fails or ctx ends.
func (r *LoadReporter) runStream(ctx context.Context) (healthy bool, err error) {
	st, err := open(ctx, r.lrs.StreamLoadStats)
	if err != nil {
		return false, err
	}
	defer st.close()
	if err := st.Send(&loadstatsv3.LoadStatsRequest{Node: r.node}); err != nil {
		return false, st.sendFailed(fmt.Errorf("sending the node: %w", err))
	}

	var (
		asked *plan
		tick  periodic
	)
	defer tick.stop()
	for {
		var sendErr error
		select {
		case err := <-st.ended:
			return healthy, err
		case resp := <-st.received:
			if !healthy {
				r.outage.recovered()
			}
			healthy = true
			p := planOf(resp)
			asked = &p
			if p.interval <= 0 {
				r.log.Warn("the LRS server asked for no positive load_reporting_interval: reporting only on demand", "interval", p.interval)
			}
			tick.reset(p.interval)
			// Reports asked for before the server answered go now.
			sendErr = r.reportNow(st, p)
		case <-tick.c():
			sendErr = r.report(st, *asked, nil)
		case <-r.poke:
			if asked != nil {
				sendErr = r.reportNow(st, *asked)
			}
		}
		if sendErr != nil {
			return healthy, st.sendFailed(sendErr)
		}
	}
}

// reportNow sends what ReportNow asked for, if anything.
func (r *LoadReporter) reportNow(stream loadstatsv3.LoadReportingService_StreamLoadStatsClient, p plan) error {
	names, all := r.takeNow()
	if !all && len(names) == 0 {
		return nil
	}
	if all {
		names = nil
	}
	return r.report(stream, p, names)
}

// report sends the load of the clusters the server wants: those named in
// only, or all of them when only is nil.
func (r *LoadReporter) report(stream loadstatsv3.LoadReportingService_StreamLoadStatsClient, p plan, only map[string]struct{}) error {
	loads := r.load()
	var names []string
	for name := range loads {
		if _, named := only[name]; p.wants(name) && (only == nil || named) {
			names = append(names, name)
		}
	}
	stats := r.ledger.report(time.Now(), loads, names, only == nil)
	if len(stats) == 0 {
		return nil
	}
	if err := stream.Send(&loadstatsv3.LoadStatsRequest{ClusterStats: stats}); err != nil {
		return fmt.Errorf("sending a load report: %w", err)
	}
	return nil
}

// periodic is a ticker that may be unset (no channel) and reset.
type periodic struct{ t *time.Ticker }

func (p *periodic) reset(d time.Duration) {
	p.stop()
	if d > 0 {
		p.t = time.NewTicker(d)
	}
}

func (p *periodic) stop() {
	if p.t != nil {
		p.t.Stop()
		p.t = nil
	}
}

// c returns the ticks, nil (never ready) when unset.
func (p *periodic) c() <-chan time.Time {
	if p.t == nil {
		return nil
	}
	return p.t.C
}
