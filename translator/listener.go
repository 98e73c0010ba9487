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

// streamIdleTimeout replaces Envoy's 5 minute default, which would cut a
// request whose response starts later than that although its revision's
// timeoutSeconds allows it (up to Knative's max-revision-timeout-seconds,
// 600 s by default). The route timeout bounds requests; this only reclaims
// streams where nothing at all moves for an hour.
const streamIdleTimeout = time.Hour

// Listeners returns the two gateway listeners, "external" and "internal".
func Listeners(opts Options) Output {
	return Output{Listeners: []*listenerv3.Listener{
		gatewayListener(ExternalListener, orDefault(opts.ExternalAddress, DefaultAddress), orDefault(opts.ExternalPort, DefaultExternalPort)),
		gatewayListener(InternalListener, orDefault(opts.InternalAddress, DefaultAddress), orDefault(opts.InternalPort, DefaultInternalPort)),
	}}
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func gatewayListener(name, address string, port uint32) *listenerv3.Listener {
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: name,
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcmv3.HttpConnectionManager_ScopedRoutes{ScopedRoutes: &hcmv3.ScopedRoutes{
			Name: name,
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
					Header:       &corev3.HeaderValue{Key: ListenerHeader, Value: name},
					AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
				}},
			}}}),
		}},
		UpgradeConfigs:    []*hcmv3.HttpConnectionManager_UpgradeConfig{{UpgradeType: "websocket"}},
		HttpFilters:       []*hcmv3.HttpFilter{routerFilter()},
		UseRemoteAddress:  wrapperspb.Bool(true),
		StreamIdleTimeout: durationpb.New(streamIdleTimeout),
	}
	return &listenerv3.Listener{
		Name:    name,
		Address: socketAddress(address, port),
		FilterChains: []*listenerv3.FilterChain{{
			Filters: []*listenerv3.Filter{{
				Name:       hcmFilterName,
				ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(hcm)},
			}},
		}},
	}
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
