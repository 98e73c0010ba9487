package scale

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kgate/kgate/dataplane/devgateway"
	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/pki"
	"github.com/kgate/kgate/translator"
)

// gatewayID is the node id prefix of the dev gateways; their certificate
// covers every id it starts.
const gatewayID = "scale-gateway-"

// The dev gateway, with its default xDS client, follows the whole fleet
// and routes every sampled host.
func TestDevGatewaySyncsTheFleet(t *testing.T) {
	cp := newControlPlane(t, fleetSize(t, testServices))
	want := cp.wants(t).gateway
	took := syncGateway(t, cp, want, gatewayID+"0")
	t.Logf("%d Services: fleet published in %v; the dev gateway ACKed all %d resources in %v",
		cp.n, cp.setup.Round(time.Millisecond), len(want), took)
	cp.checkQuiet(t)
}

// BenchmarkDevGatewaySync measures how long a new dev gateway takes from
// its start to the server's record of its ACK of every resource a gateway
// holds; each iteration starts a gateway, checks that the sampled hosts
// route, and stops it.
func BenchmarkDevGatewaySync(b *testing.B) {
	cp := newControlPlane(b, fleetSize(b, benchServices))
	want := cp.wants(b).gateway
	var stats syncStats
	for i := 0; b.Loop(); i++ {
		stats.add(b, syncGateway(b, cp, want, fmt.Sprint(gatewayID, i)))
	}
	stats.report(b, cp)
	b.ReportMetric(float64(len(want)), "resources")
	cp.checkQuiet(b)
}

// syncGateway runs a dev gateway as node id until the server has recorded
// its ACK of every one of want, checks that it routes the sampled hosts,
// stops it, and returns how long the sync took from its start.
func syncGateway(tb testing.TB, cp *controlPlane, want []ackWant, id string) syncTime {
	tb.Helper()
	logs := &testrun.Buffer{}
	conn := cp.dial(tb, pki.Identity{Role: pki.Gateway, ID: gatewayID + "*"})
	defer conn.Close()
	gw, err := devgateway.New(conn, devgateway.Options{
		Node:   xdsclient.Node{ID: id, Cluster: "kgate", UserAgent: "kgate-dev-gateway"},
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		// Both listeners on ephemeral loopback ports.
		ListenAddress: func(string, string) string { return "127.0.0.1:0" },
	})
	if err != nil {
		tb.Fatal(err)
	}
	start, startCPU := startSync()
	stop := testrun.Go(tb, context.Background(), "dev gateway "+id, waitFor, gw.Run)
	defer stop()
	cp.waitACKed(tb, id, want)
	took := since(start, startCPU)

	external, internal := gw.Addr(translator.ExternalListener), gw.Addr(translator.InternalListener)
	if external == "" || internal == "" {
		tb.Fatalf("%s ACKed its listeners but has them at %q and %q", id, external, internal)
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: waitFor}
	for _, s := range samples(cp.n) {
		// Each host on its listener reaches one of its revisions.
		for _, h := range []struct{ addr, host string }{{external, s.external}, {internal, s.local}} {
			status, body := get(tb, c, h.addr, h.host)
			rev, ok := strings.CutPrefix(body, podBody+s.ns+"/")
			if status != http.StatusOK || !ok || !slices.Contains(s.revisions[:], rev) {
				tb.Errorf("%s: GET http://%s/ on %s: %d %q, want 200 from a revision of %s/%s", id, h.host, h.addr, status, body, s.ns, s.name)
			}
		}
		// Not where the listener's scopes do not have it.
		if status, body := get(tb, c, internal, s.external); status != http.StatusNotFound {
			tb.Errorf("%s: the external host %s on the internal listener: %d %q, want 404", id, s.external, status, body)
		}
	}
	if status, body := get(tb, c, external, "no-such-service.ns-0.example.com"); status != http.StatusNotFound {
		tb.Errorf("%s: an unknown host: %d %q, want 404", id, status, body)
	}
	stop()
	if l := logs.String(); l != "" {
		tb.Errorf("%s logged:\n%s", id, l)
	}
	return took
}

// get sends GET / to addr with host as the Host header and returns the
// status and body.
func get(tb testing.TB, c *http.Client, addr, host string) (int, string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatalf("GET http://%s/ on %s: %v", host, addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("GET http://%s/ on %s: reading the body: %v", host, addr, err)
	}
	return resp.StatusCode, string(body)
}
