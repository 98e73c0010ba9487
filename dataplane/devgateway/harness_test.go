package devgateway_test

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kgate/kgate/dataplane/devgateway"
	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/xds"
)

// The tests run a real xDS server and engine on loopback, publish a model
// whose endpoints are real backends, and send HTTP through the dev gateway
// the server programs.

const (
	// waitFor bounds every wait for config to apply.
	waitFor = 10 * time.Second
	// nodeID is the gateway's node.
	nodeID = "devgateway-test"
	ns     = "default"
)

// env is a running control plane and dev gateway.
type env struct {
	t     *testing.T
	srv   *xds.Server
	eng   *xds.Engine
	gw    *devgateway.Gateway
	nacks *nackRecorder
}

type envOptions struct {
	translator translator.Options
	// lrsAddr, when set, is where the gateway reports load; otherwise it
	// does not.
	lrsAddr string
	// gateway, when set, changes the gateway's options.
	gateway func(*devgateway.Options)
}

func newEnv(t *testing.T, opts envOptions) *env {
	t.Helper()
	nacks := &nackRecorder{Handler: slog.NewTextHandler(t.Output(), nil), seen: new([]string), mu: new(sync.Mutex)}
	log := slog.New(nacks)
	ctx, cancel := context.WithCancel(context.Background())

	srv := xds.NewServer(ctx, xds.ServerOptions{Logger: log})
	eng, err := xds.NewEngine(srv, xds.EngineOptions{Translator: opts.translator})
	if err != nil {
		t.Fatal(err)
	}
	lis := testrun.Listen(t)

	gopts := devgateway.Options{
		Node:   xdsclient.Node{ID: nodeID, Cluster: "kgate"},
		Logger: log,
		// Every listener on an ephemeral loopback port.
		ListenAddress:        func(string, string) string { return "127.0.0.1:0" },
		DrainTimeout:         2 * time.Second,
		DisableLoadReporting: opts.lrsAddr == "",
		Backoff:              xdsclient.Backoff{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond},
	}
	if opts.lrsAddr != "" {
		gopts.LoadReportConn = testrun.Dial(t, opts.lrsAddr)
	}
	if opts.gateway != nil {
		opts.gateway(&gopts)
	}
	gw, err := devgateway.New(testrun.Dial(t, lis.Addr().String()), gopts)
	if err != nil {
		t.Fatal(err)
	}
	testrun.Go(t, ctx, "xDS Serve", waitFor, func(ctx context.Context) error { return srv.Serve(ctx, lis) })
	testrun.Go(t, ctx, "gateway Run", waitFor, gw.Run)
	t.Cleanup(cancel) // before Go's cleanups: the server's context ends with Serve's
	e := &env{t: t, srv: srv, eng: eng, gw: gw, nacks: nacks}
	e.addr(translator.ExternalListener)
	e.addr(translator.InternalListener)
	return e
}

// addr waits for the listener to be bound and returns its address.
func (e *env) addr(listener string) string {
	e.t.Helper()
	var addr string
	eventually(e.t, "listener "+listener+" bound", func() error {
		if addr = e.gw.Addr(listener); addr == "" {
			return fmt.Errorf("not bound")
		}
		return nil
	})
	return addr
}

// update replaces the model.
func (e *env) update(cfg model.Config) {
	e.t.Helper()
	if err := e.eng.Update(cfg); err != nil {
		e.t.Fatal(err)
	}
}

// eventually retries check until it passes or waitFor runs out.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	testrun.Poll{Within: waitFor, Every: 10 * time.Millisecond}.Eventually(t, what, check)
}

// response is what a request through the gateway got.
type response struct {
	status int
	body   string
	header http.Header
}

// client sends requests through the gateway; no keep-alive connection
// outlives a test.
func client(t *testing.T) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: waitFor}
}

// do sends method to http://addr/path with host as the Host header.
func do(c *http.Client, method, addr, host, path string, header http.Header) (response, error) {
	req, err := http.NewRequest(method, "http://"+addr+path, nil)
	if err != nil {
		return response{}, err
	}
	req.Host = host
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, body: string(body), header: resp.Header}, nil
}

// get is do for GET, failing the test on a transport error.
func get(t *testing.T, c *http.Client, addr, host, path string, header http.Header) response {
	t.Helper()
	r, err := do(c, http.MethodGet, addr, host, path, header)
	if err != nil {
		t.Fatalf("GET %s%s: %v", host, path, err)
	}
	return r
}

// awaitBody waits until GET host/path answers 200 with body want.
func awaitBody(t *testing.T, c *http.Client, addr, host, path, want string) {
	t.Helper()
	eventually(t, fmt.Sprintf("GET %s%s answers %q", host, path, want), func() error {
		r, err := do(c, http.MethodGet, addr, host, path, nil)
		if err != nil {
			return err
		}
		if r.status != http.StatusOK || r.body != want {
			return fmt.Errorf("got %d %q", r.status, r.body)
		}
		return nil
	})
}

// backend is an application server: it answers its name, and echoes the
// request headers as "Req-<name>" response headers, the protocol as
// "Req-Proto" and the Host as "Req-Host".
type backend struct {
	name     string
	endpoint model.Endpoint
	hits     atomic.Int64
}

func newBackend(t *testing.T, name string, handler http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{name: name}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		for k, vs := range r.Header {
			w.Header()["Req-"+k] = vs
		}
		w.Header().Set("Req-Proto", r.Proto)
		w.Header().Set("Req-Host", r.Host)
		if handler != nil {
			handler(w, r)
			return
		}
		fmt.Fprint(w, name)
	}))
	// h2c revisions need a server taking HTTP/2 with prior knowledge.
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	b.endpoint = endpointOf(srv.Listener.Addr())
	return b
}

func endpointOf(a net.Addr) model.Endpoint {
	tcp := a.(*net.TCPAddr)
	return model.Endpoint{Address: tcp.IP.String(), Port: uint32(tcp.Port)}
}

// Model builders.

func revKey(name string) string { return ns + "/" + name }

func revision(name string, p model.Protocol, timeout time.Duration) model.Revision {
	return model.Revision{Namespace: ns, Name: name, Protocol: p, Timeout: timeout}
}

func serving(rev string, pods ...*backend) model.RevisionEndpoints {
	ep := model.RevisionEndpoints{Revision: revKey(rev), Mode: model.Serve}
	for _, b := range pods {
		ep.Pods = append(ep.Pods, b.endpoint)
	}
	return ep
}

// split sends percent to rev with Knative's per-split headers.
func split(rev string, percent uint32) model.Split {
	return model.Split{Revision: revKey(rev), Percent: percent, SetHeaders: []model.Header{
		{Name: "Knative-Serving-Revision", Value: rev},
		{Name: "Knative-Serving-Namespace", Value: ns},
	}}
}

func prefixRoute(prefix string, timeout time.Duration, splits ...model.Split) model.Route {
	return model.Route{PathPrefix: prefix, Splits: splits, Timeout: timeout}
}

// service is a Knative Service with its external host and the usual
// cluster-local ones, all routed alike.
func service(name string, routes ...model.Route) model.Service {
	svc := model.Service{Namespace: ns, Name: name, Created: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)}
	svc.VirtualHosts = append(svc.VirtualHosts, model.VirtualHost{Host: externalHost(name), Visibility: model.External, Routes: routes})
	for _, h := range []string{name + "." + ns, name + "." + ns + ".svc", name + "." + ns + ".svc.cluster.local"} {
		svc.VirtualHosts = append(svc.VirtualHosts, model.VirtualHost{Host: h, Visibility: model.ClusterLocal, Routes: routes})
	}
	return svc
}

// app is a Service sending every request under prefix ("/" when empty) to
// its one revision, "<name>-00001", served by pods.
type app struct {
	name     string
	prefix   string
	protocol model.Protocol
	timeout  time.Duration
	pods     []model.Endpoint
}

// apps is the model of some apps.
func apps(as ...app) model.Config {
	var cfg model.Config
	for _, a := range as {
		rev := a.name + "-00001"
		cfg.Services = append(cfg.Services, service(a.name, prefixRoute(cmp.Or(a.prefix, "/"), a.timeout, split(rev, 100))))
		cfg.Revisions = append(cfg.Revisions, revision(rev, cmp.Or(a.protocol, model.HTTP1), a.timeout))
		cfg.Endpoints = append(cfg.Endpoints, model.RevisionEndpoints{Revision: revKey(rev), Mode: model.Serve, Pods: a.pods})
	}
	return cfg
}

func externalHost(name string) string { return name + "." + ns + ".example.com" }

// nackRecorder passes log records on and keeps those reporting a NACK,
// from the server ("xDS config rejected (NACK)") or the gateway
// ("rejecting xDS response (NACK)").
type nackRecorder struct {
	slog.Handler
	mu   *sync.Mutex
	seen *[]string
}

func (h *nackRecorder) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "NACK") {
		line := r.Message
		r.Attrs(func(a slog.Attr) bool {
			line += " " + a.String()
			return true
		})
		h.mu.Lock()
		*h.seen = append(*h.seen, line)
		h.mu.Unlock()
	}
	return h.Handler.Handle(ctx, r)
}

func (h *nackRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &nackRecorder{Handler: h.Handler.WithAttrs(as), mu: h.mu, seen: h.seen}
}

func (h *nackRecorder) WithGroup(name string) slog.Handler {
	return &nackRecorder{Handler: h.Handler.WithGroup(name), mu: h.mu, seen: h.seen}
}

// all returns the NACKs seen so far.
func (h *nackRecorder) all() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(*h.seen)
}

// expect checks a response's status and body.
func expect(r response, status int, body string) error {
	if r.status != status || r.body != body {
		return fmt.Errorf("got %d %q, want %d %q", r.status, r.body, status, body)
	}
	return nil
}
