package xdsclient_test

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/xds"
)

// twoRevisions is the model most tests start from: revisions a and b, each
// with one pod.
func twoRevisions() model.Config {
	return model.Config{
		Revisions: []model.Revision{revision("a", 0), revision("b", 0)},
		Endpoints: []model.RevisionEndpoints{endpoints("a", 8001), endpoints("b", 8002)},
	}
}

// watcher is a Client watching CDS (wildcard) and EDS (named) on a server.
type watcher struct {
	client   *xdsclient.Client
	clusters *recorder
	eds      *recorder
	edsWatch *xdsclient.Watch
}

func newWatcher(t *testing.T, addr string, edsNames ...string) *watcher {
	t.Helper()
	c, err := xdsclient.New(dial(t, addr), xdsclient.Options{
		Node:    xdsclient.Node{ID: "test-" + t.Name(), Cluster: "kgate"},
		Backoff: fastBackoff,
	})
	if err != nil {
		t.Fatal(err)
	}
	w := &watcher{client: c, clusters: newRecorder(), eds: newRecorder()}
	c.Watch(resource.ClusterType, w.clusters.handle, xdsclient.Wildcard)
	w.edsWatch = c.Watch(resource.EndpointType, w.eds.handle, edsNames...)
	run(t, c.Run)
	return w
}

func TestWildcardClustersAndNamedEndpoints(t *testing.T) {
	srv := startXDS(t, twoRevisions())
	w := newWatcher(t, srv.addr, "default/a/pods")

	u := w.clusters.next(t)
	expectUpdate(t, u, []string{"default/a", "default/b"}, nil)
	if c, ok := u.Resources[0].Message.(*clusterv3.Cluster); !ok || c.GetName() != "default/a" {
		t.Fatalf("resource decoded as %T named %q, want *clusterv3.Cluster default/a", u.Resources[0].Message, c.GetName())
	}
	// The server records the client's ACK of exactly what it sent.
	waitUntil(t, "the server to record the client's CDS ACK", func() bool {
		acks := srv.srv.Acked(resource.ClusterType, "default/b")
		return len(acks) == 1 && acks[0].Version == u.Resources[1].Version && acks[0].Kind == xds.Gateway
	})

	u = w.eds.next(t)
	expectUpdate(t, u, []string{"default/a/pods"}, nil)
	cla := u.Resources[0].Message.(*endpointv3.ClusterLoadAssignment)
	if port := cla.GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress().GetPortValue(); port != 8001 {
		t.Errorf("pod port %d, want 8001", port)
	}
}

func TestAChangePushesOnlyIt(t *testing.T) {
	srv := startXDS(t, twoRevisions())
	w := newWatcher(t, srv.addr, "default/a/pods", "default/b/pods")
	w.clusters.next(t)
	w.eds.next(t)

	srv.must(srv.eng.SetEndpoints(endpoints("b", 8002, 8003)))
	expectUpdate(t, w.eds.next(t), []string{"default/b/pods"}, nil)
	w.clusters.none(t)

	srv.must(srv.eng.SetRevision(revision("a", 4)))
	expectUpdate(t, w.clusters.next(t), []string{"default/a"}, nil)

	srv.must(srv.eng.DeleteRevision("default/b"))
	srv.must(srv.eng.DeleteEndpoints("default/b"))
	expectUpdate(t, w.eds.next(t), nil, []string{"default/b/pods"})
	expectUpdate(t, w.clusters.next(t), nil, []string{"default/b"})
}

func TestSubscribeAndUnsubscribe(t *testing.T) {
	srv := startXDS(t, twoRevisions())
	w := newWatcher(t, srv.addr)
	w.clusters.next(t)
	w.eds.none(t) // nothing subscribed: not even a legacy wildcard

	w.edsWatch.Subscribe("default/a/pods", "default/b/pods")
	expectUpdate(t, w.eds.next(t), []string{"default/a/pods", "default/b/pods"}, nil)

	w.edsWatch.Unsubscribe("default/a/pods")
	// Unsubscribing tells the handler nothing: it asked.
	w.eds.none(t)
	srv.must(srv.eng.SetEndpoints(endpoints("a", 8009)))
	w.eds.none(t)
	srv.must(srv.eng.SetEndpoints(endpoints("b", 8009)))
	expectUpdate(t, w.eds.next(t), []string{"default/b/pods"}, nil)

	// Subscribing again gets the resource anew.
	w.edsWatch.Subscribe("default/a/pods")
	expectUpdate(t, w.eds.next(t), []string{"default/a/pods"}, nil)
}

func TestHandlerErrorIsANACK(t *testing.T) {
	srv := startXDS(t, twoRevisions())
	rec := newRecorder()
	rec.reject = func(u xdsclient.Update) error {
		for _, r := range u.Resources {
			if containerConcurrency(r.Message.(*clusterv3.Cluster)) == 7 {
				return fmt.Errorf("cluster %s: containerConcurrency 7 is unlucky", r.Name)
			}
		}
		return nil
	}
	c, err := xdsclient.New(dial(t, srv.addr), xdsclient.Options{Node: xdsclient.Node{ID: "nacker"}, Backoff: fastBackoff})
	if err != nil {
		t.Fatal(err)
	}
	c.Watch(resource.ClusterType, rec.handle, xdsclient.Wildcard)
	run(t, c.Run)
	expectUpdate(t, rec.next(t), []string{"default/a", "default/b"}, nil)

	srv.must(srv.eng.SetRevision(revision("b", 7)))
	srv.logs.await(t, "NACK", `"node":"nacker"`, "cluster default/b: containerConcurrency 7 is unlucky")
	rec.none(t)

	// The client carries on from the state it accepted: the next change is
	// accepted.
	srv.must(srv.eng.SetRevision(revision("b", 8)))
	expectUpdate(t, rec.next(t), []string{"default/b"}, nil)
}

func TestReconnectResubscribesWithTheVersionsHeld(t *testing.T) {
	srv := startXDS(t, twoRevisions())
	w := newWatcher(t, srv.addr, "default/a/pods", "default/b/pods")
	expectUpdate(t, w.clusters.next(t), []string{"default/a", "default/b"}, nil)
	expectUpdate(t, w.eds.next(t), []string{"default/a/pods", "default/b/pods"}, nil)

	// While the control plane restarts, b goes, c comes and a's pods
	// move; a's cluster is the same and must not be sent again.
	srv.restart(model.Config{
		Revisions: []model.Revision{revision("a", 0), revision("c", 0)},
		Endpoints: []model.RevisionEndpoints{endpoints("a", 8011), endpoints("c", 8003)},
	})
	expectUpdate(t, w.clusters.next(t), []string{"default/c"}, []string{"default/b"})
	expectUpdate(t, w.eds.next(t), []string{"default/a/pods"}, []string{"default/b/pods"})

	// The new stream carries on as the old one did.
	w.edsWatch.Subscribe("default/c/pods")
	expectUpdate(t, w.eds.next(t), []string{"default/c/pods"}, nil)
}

func TestNodeIsChecked(t *testing.T) {
	conn := dial(t, "127.0.0.1:1")
	for _, node := range []xdsclient.Node{
		{},
		{ID: "x", UserAgent: "gRPC Go"},
	} {
		if _, err := xdsclient.New(conn, xdsclient.Options{Node: node}); err == nil {
			t.Errorf("New with node %+v: no error", node)
		}
		if _, err := xdsclient.NewLoadReporter(conn, xdsclient.LoadReportOptions{Node: node, Load: noLoad}); err == nil {
			t.Errorf("NewLoadReporter with node %+v: no error", node)
		}
	}
}

// containerConcurrency reads what the translator put in a revision
// cluster's metadata.
func containerConcurrency(c *clusterv3.Cluster) float64 {
	md := c.GetMetadata().GetFilterMetadata()[translator.MetadataNamespace]
	return md.GetFields()["containerConcurrency"].GetNumberValue()
}

func noLoad() map[string]xdsclient.Load { return nil }

// Once Run returns, nothing the client or the reporter started is left.
func TestRunLeavesNoGoroutine(t *testing.T) {
	srv := startXDS(t, twoRevisions())
	conn := dial(t, srv.addr)
	node := xdsclient.Node{ID: "leak-test"}
	c, err := xdsclient.New(conn, xdsclient.Options{Node: node})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	c.Watch(resource.ClusterType, rec.handle, xdsclient.Wildcard)
	r, err := xdsclient.NewLoadReporter(conn, xdsclient.LoadReportOptions{Node: node, Load: noLoad})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{c.Run, r.Run} {
		wg.Go(func() {
			if err := run(ctx); err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	rec.next(t)
	cancel()
	wg.Wait()
	if err := c.Run(context.Background()); err == nil {
		t.Error("a second Run: no error")
	}

	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	// The package path, not a literal: a check naming a moved package
	// would never fail.
	if pkg := reflect.TypeFor[xdsclient.Client]().PkgPath() + "."; strings.Contains(stacks, pkg) {
		t.Fatalf("goroutines of the client are left after Run returned:\n%s", stacks)
	}
}
