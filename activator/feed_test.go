package activator

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	loadstatsv3 "github.com/envoyproxy/go-control-plane/envoy/service/load_stats/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/dataplane/xdsclient/lrstest"
	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/xds"
)

// The tests here run the activator against a real xDS server and engine
// on loopback, with a fake LRS service beside them, and drive it only
// through the engine, as the control plane does.

// controlPlane is an xDS server and engine with a fake LRS service on one
// gRPC server, and a Connected activator following it.
type controlPlane struct {
	eng *xds.Engine
	lrs *lrstest.Server
	h   *harness
}

// followControlPlane starts the control plane, publishes rev, and starts a
// Connected activator served on loopback. The LRS service asks for every
// cluster every hour: any report a test sees sooner is an immediate one.
func followControlPlane(t *testing.T, rev model.Revision) *controlPlane {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := xds.NewServer(ctx, xds.ServerOptions{})
	eng, err := xds.NewEngine(srv, xds.EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lrs := lrstest.NewServer(&loadstatsv3.LoadStatsResponse{SendAllClusters: true, LoadReportingInterval: durationpb.New(time.Hour)})
	g := grpc.NewServer()
	srv.Register(g)
	lrs.Register(g)
	lis := testrun.Listen(t)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(func() {
		cancel()
		g.Stop()
	})

	conn := testrun.Dial(t, lis.Addr().String())
	c, err := Connect(conn, Options{}, XDSOptions{Node: xdsclient.Node{ID: "activator-test"}})
	if err != nil {
		t.Fatal(err)
	}
	testrun.Go(t, context.Background(), "Run", 10*time.Second, c.Run)

	cp := &controlPlane{eng: eng, lrs: lrs, h: serve(t, c.Activator)}
	cp.must(t, eng.SetRevision(rev))
	return cp
}

func (cp *controlPlane) must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// setPods publishes the revision's pods, and waits for the activator to
// have them.
func (cp *controlPlane) setPods(t *testing.T, pods ...model.Endpoint) {
	t.Helper()
	cp.must(t, cp.eng.SetEndpoints(model.RevisionEndpoints{Revision: testKey, Mode: model.Proxy, Pods: pods}))
	waitFor(t, "the activator to learn the pods", func() bool {
		s, ok := cp.h.act.Stats()[testKey]
		return ok && s.Pods == len(pods)
	})
}

// testRevisionWith is the test revision as the model has it.
func testRevisionWith(cc int64, p model.Protocol) model.Revision {
	return model.Revision{Namespace: testNamespace, Name: testRevision, Protocol: p, Timeout: 30 * time.Second, ContainerConcurrency: cc}
}

func TestFollowsTheControlPlaneToThePods(t *testing.T) {
	cp := followControlPlane(t, testRevisionWith(0, model.H2C))
	pod := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello over "+r.Proto)
	})
	cp.setPods(t, startBackend(t, model.H2C, pod))
	// The protocol came from the cluster's upstream HTTP options.
	expect(t, cp.h.get(t, "/"), http.StatusOK, "hello over HTTP/2.0")
}

func TestHeldAtZeroPodsUntilTheEngineHasOne(t *testing.T) {
	cp := followControlPlane(t, testRevisionWith(0, model.HTTP1))
	cp.setPods(t)

	reply := cp.h.getAsync(t, "/")
	// The poke reports the waiting request at once, not within the hour.
	cp.lrs.Await(t, "the waiting request", func(r lrstest.Request) bool {
		cs := r.Cluster(translator.PodsName(testKey))
		return cs != nil && cs.GetUpstreamLocalityStats()[0].GetTotalRequestsInProgress() == 1
	})
	cp.must(t, cp.eng.SetEndpoints(model.RevisionEndpoints{Revision: testKey, Mode: model.Proxy,
		Pods: []model.Endpoint{startBackend(t, model.HTTP1, text("woken"))}}))
	select {
	case got := <-reply:
		expect(t, got, http.StatusOK, "woken")
	case <-time.After(10 * time.Second):
		t.Fatal("the held request was not answered once the pod was published")
	}
}

func TestEnforcesContainerConcurrencyFromCDS(t *testing.T) {
	cp := followControlPlane(t, testRevisionWith(1, model.HTTP1))
	g := newGate()
	cp.setPods(t, startBackend(t, model.HTTP1, g))

	first := cp.h.getAsync(t, "/")
	g.await(t, 1)
	second := cp.h.getAsync(t, "/")
	waitFor(t, "the second request to wait", func() bool { return cp.h.stats().Waiting == 1 })
	select {
	case <-g.arrived:
		t.Fatal("a second request reached the pod: containerConcurrency 1 not enforced")
	case <-time.After(50 * time.Millisecond):
	}
	close(g.open)
	expect(t, <-first, http.StatusOK, "released")
	expect(t, <-second, http.StatusOK, "released")
}

func TestDeletedRevisionIsUnknown(t *testing.T) {
	cp := followControlPlane(t, testRevisionWith(0, model.HTTP1))
	cp.setPods(t, startBackend(t, model.HTTP1, text("here")))
	expect(t, cp.h.get(t, "/"), http.StatusOK, "here")

	cp.must(t, cp.eng.DeleteRevision(testKey))
	cp.must(t, cp.eng.DeleteEndpoints(testKey))
	waitFor(t, "the activator to forget the revision", func() bool {
		_, ok := cp.h.act.Stats()[testKey]
		return !ok
	})
	expect(t, cp.h.get(t, "/"), http.StatusNotFound, "unknown revision")
}

// A CDS update with one bad revision cluster changes nothing, so that the
// NACK leaves the activator as the last accepted update left it.
func TestFeedRejectsAnUpdateWhole(t *testing.T) {
	client, err := xdsclient.New(testrun.Dial(t, "127.0.0.1:1"), xdsclient.Options{Node: xdsclient.Node{ID: "feed-test"}})
	if err != nil {
		t.Fatal(err)
	}
	a := New(Options{})
	f := newFeed(client, a, slog.New(slog.DiscardHandler))

	cluster := func(name string) xdsclient.Resource {
		c := translator.Revision(model.Revision{Namespace: "ns", Name: name, Protocol: model.HTTP1}, translator.Options{}).Clusters[0]
		return xdsclient.Resource{Name: c.GetName(), Message: c}
	}
	good, bad := cluster("good"), cluster("bad")
	bad.Message.(*clusterv3.Cluster).GetMetadata().GetFilterMetadata()[translator.MetadataNamespace].GetFields()["revision"] = structpb.NewStringValue("bad")
	if err := f.onClusters(xdsclient.Update{Resources: []xdsclient.Resource{good, bad}}); err == nil || !strings.Contains(err.Error(), "cluster ns/bad: ") {
		t.Fatalf("error %v, want one naming ns/bad", err)
	}
	if stats := a.Stats(); len(stats) != 0 {
		t.Fatalf("a rejected update applied %v", stats)
	}

	if err := f.onClusters(xdsclient.Update{Resources: []xdsclient.Resource{good}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Stats()["ns/good"]; !ok || f.pods["ns/good/pods"] != "ns/good" {
		t.Fatalf("revision ns/good not set or its pods not subscribed: %v", a.Stats())
	}
	if err := f.onClusters(xdsclient.Update{Removed: []string{"ns/good"}}); err != nil {
		t.Fatal(err)
	}
	if len(a.Stats()) != 0 || len(f.pods) != 0 {
		t.Fatalf("revision ns/good not forgotten: %v", a.Stats())
	}
}
