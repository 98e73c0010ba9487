package devgateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// httpProtocolOptionsKey is the typed_extension_protocol_options entry
// holding a cluster's upstream HTTP options.
const httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// Envoy's defaults for what a cluster leaves unset.
const (
	defaultConnectTimeout = 5 * time.Second
	defaultUpstreamIdle   = time.Hour
)

// Pool sizes: Envoy pools without a limit; Go's default of 2 idle
// connections per host would open and close connections at every burst.
const (
	maxIdleConnsPerHost = 100
	maxIdleConns        = 10 * maxIdleConnsPerHost
	tcpKeepAlive        = 30 * time.Second
)

// upstreamProtocol says how a cluster speaks HTTP to its hosts.
type upstreamProtocol int

const (
	// http1 is HTTP/1.1, Envoy's default.
	http1 upstreamProtocol = iota
	// h2c is HTTP/2 with prior knowledge: the hosts have no TLS.
	h2c
	// sameAsDownstream speaks what the client spoke
	// (use_downstream_protocol_config).
	sameAsDownstream
)

// upstreamConfig is what a cluster's connections depend on. Two clusters
// (or two versions of one) with equal configs can share connections.
type upstreamConfig struct {
	protocol       upstreamProtocol
	connectTimeout time.Duration
	idleTimeout    time.Duration
	// resolve is set for a LOGICAL_DNS cluster: its host is a DNS name,
	// resolved as dnsFamily says.
	resolve   bool
	dnsFamily clusterv3.Cluster_DnsLookupFamily
}

func compileUpstreamConfig(c *clusterv3.Cluster) (upstreamConfig, error) {
	cfg := upstreamConfig{protocol: http1, connectTimeout: defaultConnectTimeout, idleTimeout: defaultUpstreamIdle}
	if t := c.GetConnectTimeout(); t != nil {
		cfg.connectTimeout = t.AsDuration()
	}
	for key := range c.GetTypedExtensionProtocolOptions() {
		if key != httpProtocolOptionsKey {
			return upstreamConfig{}, fmt.Errorf("protocol options %s are not supported by the dev gateway", key)
		}
	}
	a, ok := c.GetTypedExtensionProtocolOptions()[httpProtocolOptionsKey]
	if !ok {
		return cfg, nil
	}
	var opts upstreamhttpv3.HttpProtocolOptions
	if err := a.UnmarshalTo(&opts); err != nil {
		return upstreamConfig{}, fmt.Errorf("decoding %s: %w", httpProtocolOptionsKey, err)
	}
	if err := onlyFields(&opts, "common_http_protocol_options", "explicit_http_config", "use_downstream_protocol_config"); err != nil {
		return upstreamConfig{}, err
	}
	if err := onlyFields(opts.GetCommonHttpProtocolOptions(), "idle_timeout"); err != nil {
		return upstreamConfig{}, err
	}
	if t := opts.GetCommonHttpProtocolOptions().GetIdleTimeout(); t != nil {
		cfg.idleTimeout = t.AsDuration()
	}
	switch {
	case opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil:
		cfg.protocol = h2c
	case opts.GetExplicitHttpConfig().GetHttp3ProtocolOptions() != nil:
		return upstreamConfig{}, fmt.Errorf("%s: HTTP/3 is not supported by the dev gateway", httpProtocolOptionsKey)
	case opts.GetUseDownstreamProtocolConfig() != nil:
		cfg.protocol = sameAsDownstream
	}
	return cfg, nil
}

// upstream holds a cluster's connection pools: one per protocol, each
// pooling per host.
type upstream struct {
	cfg   upstreamConfig
	http1 *http.Transport
	h2c   *http.Transport
	// retired is set once no cluster uses the pools any more: requests
	// still under way finish on them, and each closes what went idle.
	retired atomic.Bool
}

func newUpstream(cfg upstreamConfig) *upstream {
	u := &upstream{cfg: cfg, http1: newTransport(cfg)}
	u.h2c = newTransport(cfg)
	u.h2c.Protocols = new(http.Protocols)
	u.h2c.Protocols.SetUnencryptedHTTP2(true)
	return u
}

func newTransport(cfg upstreamConfig) *http.Transport {
	dialer := &net.Dialer{Timeout: cfg.connectTimeout, KeepAlive: tcpKeepAlive}
	dial := dialer.DialContext
	if cfg.resolve {
		dial = resolvingDial(dialer, net.DefaultResolver, cfg.dnsFamily)
	}
	return &http.Transport{
		DialContext:         dial,
		MaxIdleConns:        maxIdleConns,
		MaxIdleConnsPerHost: maxIdleConnsPerHost,
		IdleConnTimeout:     cfg.idleTimeout,
		// A proxy passes bodies as they are: it must not ask for gzip and
		// decompress on the application's behalf.
		DisableCompression: true,
	}
}

// transport returns the pool for r. An upgrade (WebSocket) goes over
// HTTP/1.1 whatever the cluster speaks: Go's client cannot carry one over
// HTTP/2 (Envoy would use extended CONNECT), and a server that upgrades
// speaks HTTP/1.1 too (Go's h2c servers take both on one port).
func (u *upstream) transport(r *http.Request, upgrade bool) http.RoundTripper {
	switch {
	case upgrade:
		return u.http1
	case u.cfg.protocol == h2c, u.cfg.protocol == sameAsDownstream && r.ProtoMajor == 2:
		return u.h2c
	}
	return u.http1
}

// retire closes the idle connections of pools no cluster uses any more,
// and has the requests still under way close theirs as they finish.
func (u *upstream) retire() {
	u.retired.Store(true)
	u.closeIdle()
}

// done is called after each request on u.
func (u *upstream) done() {
	if u.retired.Load() {
		u.closeIdle()
	}
}

// closeIdle closes the connections no request uses.
func (u *upstream) closeIdle() {
	u.http1.CloseIdleConnections()
	u.h2c.CloseIdleConnections()
}

// resolvingDial dials a LOGICAL_DNS cluster's host: it resolves the name
// for each new connection and connects to the first address of the answer
// that dns_lookup_family allows, as Envoy's logical DNS host connects to
// the first address of its latest resolution. Pooled connections stay
// where they are when the answer changes. Envoy re-resolves every
// dns_refresh_rate (5 s) and keeps the last good answer when a resolution
// fails; the gateway resolves at each connection instead, so a name that
// does not resolve answers 503 "no healthy upstream" as Envoy's cluster
// without a host does.
func resolvingDial(d *net.Dialer, r *net.Resolver, family clusterv3.Cluster_DnsLookupFamily) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		name, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		ip, err := resolveFirst(ctx, r, strings.TrimSuffix(name, "."), family)
		if err != nil {
			return nil, fmt.Errorf("%w: resolving %s: %w", errNoHealthyUpstream, name, err)
		}
		return d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
	}
}

// resolveFirst is the address Envoy's LOGICAL_DNS would connect to: the
// first of the answer in the family dns_lookup_family asks for (AUTO:
// IPv6 when there is any, IPv4 otherwise; V4_PREFERRED the reverse; ALL:
// the first of both).
func resolveFirst(ctx context.Context, r *net.Resolver, name string, family clusterv3.Cluster_DnsLookupFamily) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(name); err == nil {
		return ip, nil
	}
	ips, err := r.LookupNetIP(ctx, "ip", name)
	if err != nil {
		return netip.Addr{}, err
	}
	return pickAddress(ips, family)
}

// pickAddress is the first address of ips that family allows.
func pickAddress(ips []netip.Addr, family clusterv3.Cluster_DnsLookupFamily) (netip.Addr, error) {
	var v4, v6 []netip.Addr
	for _, ip := range ips {
		if ip = ip.Unmap(); ip.Is4() {
			v4 = append(v4, ip)
		} else {
			v6 = append(v6, ip)
		}
	}
	var pick []netip.Addr
	switch family {
	case clusterv3.Cluster_V4_ONLY:
		pick = v4
	case clusterv3.Cluster_V6_ONLY:
		pick = v6
	case clusterv3.Cluster_V4_PREFERRED:
		pick = v4
		if len(pick) == 0 {
			pick = v6
		}
	case clusterv3.Cluster_ALL:
		pick = ips
	default: // AUTO
		pick = v6
		if len(pick) == 0 {
			pick = v4
		}
	}
	if len(pick) == 0 {
		return netip.Addr{}, fmt.Errorf("no %s address", family)
	}
	return pick[0].Unmap(), nil
}
