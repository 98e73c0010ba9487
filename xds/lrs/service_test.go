package lrs

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/xds"
)

var _ xds.Service = (*Server)(nil)

// TestServedNextToXDS: the xDS server serves LRS on its own port, and its
// shutdown ends the LRS streams at once rather than after its grace.
func TestServedNextToXDS(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := newFixture(Options{})
	xsrv := xds.NewServer(ctx, xds.ServerOptions{Services: []xds.Service{f.srv}, ShutdownGrace: 2 * waitFor})

	lis := testrun.Listen(t)
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- xsrv.Serve(serveCtx, lis) }()
	f.conn = testrun.Dial(t, lis.Addr().String())

	r := f.connect(t, envoyNode, cluster(hello, 1, 1))
	if got := f.srv.Collect(t0)[hello].Concurrency; got != 1 {
		t.Errorf("concurrency %v; want 1", got)
	}

	// Serve would wait its whole grace for a stream left open.
	stop()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Serve did not return: the LRS stream was not ended")
	}
	if err := waitEnd(r.stream); status.Code(err) != codes.Unavailable {
		t.Errorf("the stream ended with %v; want Unavailable", err)
	}
}
