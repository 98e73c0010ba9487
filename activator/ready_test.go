package activator

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/xds"
)

// An activator is ready once it has its revisions, and not while it cannot
// receive what the control plane sends.
func TestReadyFollowsTheXDSClient(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int
		// want is what Ready's error says once the activator tried, ""
		// for none.
		want string
	}{
		{"default limit", 0, ""},
		{"a limit below one cluster's response", 256, codes.ResourceExhausted.String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			srv := xds.NewServer(ctx, xds.ServerOptions{})
			eng, err := xds.NewEngine(srv, xds.EngineOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := eng.SetRevision(testRevisionWith(1, "")); err != nil {
				t.Fatal(err)
			}
			lis := testrun.Listen(t)
			testrun.Go(t, ctx, "Serve", 10*time.Second, func(ctx context.Context) error { return srv.Serve(ctx, lis) })
			t.Cleanup(cancel)

			c, err := Connect(testrun.Dial(t, lis.Addr().String()), Options{}, XDSOptions{
				Node:           xdsclient.Node{ID: "ready-test"},
				Backoff:        xdsclient.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond},
				MaxRecvMsgSize: tc.limit,
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Ready(); err == nil {
				t.Error("ready before following the control plane")
			}
			testrun.Go(t, context.Background(), "Run", 10*time.Second, c.Run)
			if tc.want == "" {
				waitFor(t, "the activator to be ready", func() bool { return c.Ready() == nil })
				return
			}
			waitFor(t, "Ready to say "+tc.want, func() bool {
				err := c.Ready()
				return err != nil && strings.Contains(err.Error(), tc.want)
			})
			if code := status.Code(c.Ready()); code != codes.ResourceExhausted {
				t.Errorf("Ready() = %v, code %s: want ResourceExhausted", c.Ready(), code)
			}
		})
	}
}
