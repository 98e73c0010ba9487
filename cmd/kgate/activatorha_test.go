package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/kgate/kgate/activator"
	"github.com/kgate/kgate/dataplane/devgateway"
	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/internal/promtest"
	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/pki"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/xds"
)

// TestActivatorFailoverLosesNoRequest is Knative's activator HA test: two
// activators in the path of a revision (proxy mode), 400 requests through
// the gateway, and one activator taken away in the middle as Kubernetes
// does when its pod is deleted: its endpoint leaves the activators' list
// (EDS) and it gets SIGTERM, serving on, not ready, for its drain delay,
// then draining what it holds. No request fails, and both activators
// served some.
func TestActivatorFailoverLosesNoRequest(t *testing.T) {
	// The requests span about 2 s, the removed activator's drain delay and
	// drain included.
	const requests, workers, killAt = 400, 4, 100
	backend := testrun.Listen(t)
	pod := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		_, _ = io.WriteString(w, "hello")
	})}
	go func() { _ = pod.Serve(backend) }()
	t.Cleanup(func() { pod.Close() })
	podAddr := backend.Addr().(*net.TCPAddr)

	trust, err := newLocalPKI()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := xds.NewServer(ctx, xds.ServerOptions{TLS: trust.serverTLS()})
	eng, err := xds.NewEngine(srv, xds.EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	xdsLis := testrun.Listen(t)
	testrun.Go(t, ctx, "xDS Serve", 10*time.Second, func(ctx context.Context) error { return srv.Serve(ctx, xdsLis) })

	// Two activators on ports chosen first, as their Service's endpoints.
	var acts [2]model.Endpoint
	var stops [2]context.CancelFunc
	var exits [2]<-chan error
	for i := range acts {
		lis := testrun.Listen(t)
		a := lis.Addr().(*net.TCPAddr)
		lis.Close()
		acts[i] = model.Endpoint{Address: a.IP.String(), Port: uint32(a.Port)}
		id := "activator-ha-" + strconv.Itoa(i)
		dir := t.TempDir()
		if err := trust.writeBundle(pki.Identity{Role: pki.Activator, ID: id}, dir); err != nil {
			t.Fatal(err)
		}
		actCtx, stop := context.WithCancel(ctx)
		stops[i] = stop
		_, exits[i], _ = startActivatorAs(t, actCtx, "--listen", a.String(), "--node-id", id,
			"--drain-delay", "500ms", "--xds-address", xdsLis.Addr().String(), "--xds-tls-dir", dir)
	}
	rev := model.Revision{Namespace: "default", Name: "hello-00001", Protocol: model.HTTP1, Timeout: 30 * time.Second}
	config := func(activators ...model.Endpoint) model.Config {
		return model.Config{
			Services: []model.Service{{Namespace: "default", Name: "hello", VirtualHosts: []model.VirtualHost{{
				Host: "hello.default.example.com", Visibility: model.External,
				Routes: []model.Route{{PathPrefix: "/", Splits: []model.Split{{Revision: rev.Key(), Percent: 100, SetHeaders: []model.Header{
					{Name: activator.NamespaceHeader, Value: rev.Namespace}, {Name: activator.RevisionHeader, Value: rev.Name}}}}}},
			}}}},
			Revisions: []model.Revision{rev},
			Endpoints: []model.RevisionEndpoints{{Revision: rev.Key(), Mode: model.Proxy, Activators: activators,
				Pods: []model.Endpoint{{Address: podAddr.IP.String(), Port: uint32(podAddr.Port)}}}},
		}
	}
	if err := eng.Update(config(acts[0], acts[1])); err != nil {
		t.Fatal(err)
	}

	conn, err := grpc.NewClient(xdsLis.Addr().String(), grpc.WithTransportCredentials(trust.client(pki.Identity{Role: pki.Gateway, ID: "gateway-ha"})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	gw, err := devgateway.New(conn, devgateway.Options{
		Node:          xdsclient.Node{ID: "gateway-ha", Cluster: "kgate-gateway"},
		ListenAddress: func(string, string) string { return "127.0.0.1:0" },
		DrainTimeout:  time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	testrun.Go(t, ctx, "dev gateway", 10*time.Second, gw.Run)
	var url string
	testrun.Poll{Within: 10 * time.Second, Every: 20 * time.Millisecond}.Eventually(t, "the gateway serves the revision through the activators", func() error {
		url = "http://" + gw.Addr(translator.ExternalListener) + "/"
		status, err := getHost(url)
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("%d %v", status, err)
		}
		return nil
	})

	var failures []string
	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	killed := make(chan struct{})
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > requests {
					return
				}
				if i == killAt {
					// Both activators are in the path by now.
					for j, act := range acts {
						if n := proxied(t, act); n == 0 {
							t.Errorf("activator %d proxied no request of the first %d", j, killAt)
						}
					}
					// The pod is deleted: out of the endpoints, SIGTERM.
					if err := eng.Update(config(acts[1])); err != nil {
						t.Error(err)
					}
					stops[0]()
					close(killed)
				}
				status, err := getHost(url)
				if err != nil || status != http.StatusOK {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("request %d: %d %v", i, status, err))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	<-killed
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed across the activator's removal:\n%v", len(failures), requests, failures)
	}
	select {
	case err := <-exits[0]:
		if err != nil {
			t.Errorf("the removed activator exited with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the removed activator did not exit after draining")
	}
}

// proxied is how many requests the activator at ep has proxied, from its
// activator_request_count series.
func proxied(t *testing.T, ep model.Endpoint) float64 {
	fams, err := promtest.ScrapeErr("http://" + net.JoinHostPort(ep.Address, strconv.Itoa(int(ep.Port))) + metricsPath)
	if err != nil {
		t.Errorf("scraping the activator at %s:%d: %v", ep.Address, ep.Port, err)
		return 0
	}
	var n float64
	for _, m := range fams.Find("activator_request_count", nil) {
		n += m.GetCounter().GetValue()
	}
	return n
}

// getHost sends GET to the gateway for the revision's host.
func getHost(url string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Host = "hello.default.example.com"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// startActivatorAs runs `kgate activator` in-process with args until ctx
// ends and returns the address it serves on and its exit.
func startActivatorAs(t *testing.T, ctx context.Context, args ...string) (string, <-chan error, *addressLog) {
	t.Helper()
	logs := &addressLog{found: make(chan string, 1)}
	cmd := newRootCommand()
	cmd.SetOut(io.Discard)
	cmd.SetErr(logs)
	cmd.SetArgs(append([]string{"activator"}, args...))
	exited := make(chan error, 1)
	go func() { exited <- cmd.ExecuteContext(ctx) }()
	select {
	case addr := <-logs.found:
		return addr, exited, logs
	case err := <-exited:
		t.Fatalf("kgate activator exited at once: %v\n%s", err, logs)
	case <-time.After(10 * time.Second):
		t.Fatalf("kgate activator did not start serving\n%s", logs)
	}
	return "", nil, nil
}
