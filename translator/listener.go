package translator

import (
	"time"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Listener defaults.
const (
	DefaultAddress      = "0.0.0.0"
	DefaultExternalPort = 8080
	DefaultInternalPort = 8081
)

// Listeners returns the gateway listeners: "external" and "internal", and
// "external-tls" and "internal-tls" when their ports are set (see
// TLSListener); with tracing on, the collector's cluster too.
func Listeners(opts Options) Output {
	extAddr, intAddr := orDefault(opts.ExternalAddress, DefaultAddress), orDefault(opts.InternalAddress, DefaultAddress)
	out := Output{Listeners: []*listenerv3.Listener{
		gatewayListener(ExternalListener, ExternalListener, extAddr, orDefault(opts.ExternalPort, DefaultExternalPort), opts, nil),
		gatewayListener(InternalListener, InternalListener, intAddr, orDefault(opts.InternalPort, DefaultInternalPort), opts, nil),
	}}
	if opts.ExternalTLSPort != 0 {
		out.Listeners = append(out.Listeners, TLSListener(ExternalTLSListener, ExternalListener, orDefault(opts.ExternalTLSAddress, extAddr), opts.ExternalTLSPort, opts))
	}
	if opts.InternalTLSPort != 0 {
		out.Listeners = append(out.Listeners, TLSListener(InternalTLSListener, InternalListener, orDefault(opts.InternalTLSAddress, intAddr), opts.InternalTLSPort, opts))
	}
	if c := tracingCluster(opts.Tracing); c != nil {
		out.Clusters = append(out.Clusters, c)
	}
	sortOutput(&out)
	return out
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// gatewayListener is a gateway listener named name, routing with the scopes
// of listener scopes (its own name, or the plaintext listener a TLS one
// serves the hosts of), with transport's filter chain settings when set.
func gatewayListener(name, scopes, address string, port uint32, opts Options, tls *listenerv3.FilterChain) *listenerv3.Listener {
	limits := opts.Limits.WithDefaults()
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: name,
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcmv3.HttpConnectionManager_ScopedRoutes{ScopedRoutes: &hcmv3.ScopedRoutes{
			Name: scopes,
			ScopeKeyBuilder: &hcmv3.ScopedRoutes_ScopeKeyBuilder{Fragments: []*hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder{
				headerFragment(ListenerHeader, ""),
				// The host part of the authority: "host:port" → "host".
				headerFragment(":authority", ":"),
			}},
			RdsConfigSource: ads(),
			ConfigSpecifier: &hcmv3.ScopedRoutes_ScopedRds{ScopedRds: &hcmv3.ScopedRds{
				ScopedRdsConfigSource: ads(),
			}},
		}},
		// Runs before routing, so the scope key sees it; overwrites what a
		// client sent, so no client can pick the other listener's scopes.
		EarlyHeaderMutationExtensions: []*corev3.TypedExtensionConfig{{
			Name: earlyHeaderMutation,
			TypedConfig: mustAny(&headermutationv3.HeaderMutation{Mutations: []*mutationrulesv3.HeaderMutation{{
				Action: &mutationrulesv3.HeaderMutation_Append{Append: &corev3.HeaderValueOption{
					Header:       &corev3.HeaderValue{Key: ListenerHeader, Value: scopes},
					AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
				}},
			}}}),
		}},
		UpgradeConfigs: []*hcmv3.HttpConnectionManager_UpgradeConfig{{UpgradeType: "websocket"}},
		HttpFilters:    []*hcmv3.HttpFilter{routerFilter()},
		// The gateways are the edge: the client is the peer (or the
		// trusted hops' entry in X-Forwarded-For), never what it claims;
		// X-Forwarded-Proto is the connection's scheme, which the routes
		// of hosts redirected to HTTPS match on.
		UseRemoteAddress:  wrapperspb.Bool(true),
		XffNumTrustedHops: opts.XFFNumTrustedHops,
		Tracing:           connManagerTracing(opts.Tracing),
	}
	hardenConnManager(hcm, limits)
	chain := &listenerv3.FilterChain{}
	if tls != nil {
		chain = tls
	}
	// Every request is logged (Kourier's enable-service-access-logging).
	hcm.AccessLog = accessLogs(opts.AccessLog)
	chain.Filters = []*listenerv3.Filter{{
		Name:       hcmFilterName,
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(hcm)},
	}}
	l := &listenerv3.Listener{
		Name:                          name,
		Address:                       socketAddress(address, port),
		PerConnectionBufferLimitBytes: wrapperspb.UInt32(limits.BufferBytes),
		FilterChains:                  []*listenerv3.FilterChain{chain},
	}
	if tls != nil {
		l.ListenerFilters = []*listenerv3.ListenerFilter{tlsInspector()}
	}
	return l
}

// hardenConnManager sets the limits and request checks Envoy advises for
// an edge proxy. There is deliberately no request_timeout: the route
// timeout (the revision's timeoutSeconds) bounds a request, as in Knative,
// and stream_idle_timeout bounds a stream where nothing moves.
func hardenConnManager(hcm *hcmv3.HttpConnectionManager, l Limits) {
	underscores := corev3.HttpProtocolOptions_REJECT_REQUEST
	if l.AllowHeadersWithUnderscores {
		underscores = corev3.HttpProtocolOptions_ALLOW
	}
	hcm.RequestHeadersTimeout = timeout(l.RequestHeadersTimeout)
	hcm.StreamIdleTimeout = timeout(l.StreamIdleTimeout)
	hcm.MaxRequestHeadersKb = wrapperspb.UInt32(l.MaxRequestHeadersKiB)
	hcm.CommonHttpProtocolOptions = &corev3.HttpProtocolOptions{
		IdleTimeout:                  timeout(l.ConnectionIdleTimeout),
		MaxHeadersCount:              wrapperspb.UInt32(l.MaxHeadersCount),
		HeadersWithUnderscoresAction: underscores,
	}
	hcm.Http2ProtocolOptions = &corev3.Http2ProtocolOptions{
		MaxConcurrentStreams:        wrapperspb.UInt32(l.MaxConcurrentStreams),
		InitialStreamWindowSize:     wrapperspb.UInt32(l.InitialStreamWindowBytes),
		InitialConnectionWindowSize: wrapperspb.UInt32(l.InitialConnectionWindowBytes),
	}
	// Routing and the revision see one spelling of a path: "/a/./b/../c"
	// and "/a//c" are "/a/c".
	hcm.NormalizePath = wrapperspb.Bool(true)
	hcm.MergeSlashes = true
	hcm.PathWithEscapedSlashesAction = l.PathWithEscapedSlashes
}

// timeout is d as Envoy reads it: a negative d disables the timeout (0s).
func timeout(d time.Duration) *durationpb.Duration {
	return durationpb.New(max(d, 0))
}

func headerFragment(header, separator string) *hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder {
	return &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder{
		Type: &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor_{
			HeaderValueExtractor: &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor{
				Name:             header,
				ElementSeparator: separator,
				ExtractType:      &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor_Index{Index: 0},
			},
		},
	}
}
