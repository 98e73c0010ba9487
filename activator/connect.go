package activator

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/translator"
)

// XDSOptions configure how an activator follows the control plane.
type XDSOptions struct {
	// Node identifies the activator to the xDS and LRS servers.
	Node xdsclient.Node
	// Backoff paces reconnections to the control plane.
	Backoff xdsclient.Backoff
	// MaxRecvMsgSize bounds one xDS message; 0 means
	// xdsclient.DefaultMaxRecvMsgSize.
	MaxRecvMsgSize int
}

// Connected is an Activator that follows the control plane: it learns
// every revision from CDS (containerConcurrency, timeoutSeconds and
// protocol from the revision cluster) and its pods from EDS, and reports
// its demand per revision over LRS, every interval the server asks for
// and at once when a request waits for a revision without pods.
type Connected struct {
	*Activator
	ads *xdsclient.Client
	lrs *xdsclient.LoadReporter
}

// Connect returns a new Activator that follows the control plane behind
// conn once Run runs. opts.OnPoke, if set, is called after the immediate
// report.
func Connect(conn grpc.ClientConnInterface, opts Options, xopts XDSOptions) (*Connected, error) {
	c := &Connected{}
	onPoke := opts.OnPoke
	opts.OnPoke = func(revision string) {
		c.lrs.ReportNow(translator.PodsName(revision))
		if onPoke != nil {
			onPoke(revision)
		}
	}
	c.Activator = New(opts)
	var err error
	c.ads, err = xdsclient.New(conn, xdsclient.Options{
		Node: xopts.Node, Logger: c.log, Backoff: xopts.Backoff, MaxRecvMsgSize: xopts.MaxRecvMsgSize,
	})
	if err != nil {
		return nil, err
	}
	c.lrs, err = xdsclient.NewLoadReporter(conn, xdsclient.LoadReportOptions{
		Node: xopts.Node, Load: c.loads, Logger: c.log, Backoff: xopts.Backoff,
	})
	if err != nil {
		return nil, err
	}
	newFeed(c.ads, c.Activator, c.log)
	return c, nil
}

// Ready says why the activator should take no new requests, nil when it
// may: a readiness probe answers 503 with the error. It is not nil until
// the activator has its revisions from the control plane (a first CDS
// response), nor while it cannot receive what the control plane sends (see
// xdsclient.Client.Err): a request routed to it then would wait for a
// revision it never learns of, or get 404. A control plane that restarts
// or is out of reach leaves it ready with what it has: every activator
// going unready at once would refuse every request in proxy mode.
func (c *Connected) Ready() error {
	if err := c.ads.Err(); err != nil {
		return fmt.Errorf("activator not following the control plane: %w", err)
	}
	return nil
}

// Run follows the control plane until ctx ends, reconnecting after
// failures, and returns nil then. Keep it running while the activator
// drains: held requests still need the pods EDS brings.
func (c *Connected) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return c.ads.Run(ctx) })
	g.Go(func() error { return c.lrs.Run(ctx) })
	return g.Wait()
}
