package scale

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/kgate/kgate/activator"
	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/pki"
)

// activatorID is the node id prefix of the activators; their certificate
// covers every id it starts.
const activatorID = "scale-activator-"

// The activator, with its default xDS options, learns every revision of
// the fleet and its pod, and proxies the sampled revisions' requests.
func TestActivatorSyncsTheFleet(t *testing.T) {
	cp := newControlPlane(t, fleetSize(t, testServices))
	took := syncActivator(t, cp, cp.act, activatorID+"0")
	t.Logf("%d Services: fleet published in %v; the activator knew all %d revisions and their pods in %v",
		cp.n, cp.setup.Round(time.Millisecond), 2*cp.n, took)
	cp.checkQuiet(t)
}

// BenchmarkActivatorSync measures how long a new activator takes from its
// start to the server's record of its ACK of every cluster and every
// revision's pods; each iteration starts an
// activator, checks Ready and the sampled revisions, and stops it.
func BenchmarkActivatorSync(b *testing.B) {
	cp := newControlPlane(b, fleetSize(b, benchServices))
	var stats syncStats
	for i := 0; b.Loop(); i++ {
		// The fleet names cp.act; later activators serve elsewhere, which
		// the checks do not mind: they send to the activator directly.
		lis := cp.act
		if i > 0 {
			lis = testrun.Listen(b)
		}
		stats.add(b, syncActivator(b, cp, lis, fmt.Sprint(activatorID, i)))
	}
	stats.report(b, cp)
	b.ReportMetric(float64(2*cp.n), "revisions")
	cp.checkQuiet(b)
}

// syncActivator runs an activator as node id, serving on lis, until the
// server has recorded its ACK of every cluster and every revision's pods;
// checks that it knows them, is ready and proxies the sampled revisions'
// requests to the pod; stops it, and returns how long the sync took from
// its start.
func syncActivator(tb testing.TB, cp *controlPlane, lis net.Listener, id string) syncTime {
	tb.Helper()
	logs := &testrun.Buffer{}
	conn := cp.dial(tb, pki.Identity{Role: pki.Activator, ID: activatorID + "*"})
	defer conn.Close()
	act, err := activator.Connect(conn,
		activator.Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))},
		activator.XDSOptions{Node: xdsclient.Node{ID: id, Cluster: "kgate", UserAgent: "kgate-activator"}})
	if err != nil {
		tb.Fatal(err)
	}
	if act.Ready() == nil {
		tb.Fatalf("%s is ready before it has revisions", id)
	}
	want := cp.wants(tb).activator
	start, startCPU := startSync()
	stop := testrun.Go(tb, context.Background(), "activator "+id, waitFor, act.Run)
	defer stop()
	cp.waitACKed(tb, id, want)
	took := since(start, startCPU)
	// ACKed means applied: it knows them all.
	known := 0
	for _, s := range act.Stats() {
		if s.Pods == 1 {
			known++
		}
	}
	if known != 2*cp.n {
		tb.Errorf("%s ACKed every cluster and load assignment but knows %d revisions with their pod, want %d", id, known, 2*cp.n)
	}
	if err := act.Ready(); err != nil {
		tb.Errorf("%s knows every revision but is not ready: %v", id, err)
	}

	srv := activator.NewServer("", act)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: waitFor}
	for _, s := range samples(cp.n) {
		for _, rev := range s.revisions {
			req, err := http.NewRequest(http.MethodGet, "http://"+lis.Addr().String()+"/", nil)
			if err != nil {
				tb.Fatal(err)
			}
			req.Host = s.external
			req.Header.Set(activator.NamespaceHeader, s.ns)
			req.Header.Set(activator.RevisionHeader, rev)
			resp, err := c.Do(req)
			if err != nil {
				tb.Fatalf("%s: a request for %s/%s: %v", id, s.ns, rev, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				tb.Errorf("%s: a request for %s/%s: %d, want 200 from the pod", id, s.ns, rev, resp.StatusCode)
			}
			if got := act.Stats()[s.ns+"/"+rev]; got.Completed != 1 || got.Errors != 0 {
				tb.Errorf("%s: revision %s/%s counts %+v, want the one request completed", id, s.ns, rev, got)
			}
		}
	}
	if err := srv.Close(); err != nil {
		tb.Errorf("closing %s's server: %v", id, err)
	}
	if err := <-served; err != nil && err != http.ErrServerClosed {
		tb.Errorf("%s's server: %v", id, err)
	}
	stop()
	if l := logs.String(); l != "" {
		tb.Errorf("%s logged:\n%s", id, l)
	}
	return took
}
