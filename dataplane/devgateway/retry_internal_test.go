package devgateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// A retry policy reads as Envoy's: num_retries defaults to 1, the
// conditions decide what is retried, and one the gateway does not know is
// refused rather than ignored.
func TestCompileRetryPolicy(t *testing.T) {
	p, err := compileRetryPolicy(&routev3.RetryPolicy{RetryOn: "5xx"})
	if err != nil || p.retries != 1 || p.perTry != 0 {
		t.Fatalf("default: %+v, %v; want 1 retry, no per-try timeout", p, err)
	}
	p, err = compileRetryPolicy(&routev3.RetryPolicy{RetryOn: "gateway-error, connect-failure", NumRetries: wrapperspb.UInt32(0),
		PerTryTimeout: durationpb.New(time.Second)})
	if err != nil || p.retries != 0 || p.perTry != time.Second {
		t.Fatalf("explicit: %+v, %v", p, err)
	}
	for _, bad := range []*routev3.RetryPolicy{
		{RetryOn: "5xx,retriable-4xx"},
		{RetryOn: "5xx", RetryBackOff: &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(time.Second)}},
	} {
		if _, err := compileRetryPolicy(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}

	for _, tc := range []struct {
		on             string
		status         int
		f              failure
		status5xx, got bool
	}{
		{on: "5xx", status: 500, f: reset, status5xx: true, got: true},
		{on: "5xx", status: 404, f: connectFailure, status5xx: false, got: true},
		{on: "gateway-error", status: 500, f: perTryTimeout, status5xx: false, got: true},
		{on: "gateway-error", status: 503, f: reset, status5xx: true, got: true},
		{on: "connect-failure", status: 503, f: reset, status5xx: false, got: false},
		{on: "connect-failure", status: 503, f: connectFailure, status5xx: false, got: true},
		{on: "reset", status: 503, f: perTryTimeout, status5xx: false, got: true},
	} {
		p, err := compileRetryPolicy(&routev3.RetryPolicy{RetryOn: tc.on})
		if err != nil {
			t.Fatal(err)
		}
		if got := p.retriesStatus(tc.status); got != tc.status5xx {
			t.Errorf("%s retries status %d: %v", tc.on, tc.status, got)
		}
		if got := p.retriesFailure(tc.f); got != tc.got {
			t.Errorf("%s retries failure %d: %v", tc.on, tc.f, got)
		}
	}
	if (&retryPolicy{on: retryOn5xx}).retriesStatus(http.StatusOK) {
		t.Error("5xx retries a 200")
	}
}

// Envoy's back-off: below 25 ms, 75 ms, 175 ms, then at most 250 ms.
func TestBackOff(t *testing.T) {
	for n, ceiling := range map[int]time.Duration{1: 25 * time.Millisecond, 2: 75 * time.Millisecond, 3: 175 * time.Millisecond, 4: 250 * time.Millisecond, 40: 250 * time.Millisecond} {
		for range 100 {
			if d := backOff(n); d < 0 || d > ceiling || (n < 4 && d == ceiling) {
				t.Fatalf("backOff(%d) = %v, want below %v", n, d, ceiling)
			}
		}
	}
}

// A LOGICAL_DNS cluster has exactly one endpoint, which keeps its name.
func TestCompileLogicalDNSCluster(t *testing.T) {
	ep := func(name string) *endpointv3.LbEndpoint {
		return &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: name, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 80},
			}}},
		}}}
	}
	cluster := func(eps ...*endpointv3.LbEndpoint) *clusterv3.Cluster {
		return &clusterv3.Cluster{
			Name:                 "default/ext:80",
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_LOGICAL_DNS},
			DnsLookupFamily:      clusterv3.Cluster_V4_PREFERRED,
			LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: "default/ext:80",
				Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: eps}}},
		}
	}
	c, err := compileCluster(cluster(ep("example.com")))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.static.hosts) != 1 || c.static.hosts[0].addr != "example.com:80" || !c.upCfg.resolve || c.upCfg.dnsFamily != clusterv3.Cluster_V4_PREFERRED {
		t.Errorf("compiled %+v, upstream %+v", c.static, c.upCfg)
	}
	if _, err := compileCluster(cluster(ep("a.example.com"), ep("b.example.com"))); err == nil {
		t.Error("two endpoints accepted")
	}
}

// A LOGICAL_DNS host connects to the first address its family allows.
func TestPickAddress(t *testing.T) {
	v4a, v4b, v6 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("fd00::1")
	mapped := netip.AddrFrom16(v4a.As16())
	for _, tc := range []struct {
		ips    []netip.Addr
		family clusterv3.Cluster_DnsLookupFamily
		want   string
	}{
		{[]netip.Addr{v6, v4a, v4b}, clusterv3.Cluster_V4_PREFERRED, "10.0.0.1"},
		{[]netip.Addr{v6}, clusterv3.Cluster_V4_PREFERRED, "fd00::1"},
		{[]netip.Addr{v4a, v6}, clusterv3.Cluster_AUTO, "fd00::1"},
		{[]netip.Addr{v4b, v4a}, clusterv3.Cluster_AUTO, "10.0.0.2"},
		{[]netip.Addr{mapped}, clusterv3.Cluster_V4_ONLY, "10.0.0.1"},
		{[]netip.Addr{v4a, v6}, clusterv3.Cluster_V6_ONLY, "fd00::1"},
		{[]netip.Addr{v4b, v6}, clusterv3.Cluster_ALL, "10.0.0.2"},
		{[]netip.Addr{v6}, clusterv3.Cluster_V4_ONLY, ""},
	} {
		got, err := pickAddress(tc.ips, tc.family)
		if tc.want == "" {
			if err == nil {
				t.Errorf("%v %v: %v, want an error", tc.ips, tc.family, got)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("%v %v: %v, %v; want %s", tc.ips, tc.family, got, err, tc.want)
		}
	}
}

// A name that does not resolve is a cluster without a host: 503 "no
// healthy upstream", not a connection failure.
func TestResolvingDialFailure(t *testing.T) {
	r := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no DNS server here")
	}}
	tr := &http.Transport{DialContext: resolvingDial(&net.Dialer{}, r, clusterv3.Cluster_V4_PREFERRED)}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, "http://backend.example:80/", nil)
	_, err := tr.RoundTrip(req)
	if !errors.Is(err, errNoHealthyUpstream) {
		t.Errorf("RoundTrip: %v, want no healthy upstream", err)
	}
}
