package devgateway

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// listenerConfig is a compiled Listener: where it binds, the TLS its
// connections start with, if any, and the HTTP connection manager serving
// them.
type listenerConfig struct {
	name string
	// address is "host:port" as the listener says.
	address string
	// tls is nil for a plaintext listener.
	tls *tlsContext
	cm  *connManager
}

// connManager is a compiled HttpConnectionManager. It never changes once
// built; a listener update swaps it whole.
type connManager struct {
	codec hcmv3.HttpConnectionManager_CodecType
	// early runs before routing: its headers are part of the scope key.
	early  headerOps
	routes routeSource
	// upgrades are the upgrade types (lower case) the connection manager
	// knows, and whether they are enabled where a route does not say.
	upgrades         map[string]bool
	useRemoteAddress bool
	skipXFFAppend    bool
	// xffTrustedHops is xff_num_trusted_hops: with it 0, an edge proxy
	// (useRemoteAddress) trusts no X-Forwarded-Proto a client sends.
	xffTrustedHops uint32
	// server holds the limits the listener's http.Server enforces,
	// limits those checked on each request.
	server serverLimits
	limits requestLimits
	// accessLogs are the access_log's formats, written to
	// Options.AccessLog.
	accessLogs []*accessLog
	// tracing is whether the connection manager traces (its tracing is
	// Envoy's OpenTelemetry tracer): the gateway does with
	// Options.TracerProvider.
	tracing bool
	// bufferLimit is the listener's per_connection_buffer_limit_bytes:
	// how much of a request body is kept for retries.
	bufferLimit int64
	// streamIdle is stream_idle_timeout: a stream on which nothing moved
	// for that long ends (Envoy's 5 minutes when unset; 0 is none). A
	// route's idle_timeout replaces it.
	streamIdle time.Duration
}

// defaultBufferLimit is Envoy's per_connection_buffer_limit_bytes when a
// listener sets none.
const defaultBufferLimit = 1 << 20

// routeSource is where a connection manager finds its route
// configuration: inline, over RDS by name, or through scopes.
type routeSource struct {
	inline  *routeTable
	rdsName string
	scoped  keyBuilder
}

// table returns the route configuration for r, nil if none applies (yet).
func (rs routeSource) table(t *tables, r *http.Request) *routeTable {
	switch {
	case rs.inline != nil:
		return rs.inline
	case rs.rdsName != "":
		return t.routeTable(rs.rdsName)
	}
	k, ok := rs.scoped.key(r)
	if !ok {
		return nil
	}
	return t.scopedRoutes(k)
}

// upgradeAllowed follows Envoy: the connection manager must know the
// upgrade type; a route's own setting, if any, then decides, and the
// connection manager's otherwise.
func (cm *connManager) upgradeAllowed(upgrade string, fa *forwardAction) bool {
	upgrade = strings.ToLower(upgrade)
	enabled, known := cm.upgrades[upgrade]
	if !known {
		return false
	}
	if routeEnabled, ok := fa.upgrades[upgrade]; ok {
		return routeEnabled
	}
	return enabled
}

// compileListener compiles a Listener whose TLS certificates, if it
// terminates TLS, come from certs.
func compileListener(l *listenerv3.Listener, certs *certStore) (*listenerConfig, error) {
	if err := onlyFields(l, "name", "address", "filter_chains", "default_filter_chain", "stat_prefix", "metadata",
		"traffic_direction", "per_connection_buffer_limit_bytes", "drain_type", "listener_filters"); err != nil {
		return nil, err
	}
	if err := compileListenerFilters(l.GetListenerFilters()); err != nil {
		return nil, err
	}
	address, err := listenerAddress(l.GetAddress())
	if err != nil {
		return nil, err
	}
	chains := l.GetFilterChains()
	if dc := l.GetDefaultFilterChain(); dc != nil {
		chains = append(chains[:len(chains):len(chains)], dc)
	}
	// Filter chain matching (by SNI, ALPN, addresses) is not implemented:
	// one chain serves every connection.
	if len(chains) != 1 {
		return nil, fmt.Errorf("%d filter chains: the dev gateway serves exactly one", len(chains))
	}
	if err := onlyFields(chains[0], "name", "filters", "metadata", "transport_socket"); err != nil {
		return nil, err
	}
	filters := chains[0].GetFilters()
	if len(filters) != 1 {
		return nil, fmt.Errorf("%d network filters: the dev gateway serves an HTTP connection manager alone", len(filters))
	}
	if err := onlyFields(filters[0], "name", "typed_config"); err != nil {
		return nil, err
	}
	var hcm hcmv3.HttpConnectionManager
	if err := unpack(filters[0].GetTypedConfig(), &hcm); err != nil {
		return nil, fmt.Errorf("network filter %s: %w", filters[0].GetName(), err)
	}
	cm, err := compileConnManager(&hcm)
	if err != nil {
		return nil, fmt.Errorf("network filter %s: %w", filters[0].GetName(), err)
	}
	cm.bufferLimit = defaultBufferLimit
	if b := l.GetPerConnectionBufferLimitBytes(); b != nil {
		cm.bufferLimit = int64(b.GetValue())
	}
	// The server's handshake timeout is its header timeout (Go's
	// http.Server): a handshake waits no longer for its certificate.
	tc, err := compileTransportSocket(chains[0].GetTransportSocket(), certs, cm.server.readHeaderTimeout)
	if err != nil {
		return nil, err
	}
	return &listenerConfig{name: l.GetName(), address: address, tls: tc, cm: cm}, nil
}

func listenerAddress(a *corev3.Address) (string, error) {
	sa := a.GetSocketAddress()
	if sa == nil {
		return "", errors.New("the listener has no socket address")
	}
	if err := onlyFields(sa, "address", "port_value", "protocol"); err != nil {
		return "", err
	}
	if sa.GetProtocol() != corev3.SocketAddress_TCP {
		return "", fmt.Errorf("protocol %s: the dev gateway serves TCP", sa.GetProtocol())
	}
	return net.JoinHostPort(sa.GetAddress(), strconv.FormatUint(uint64(sa.GetPortValue()), 10)), nil
}

// unpack decodes a typed config into m, which must be of the type the
// config names: Envoy picks an extension by its config's type.
func unpack(a *anypb.Any, m proto.Message) error {
	if a == nil {
		return errors.New("no typed_config")
	}
	if !a.MessageIs(m) {
		return fmt.Errorf("typed_config %s: want %s", a.GetTypeUrl(), proto.MessageName(m))
	}
	if err := a.UnmarshalTo(m); err != nil {
		return fmt.Errorf("decoding %s: %w", a.GetTypeUrl(), err)
	}
	return nil
}

func compileConnManager(h *hcmv3.HttpConnectionManager) (*connManager, error) {
	// xff_num_trusted_hops decides whether X-Forwarded-Proto is trusted,
	// and otherwise only what Envoy takes for the client's address in the
	// x-envoy-* headers the gateway does not add: X-Forwarded-For gets the
	// peer's address appended either way.
	if err := onlyFields(h, "codec_type", "stat_prefix", "rds", "route_config", "scoped_routes", "http_filters",
		"upgrade_configs", "early_header_mutation_extensions", "use_remote_address", "skip_xff_append",
		"stream_idle_timeout", "xff_num_trusted_hops", "request_headers_timeout", "max_request_headers_kb",
		"common_http_protocol_options", "http2_protocol_options", "normalize_path", "merge_slashes", "tracing",
		"path_with_escaped_slashes_action", "access_log"); err != nil {
		return nil, err
	}
	cm := &connManager{
		codec:            h.GetCodecType(),
		upgrades:         map[string]bool{},
		useRemoteAddress: h.GetUseRemoteAddress().GetValue(),
		skipXFFAppend:    h.GetSkipXffAppend(),
		xffTrustedHops:   h.GetXffNumTrustedHops(),
		streamIdle:       defaultStreamIdleTimeout,
	}
	if t := h.GetStreamIdleTimeout(); t != nil {
		cm.streamIdle = t.AsDuration()
	}
	if cm.codec == hcmv3.HttpConnectionManager_HTTP3 {
		return nil, errors.New("codec HTTP3 is not supported by the dev gateway")
	}
	var err error
	if cm.server, cm.limits, err = compileLimits(h); err != nil {
		return nil, err
	}
	if err := checkRouterOnly(h.GetHttpFilters()); err != nil {
		return nil, err
	}
	for _, u := range h.GetUpgradeConfigs() {
		if err := onlyFields(u, "upgrade_type", "enabled"); err != nil {
			return nil, err
		}
		cm.upgrades[strings.ToLower(u.GetUpgradeType())] = u.GetEnabled() == nil || u.GetEnabled().GetValue()
	}
	for _, ext := range h.GetEarlyHeaderMutationExtensions() {
		var hm headermutationv3.HeaderMutation
		if err := unpack(ext.GetTypedConfig(), &hm); err != nil {
			return nil, fmt.Errorf("early header mutation %s: %w", ext.GetName(), err)
		}
		if err := onlyFields(&hm, "mutations"); err != nil {
			return nil, err
		}
		ops, err := compileEarlyMutations(hm.GetMutations())
		if err != nil {
			return nil, fmt.Errorf("early header mutation %s: %w", ext.GetName(), err)
		}
		cm.early = append(cm.early, ops...)
	}
	if cm.accessLogs, err = compileAccessLogs(h.GetAccessLog()); err != nil {
		return nil, err
	}
	if cm.tracing, err = compileTracing(h.GetTracing()); err != nil {
		return nil, err
	}
	cm.routes, err = compileRouteSource(h)
	if err != nil {
		return nil, err
	}
	return cm, nil
}

// checkRouterOnly accepts the router as the last HTTP filter, and before
// it only filters that may be left out (optional or disabled): the
// gateway is a router and nothing else.
func checkRouterOnly(filters []*hcmv3.HttpFilter) error {
	if len(filters) == 0 {
		return errors.New("no HTTP filters: the router must be the last")
	}
	for i, f := range filters {
		if err := onlyFields(f, "name", "typed_config", "is_optional", "disabled"); err != nil {
			return err
		}
		last := i == len(filters)-1
		if last {
			if err := unpack(f.GetTypedConfig(), &routerv3.Router{}); err != nil {
				return fmt.Errorf("the last HTTP filter, %s, must be the router: %w", f.GetName(), err)
			}
			continue
		}
		if !f.GetIsOptional() && !f.GetDisabled() {
			return fmt.Errorf("HTTP filter %s is not supported by the dev gateway", f.GetName())
		}
	}
	return nil
}

func compileRouteSource(h *hcmv3.HttpConnectionManager) (routeSource, error) {
	switch spec := h.GetRouteSpecifier().(type) {
	case *hcmv3.HttpConnectionManager_RouteConfig:
		rt, err := compileRouteTable(spec.RouteConfig)
		if err != nil {
			return routeSource{}, fmt.Errorf("route_config: %w", err)
		}
		return routeSource{inline: rt}, nil
	case *hcmv3.HttpConnectionManager_Rds:
		if err := onlyFields(spec.Rds, "config_source", "route_config_name"); err != nil {
			return routeSource{}, err
		}
		return routeSource{rdsName: spec.Rds.GetRouteConfigName()}, nil
	case *hcmv3.HttpConnectionManager_ScopedRoutes:
		sr := spec.ScopedRoutes
		// An inline scope list would be the listener's own; scopes over
		// SRDS are shared, and only those are supported.
		if err := onlyFields(sr, "name", "scope_key_builder", "rds_config_source", "scoped_rds"); err != nil {
			return routeSource{}, err
		}
		if err := onlyFields(sr.GetScopedRds(), "scoped_rds_config_source"); err != nil {
			return routeSource{}, err
		}
		kb, err := compileKeyBuilder(sr.GetScopeKeyBuilder())
		if err != nil {
			return routeSource{}, err
		}
		return routeSource{scoped: kb}, nil
	}
	return routeSource{}, errors.New("the connection manager has no route specifier")
}
