package devgateway

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	proxyprotocolv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/proxy_protocol/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/internal/testrun"
)

// These tests drive the xDS handlers directly with hand-built Envoy
// resources: listener moves and removals, and config the gateway must
// refuse.

// newTestGateway returns a gateway whose handlers the test calls; Run is
// never called, so no stream opens. Listeners configured on 127.0.0.1
// bind there, any other on an ephemeral loopback port.
func newTestGateway(t *testing.T) *Gateway { return newTestGatewayWith(t, nil) }

// newTestGatewayWith is newTestGateway with options edit changes.
func newTestGatewayWith(t *testing.T, edit func(*Options)) *Gateway {
	t.Helper()
	opts := Options{
		Node: xdsclient.Node{ID: "test"},
		ListenAddress: func(_, configured string) string {
			if strings.HasPrefix(configured, "127.0.0.1:") {
				return configured
			}
			return "127.0.0.1:0"
		},
		DrainTimeout:         2 * time.Second,
		DisableLoadReporting: true,
	}
	if edit != nil {
		edit(&opts)
	}
	g, err := New(nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.stopAll)
	return g
}

func update(msgs ...proto.Message) xdsclient.Update {
	var u xdsclient.Update
	for _, m := range msgs {
		name := m.ProtoReflect().Descriptor().Fields().ByName("name")
		u.Resources = append(u.Resources, xdsclient.Resource{Name: m.ProtoReflect().Get(name).String(), Message: m})
	}
	return u
}

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// staticCluster is a STATIC cluster "backend" with one host.
func staticCluster(addr *net.TCPAddr) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 "backend",
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: "backend", Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: socketAddress(addr.IP.String(), uint32(addr.Port)),
			}}}},
		}}},
	}
}

func socketAddress(host string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// catchAll routes everything to the cluster "backend".
func catchAll() *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{Name: "all", VirtualHosts: []*routev3.VirtualHost{{
		Name: "all", Domains: []string{"*"},
		Routes: []*routev3.Route{{
			Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "backend"}}},
		}},
	}}}
}

// httpListener is a listener with an inline route configuration; edit
// changes its connection manager.
func httpListener(t *testing.T, name, host string, port uint32, edit func(*hcmv3.HttpConnectionManager)) *listenerv3.Listener {
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix:     name,
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: catchAll()},
		HttpFilters: []*hcmv3.HttpFilter{{Name: "envoy.filters.http.router",
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &routerv3.Router{})}}},
	}
	if edit != nil {
		edit(hcm)
	}
	return &listenerv3.Listener{
		Name:    name,
		Address: socketAddress(host, port),
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name:       "envoy.filters.network.http_connection_manager",
			ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, hcm)},
		}}}},
	}
}

// heldBackend answers "ok", holding /hold requests until release closes;
// held counts those it holds.
func heldBackend(t *testing.T, release chan struct{}, held *atomic.Int64) *net.TCPAddr {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			held.Add(1)
			<-release
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr)
}

// fetch GETs path on addr on a new connection.
func fetch(addr, path string) (string, error) {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://" + addr + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, body), err
}

// inBackground fetches path and returns where the answer will come.
func inBackground(addr, path string) chan string {
	done := make(chan string, 1)
	go func() {
		got, err := fetch(addr, path)
		if err != nil {
			got = err.Error()
		}
		done <- got
	}()
	return done
}

// serving returns a gateway with a listener "web" sending everything to
// the cluster "backend" at addr.
func serving(t *testing.T, addr *net.TCPAddr) *Gateway { return servingWith(t, addr, nil) }

// servingWith is serving with options edit changes.
func servingWith(t *testing.T, addr *net.TCPAddr, edit func(*Options)) *Gateway {
	t.Helper()
	g := newTestGatewayWith(t, edit)
	if err := g.feed.onClusters(update(staticCluster(addr))); err != nil {
		t.Fatal(err)
	}
	if err := g.feed.onListeners(update(httpListener(t, "web", "0.0.0.0", 8080, nil))); err != nil {
		t.Fatal(err)
	}
	return g
}

// waitUntil polls cond for up to 5 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testrun.Poll{Within: 5 * time.Second, Every: 5 * time.Millisecond}.Until(t, what, cond)
}

// awaitRefused waits until addr refuses connections.
func awaitRefused(t *testing.T, addr string) {
	t.Helper()
	waitUntil(t, addr+" refuses connections", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}

// A listener that moves gets a new socket while its requests under way
// finish on the old one; a listener removed drains the same way.
func TestListenerMovesAndRemoval(t *testing.T) {
	release := make(chan struct{})
	var holding atomic.Int64
	g := serving(t, heldBackend(t, release, &holding))
	first := g.Addr("web")
	if got, err := fetch(first, "/"); err != nil || got != "200 ok" {
		t.Fatalf("GET: %q %v", got, err)
	}
	held := inBackground(first, "/hold")
	waitHeld(t, &holding, 1)

	// The same address, another route config: the socket stays.
	if err := g.feed.onListeners(update(httpListener(t, "web", "0.0.0.0", 8080, func(h *hcmv3.HttpConnectionManager) {
		h.StatPrefix = "changed"
	}))); err != nil {
		t.Fatal(err)
	}
	if g.Addr("web") != first {
		t.Fatalf("a config change kept the address but moved the socket to %s", g.Addr("web"))
	}

	// Another port: a new socket; the old one drains.
	if err := g.feed.onListeners(update(httpListener(t, "web", "0.0.0.0", 9090, nil))); err != nil {
		t.Fatal(err)
	}
	second := g.Addr("web")
	if second == first {
		t.Fatal("the listener moved but kept its socket")
	}
	if got, err := fetch(second, "/"); err != nil || got != "200 ok" {
		t.Fatalf("GET on the new socket: %q %v", got, err)
	}
	awaitRefused(t, first) // no new connection on the old socket…
	heldToo := inBackground(second, "/hold")
	waitHeld(t, &holding, 2)

	// Removal.
	if err := g.feed.onListeners(xdsclient.Update{Removed: []string{"web"}}); err != nil {
		t.Fatal(err)
	}
	if g.Addr("web") != "" {
		t.Fatalf("removed listener still at %s", g.Addr("web"))
	}
	awaitRefused(t, second)
	close(release)
	for _, done := range []chan string{held, heldToo} {
		if got := <-done; got != "200 ok" { // …but what was under way finishes
			t.Errorf("request under way during the change: %q, want 200 ok", got)
		}
	}
}

// waitHeld waits until the backend holds n requests.
func waitHeld(t *testing.T, held *atomic.Int64, n int64) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%d requests held", n), func() bool { return held.Load() == n })
}

// Config the gateway cannot serve as Envoy would is refused whole (a
// NACK), and what was serving goes on serving.
func TestRefusesWhatItCannotServe(t *testing.T) {
	backend := heldBackend(t, make(chan struct{}), new(atomic.Int64))
	g := serving(t, backend)
	addr := g.Addr("web")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := uint32(busy.Addr().(*net.TCPAddr).Port)

	withTLS := func(edit func(*tlsv3.DownstreamTlsContext)) *listenerv3.Listener {
		l := httpListener(t, "web", "0.0.0.0", 8080, nil)
		ctx := onDemandTLS(t)
		edit(ctx)
		l.FilterChains[0].TransportSocket = &corev3.TransportSocket{Name: "envoy.transport_sockets.tls",
			ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(t, ctx)}}
		return l
	}
	withListenerFilter := httpListener(t, "web", "0.0.0.0", 8080, nil)
	withListenerFilter.ListenerFilters = []*listenerv3.ListenerFilter{{Name: "envoy.filters.listener.proxy_protocol",
		ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: mustAny(t, &proxyprotocolv3.ProxyProtocol{})}}}
	retrying := catchAll()
	retrying.VirtualHosts[0].Routes[0].GetRoute().RetryPolicy = &routev3.RetryPolicy{RetryOn: "retriable-4xx"}
	dns := staticCluster(backend)
	dns.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
	scope := func(name, route string) *routev3.ScopedRouteConfiguration {
		return &routev3.ScopedRouteConfiguration{Name: name, RouteConfigurationName: route,
			Key: &routev3.ScopedRouteConfiguration_Key{Fragments: []*routev3.ScopedRouteConfiguration_Key_Fragment{
				{Type: &routev3.ScopedRouteConfiguration_Key_Fragment_StringKey{StringKey: "same"}},
			}}}
	}

	for _, tc := range []struct {
		name    string
		handler func(xdsclient.Update) error
		update  xdsclient.Update
		want    string
	}{
		{"client certificates", g.feed.onListeners, update(withTLS(func(c *tlsv3.DownstreamTlsContext) {
			c.RequireClientCertificate = wrapperspb.Bool(true)
		})), "DownstreamTlsContext.require_client_certificate is not supported"},
		{"a static certificate", g.feed.onListeners, update(withTLS(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsCertificates = []*tlsv3.TlsCertificate{{}}
		})), "CommonTlsContext.tls_certificates is not supported"},
		{"cipher suites", g.feed.onListeners, update(withTLS(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsParams.CipherSuites = []string{"AES128-SHA"}
		})), "TlsParameters.cipher_suites is not supported"},
		{"TLS 1.3 to 1.2", g.feed.onListeners, update(withTLS(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsParams.TlsMinimumProtocolVersion = tlsv3.TlsParameters_TLSv1_3
			c.CommonTlsContext.TlsParams.TlsMaximumProtocolVersion = tlsv3.TlsParameters_TLSv1_2
		})), "TLS versions TLSv1_3 to TLSv1_2 are not supported"},
		{"secrets from elsewhere than ADS", g.feed.onListeners, update(withTLS(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.CustomTlsCertificateSelector = onDemandSelector(t, &corev3.ConfigSource{
				ConfigSourceSpecifier: &corev3.ConfigSource_Self{Self: &corev3.SelfConfigSource{}}})
		})), "ConfigSource.self is not supported"},
		{"another listener filter", g.feed.onListeners, update(withListenerFilter), "only the TLS inspector"},
		{"a secret that is not a certificate", g.certs.apply, update(&tlsv3.Secret{Name: "s",
			Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{}}}),
			"Secret.validation_context is not supported"},
		{"a key that does not parse", g.certs.apply, update(&tlsv3.Secret{Name: "s",
			Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
				CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "not PEM"}},
				PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "not PEM either"}},
			}}}), "reading the certificate and key"},
		{"a key from a file", g.certs.apply, update(&tlsv3.Secret{Name: "s",
			Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
				CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: "/etc/tls.crt"}},
			}}}), "DataSource.filename is not supported"},
		{"another HTTP filter", g.feed.onListeners, update(httpListener(t, "web", "0.0.0.0", 8080, func(h *hcmv3.HttpConnectionManager) {
			h.HttpFilters = append([]*hcmv3.HttpFilter{{Name: "envoy.filters.http.cors",
				ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &routerv3.Router{})}}}, h.HttpFilters...)
		})), "HTTP filter envoy.filters.http.cors is not supported"},
		{"retries", g.feed.onListeners, update(httpListener(t, "web", "0.0.0.0", 8080, func(h *hcmv3.HttpConnectionManager) {
			h.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: retrying}
		})), `retry_on "retriable-4xx" is not supported`},
		{"an address in use", g.feed.onListeners, update(
			httpListener(t, "other", "0.0.0.0", 7070, nil), httpListener(t, "web", "127.0.0.1", busyPort, nil),
		), "address already in use"},
		{"unescaping slashes", g.feed.onListeners, update(httpListener(t, "web", "0.0.0.0", 8080, func(h *hcmv3.HttpConnectionManager) {
			h.PathWithEscapedSlashesAction = hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT
		})), "path_with_escaped_slashes_action UNESCAPE_AND_REDIRECT is not supported"},
		{"a connection duration", g.feed.onListeners, update(httpListener(t, "web", "0.0.0.0", 8080, func(h *hcmv3.HttpConnectionManager) {
			h.CommonHttpProtocolOptions = &corev3.HttpProtocolOptions{MaxConnectionDuration: durationpb.New(time.Minute)}
		})), "HttpProtocolOptions.max_connection_duration is not supported"},
		{"DNS cluster", g.feed.onClusters, update(dns), "cluster type STRICT_DNS is not supported"},
		{"two scopes, one key", g.feed.onScopes, update(scope("a", "ra"), scope("b", "rb")), "have the same key"},
		{"a header formatter", g.feed.onRoutes, update(&routev3.RouteConfiguration{Name: "r",
			RequestHeadersToAdd: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-client", Value: "%DOWNSTREAM_REMOTE_ADDRESS%"}}},
		}), "header formatters"},
		{"Host mutation", g.feed.onRoutes, update(&routev3.RouteConfiguration{Name: "r",
			RequestHeadersToAdd: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "host", Value: "elsewhere"}}},
		}), "may not be mutated"},
		{"a duplicate domain", g.feed.onRoutes, update(&routev3.RouteConfiguration{Name: "r", VirtualHosts: []*routev3.VirtualHost{
			{Name: "a", Domains: []string{"x.example.com"}}, {Name: "b", Domains: []string{"X.example.com"}},
		}}), "already claimed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.handler(tc.update)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			if g.Addr("web") != addr || g.Addr("other") != "" {
				t.Fatalf("listeners changed: web %q, other %q", g.Addr("web"), g.Addr("other"))
			}
			if got, err := fetch(addr, "/"); err != nil || got != "200 ok" {
				t.Fatalf("after the refusal: %q %v", got, err)
			}
		})
	}
}

// Envoy's route timeout default applies when a route sets none.
func TestRouteTimeoutDefault(t *testing.T) {
	for _, tc := range []struct {
		timeout *durationpb.Duration
		want    time.Duration
	}{{nil, 15 * time.Second}, {durationpb.New(0), 0}, {durationpb.New(3 * time.Second), 3 * time.Second}} {
		fa, err := compileRouteAction(&routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "c"}, Timeout: tc.timeout,
		})
		if err != nil {
			t.Fatal(err)
		}
		if fa.timeout != tc.want {
			t.Errorf("timeout %v: got %v, want %v", tc.timeout, fa.timeout, tc.want)
		}
	}
}
