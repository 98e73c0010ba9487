package coldstart

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/kgate/kgate/activator"
	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/autoscale"
	"github.com/kgate/kgate/autoscale/loop"
	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/deploy/inprocess"
	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/xds"
	"github.com/kgate/kgate/xds/lrs"
)

const (
	namespace = "default"
	name      = "hello-00001"
	rev       = namespace + "/" + name
	// podStart is how long the in-process pod takes to become ready.
	podStart = 100 * time.Millisecond
	// pokeBound is what a cold request may take: well under one autoscaler
	// tick (2 s), so only the poke can have scaled the revision.
	pokeBound = time.Second + podStart
	// stopWithin bounds the wait for a component to return once the test
	// ends.
	stopWithin = 30 * time.Second
)

// A request for a revision at zero is held by the activator and answered
// by a pod started for it, without waiting for an autoscaler tick.
func TestColdRequestIsHeldAndAnswered(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)

	// Control plane: xDS and LRS on one port, and the autoscaler loop.
	var l *loop.Loop
	lrsSrv := lrs.New(lrs.Options{Logger: log, OnDemand: func(r string) { l.Demand(r) }})
	srv := xds.NewServer(ctx, xds.ServerOptions{Logger: log, Services: []xds.Service{lrsSrv}})
	eng, err := xds.NewEngine(srv, xds.EngineOptions{Translator: translator.Options{LoadReporting: true}})
	if err != nil {
		t.Fatal(err)
	}
	xdsLis := testrun.Listen(t)
	testrun.Go(t, ctx, "xDS server", stopWithin, func(ctx context.Context) error { return srv.Serve(ctx, xdsLis) })

	// The activator, following the control plane.
	act, err := activator.Connect(testrun.Dial(t, xdsLis.Addr().String()), activator.Options{Logger: log}, activator.XDSOptions{
		Node: xdsclient.Node{ID: "activator-1", Cluster: "kgate", UserAgent: "kgate-activator"},
	})
	if err != nil {
		t.Fatal(err)
	}
	testrun.Go(t, ctx, "activator", stopWithin, act.Run)
	actLis := testrun.Listen(t)
	actSrv := activator.NewServer("", act)
	go actSrv.Serve(actLis)
	t.Cleanup(func() { actSrv.Close() })
	actAddr := actLis.Addr().(*net.TCPAddr)

	// Pods, and the loop that scales them.
	dep, err := inprocess.New(inprocess.Options{
		Handler: func(string) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "Hello World!") })
		},
		StartDelay: podStart,
		OnChange:   func(r string) { l.EndpointsChanged(r) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dep.Close)
	l, err = loop.New(loop.Options{
		Deployer: dep, Endpoints: eng, Metrics: lrsSrv, Logger: log,
		Activators: []model.Endpoint{{Address: actAddr.IP.String(), Port: uint32(actAddr.Port)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	testrun.Go(t, ctx, "autoscaler loop", stopWithin, l.Run)

	// The revision, created at zero.
	if err := eng.SetRevision(model.Revision{Namespace: namespace, Name: name, Protocol: model.HTTP1, Timeout: 300 * time.Second}); err != nil {
		t.Fatal(err)
	}
	cfg := config.DefaultAutoscaler()
	cfg.AllowZeroInitialScale = true
	if errs := l.Configure(ctx, time.Now(), cfg, []loop.Revision{{Key: rev, Spec: autoscale.RevisionSpec{
		Annotations: map[string]string{"autoscaling.knative.dev/initial-scale": "0"},
	}}}); len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := dep.Replicas(rev); got != 0 {
		t.Fatalf("created with %d replicas, want 0", got)
	}

	// The cold request. Until the activator has heard of the revision it
	// answers 404 at once; from then on a request is held.
	url := fmt.Sprintf("http://%s/", actLis.Addr())
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set(activator.NamespaceHeader, namespace)
		req.Header.Set(activator.RevisionHeader, name)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if resp.StatusCode == http.StatusNotFound && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if resp.StatusCode != http.StatusOK || string(body) != "Hello World!" {
			t.Fatalf("cold request: %d %q, want 200 %q", resp.StatusCode, body, "Hello World!")
		}
		t.Logf("cold request answered in %v (pod start %v)", took, podStart)
		if took > pokeBound {
			t.Errorf("cold request took %v, want under %v: the poke did not scale the revision", took, pokeBound)
		}
		break
	}
	if got := dep.Replicas(rev); got != 1 {
		t.Errorf("after the cold request: %d replicas, want 1", got)
	}
}
