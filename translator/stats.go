package translator

import (
	"net"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The stats listener: Envoy's Prometheus stats and readiness served to
// scrapers and probes on their own port, as Kourier serves them on 9000,
// while the admin interface, which can change Envoy's state, stays on
// loopback. It is a static listener of the bootstrap whose only routes
// are GET-able paths of the admin interface, forwarded to it through a
// static cluster; every other path is 404.
const (
	// StatsListener and AdminCluster are the bootstrap's static listener
	// and the cluster reaching the admin interface.
	StatsListener = "stats"
	AdminCluster  = "admin"
	// DefaultStatsPort is Kourier's stats port.
	DefaultStatsPort = 9000
	// StatsPath is where Envoy's admin interface serves its stats in
	// Prometheus's text format; ReadyPath answers 200 once Envoy is
	// initialized (its listeners warmed).
	StatsPath = "/stats/prometheus"
	ReadyPath = "/ready"
)

// statsListener is the stats listener on address:port.
func statsListener(address string, port uint32) *listenerv3.Listener {
	var routes []*routev3.Route
	for _, path := range []string{StatsPath, ReadyPath} {
		routes = append(routes, &routev3.Route{
			Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: path}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{
				ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: AdminCluster},
			}},
		})
	}
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: StatsListener,
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
			Name: StatsListener,
			VirtualHosts: []*routev3.VirtualHost{{
				Name:    StatsListener,
				Domains: []string{"*"},
				Routes:  routes,
			}},
		}},
		HttpFilters: []*hcmv3.HttpFilter{routerFilter()},
	}
	return &listenerv3.Listener{
		Name:    StatsListener,
		Address: socketAddress(address, port),
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name:       hcmFilterName,
			ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(hcm)},
		}}}},
	}
}

// adminCluster reaches the admin interface at address:port; an
// unspecified address (0.0.0.0, ::) is reached on loopback.
func adminCluster(address string, port uint32) *clusterv3.Cluster {
	if ip := net.ParseIP(address); ip != nil && ip.IsUnspecified() {
		address = "127.0.0.1"
		if ip.To4() == nil {
			address = "::1"
		}
	}
	return &clusterv3.Cluster{
		Name:                 AdminCluster,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(connectTimeout),
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: AdminCluster,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{
				LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{
					Endpoint: &endpointv3.Endpoint{Address: socketAddress(address, port)},
				}}},
			}},
		},
	}
}
