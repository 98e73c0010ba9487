package devgateway

import (
	"fmt"
	"net"
	"net/http"
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
	return &http.Transport{
		DialContext:         dialer.DialContext,
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
