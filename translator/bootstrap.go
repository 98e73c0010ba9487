package translator

import (
	"fmt"
	"net"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	overloadv3 "github.com/envoyproxy/go-control-plane/envoy/config/overload/v3"
	downstreamconnsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/downstream_connections/v3"
	fixedheapv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/fixed_heap/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// XDSCluster is the bootstrap's static cluster that reaches the control plane.
const XDSCluster = "xds"

// Admin defaults: loopback only, since the admin interface can change
// Envoy's state.
const (
	DefaultAdminAddress = "127.0.0.1"
	DefaultAdminPort    = 9901
)

// BootstrapOptions describe the Envoy that reads the bootstrap and where its
// control plane is.
type BootstrapOptions struct {
	// NodeID and NodeCluster identify the Envoy to the control plane;
	// NodeID is required, NodeCluster defaults to "kgate".
	NodeID      string
	NodeCluster string
	// XDSAddress (an IP, or a DNS name resolved by Envoy) and XDSPort locate
	// the control plane's ADS gRPC server; both are required.
	XDSAddress string
	XDSPort    uint32
	// Delta selects incremental ADS (DELTA_GRPC) instead of state of the world.
	Delta bool
	// AdminAddress and AdminPort are where the admin interface binds
	// (default 127.0.0.1:9901).
	AdminAddress string
	AdminPort    uint32
	// StatsAddress and StatsPort, when the port is set, add the stats
	// listener (see StatsListener): Envoy's /stats/prometheus and /ready
	// on that address, routed to the admin interface, which stays where
	// it is. Usually 0.0.0.0:9000 (DefaultStatsPort); 0 means none.
	StatsAddress string
	StatsPort    uint32
	// MaxHeapBytes is the heap the overload manager measures Envoy's memory
	// against (fixed_heap): at 95 % of it Envoy returns free memory to the
	// system, at 98 % it answers new requests 503, so that a flood ends in
	// refused requests instead of an out-of-memory kill that drops every
	// connection. 0 means DefaultMaxHeapBytes.
	MaxHeapBytes uint64
	// MaxDownstreamConnections bounds the connections Envoy's listeners
	// hold at once (global_downstream_max_connections); beyond it new ones
	// are closed at once. 0 means DefaultMaxDownstreamConnections.
	MaxDownstreamConnections int64
	// XDSTLS, when set, authenticates the xDS stream with mutual TLS; nil
	// dials the control plane in plaintext, which is for a development
	// server on loopback only.
	XDSTLS *BootstrapTLS
}

// Overload defaults.
const (
	// DefaultMaxHeapBytes is three quarters of the 1 GiB memory limit the
	// install gives a gateway: the heap is not all of Envoy's memory
	// (binary, stacks, kernel buffers), and the overload manager must act
	// before the container's limit does.
	DefaultMaxHeapBytes = 768 << 20
	// DefaultMaxDownstreamConnections is Envoy's edge example; keep it
	// under half the process's file descriptor limit, which upstream
	// connections share.
	DefaultMaxDownstreamConnections = 50_000
)

// Bootstrap returns an Envoy bootstrap that takes listeners and clusters,
// and through them everything else, over one ADS stream to the control
// plane, and reports load to it over LRS.
func Bootstrap(opts BootstrapOptions) (*bootstrapv3.Bootstrap, error) {
	var errs field.ErrorList
	if opts.NodeID == "" {
		errs = append(errs, field.Required(field.NewPath("nodeID"), "identifies the Envoy to the control plane"))
	}
	if opts.XDSAddress == "" {
		errs = append(errs, field.Required(field.NewPath("xdsAddress"), "the control plane's address"))
	}
	if opts.XDSPort == 0 || opts.XDSPort > 65535 {
		errs = append(errs, field.Invalid(field.NewPath("xdsPort"), opts.XDSPort, "must be between 1 and 65535"))
	}
	if opts.AdminPort > 65535 {
		errs = append(errs, field.Invalid(field.NewPath("adminPort"), opts.AdminPort, "must be between 1 and 65535"))
	}
	if opts.StatsPort > 65535 {
		errs = append(errs, field.Invalid(field.NewPath("statsPort"), opts.StatsPort, "must be between 1 and 65535"))
	}
	if opts.MaxDownstreamConnections < 0 {
		errs = append(errs, field.Invalid(field.NewPath("maxDownstreamConnections"), opts.MaxDownstreamConnections, "must not be negative"))
	}
	errs = append(errs, opts.XDSTLS.validate(field.NewPath("xdsTLS"))...)
	if err := errs.ToAggregate(); err != nil {
		return nil, fmt.Errorf("bootstrap options: %w", err)
	}

	apiType := corev3.ApiConfigSource_GRPC
	if opts.Delta {
		apiType = corev3.ApiConfigSource_DELTA_GRPC
	}
	b := &bootstrapv3.Bootstrap{
		Node: &corev3.Node{Id: opts.NodeID, Cluster: orDefault(opts.NodeCluster, "kgate")},
		DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{
			AdsConfig: &corev3.ApiConfigSource{
				ApiType:             apiType,
				TransportApiVersion: corev3.ApiVersion_V3,
				GrpcServices: []*corev3.GrpcService{{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
					EnvoyGrpc: xdsGrpc(),
				}}},
				SetNodeOnFirstMessageOnly: true,
			},
			LdsConfig: ads(),
			CdsConfig: ads(),
		},
		// Envoy reports per-cluster load (LRS) to the control plane, which
		// scales revisions on it: no sidecar in the pods.
		ClusterManager: &bootstrapv3.ClusterManager{LoadStatsConfig: &corev3.ApiConfigSource{
			ApiType:             corev3.ApiConfigSource_GRPC,
			TransportApiVersion: corev3.ApiVersion_V3,
			GrpcServices: []*corev3.GrpcService{{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
				EnvoyGrpc: xdsGrpc(),
			}}},
		}},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{
			Clusters: []*clusterv3.Cluster{xdsCluster(opts.XDSAddress, opts.XDSPort, opts.XDSTLS)},
		},
		Admin: &bootstrapv3.Admin{
			Address: socketAddress(
				orDefault(opts.AdminAddress, DefaultAdminAddress),
				orDefault(opts.AdminPort, DefaultAdminPort),
			),
			// Stats and /ready stay reachable at the connection limit.
			IgnoreGlobalConnLimit: true,
		},
		OverloadManager: overloadManager(
			orDefault(opts.MaxHeapBytes, DefaultMaxHeapBytes),
			orDefault(opts.MaxDownstreamConnections, DefaultMaxDownstreamConnections),
		),
	}
	if opts.StatsPort != 0 {
		adminAddr, adminPort := orDefault(opts.AdminAddress, DefaultAdminAddress), orDefault(opts.AdminPort, DefaultAdminPort)
		b.StaticResources.Listeners = append(b.StaticResources.Listeners, statsListener(orDefault(opts.StatsAddress, DefaultAddress), opts.StatsPort))
		b.StaticResources.Clusters = append(b.StaticResources.Clusters, adminCluster(adminAddr, adminPort))
	}
	if err := validateDeep(b); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	return b, nil
}

// xdsCluster reaches the control plane over HTTP/2 (gRPC), with keepalive
// pings so that a vanished control plane is noticed and the stream
// re-dialed, in mutual TLS when tls is set. It keeps Envoy's 1 MiB
// per_connection_buffer_limit_bytes rather than the edge's 32 KiB: it
// carries the control plane's config, trusted and large, and a small
// buffer only makes Envoy read a big push in more, slower rounds.
func xdsCluster(address string, port uint32, tls *BootstrapTLS) *clusterv3.Cluster {
	discovery := clusterv3.Cluster_STATIC
	if net.ParseIP(address) == nil {
		discovery = clusterv3.Cluster_STRICT_DNS
	}
	h2 := &upstreamhttpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
					Http2ProtocolOptions: &corev3.Http2ProtocolOptions{
						ConnectionKeepalive: &corev3.KeepaliveSettings{
							Interval: durationpb.New(30 * time.Second),
							Timeout:  durationpb.New(5 * time.Second),
						},
					},
				},
			},
		},
	}
	c := &clusterv3.Cluster{
		Name:                 XDSCluster,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: discovery},
		ConnectTimeout:       durationpb.New(connectTimeout),
		TypedExtensionProtocolOptions: map[string]*anypb.Any{
			upstreamHTTPOptionKey: mustAny(h2),
		},
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: XDSCluster,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{
				LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{
					Endpoint: &endpointv3.Endpoint{Address: socketAddress(address, port)},
				}}},
			}},
		},
	}
	if tls != nil {
		c.TransportSocket = xdsTransportSocket(address, tls)
	}
	return c
}

// Overload manager extension names.
const (
	fixedHeapMonitor       = "envoy.resource_monitors.fixed_heap"
	downstreamConnsMonitor = "envoy.resource_monitors.global_downstream_max_connections"
	shrinkHeapAction       = "envoy.overload_actions.shrink_heap"
	stopRequestsAction     = "envoy.overload_actions.stop_accepting_requests"
)

// overloadManager is Envoy's edge advice: watch the heap against a fixed
// maximum, return free memory at 95 % and refuse new requests at 98 %;
// bound the connections of every listener together.
func overloadManager(maxHeap uint64, maxConns int64) *overloadv3.OverloadManager {
	return &overloadv3.OverloadManager{
		RefreshInterval: durationpb.New(250 * time.Millisecond),
		ResourceMonitors: []*overloadv3.ResourceMonitor{
			{Name: fixedHeapMonitor, ConfigType: &overloadv3.ResourceMonitor_TypedConfig{
				TypedConfig: mustAny(&fixedheapv3.FixedHeapConfig{MaxHeapSizeBytes: maxHeap}),
			}},
			{Name: downstreamConnsMonitor, ConfigType: &overloadv3.ResourceMonitor_TypedConfig{
				TypedConfig: mustAny(&downstreamconnsv3.DownstreamConnectionsConfig{MaxActiveDownstreamConnections: maxConns}),
			}},
		},
		Actions: []*overloadv3.OverloadAction{
			heapAction(shrinkHeapAction, 0.95),
			heapAction(stopRequestsAction, 0.98),
		},
	}
}

func heapAction(name string, threshold float64) *overloadv3.OverloadAction {
	return &overloadv3.OverloadAction{
		Name: name,
		Triggers: []*overloadv3.Trigger{{
			Name:         fixedHeapMonitor,
			TriggerOneof: &overloadv3.Trigger_Threshold{Threshold: &overloadv3.ThresholdTrigger{Value: threshold}},
		}},
	}
}

// XDSRetryBase and XDSRetryMax pace Envoy's reconnections to the control
// plane (Envoy's defaults are 500 ms and 30 s): a gateway finds the new
// leader within 5 s of it serving, where a 15-second leader change (the
// Lease's duration) would otherwise leave it backing off for up to 16 s
// more.
const (
	XDSRetryBase = 250 * time.Millisecond
	XDSRetryMax  = 5 * time.Second
)

// xdsGrpc is the control plane's gRPC service for the ADS and LRS streams.
func xdsGrpc() *corev3.GrpcService_EnvoyGrpc {
	return &corev3.GrpcService_EnvoyGrpc{
		ClusterName: XDSCluster,
		RetryPolicy: &corev3.RetryPolicy{RetryBackOff: &corev3.BackoffStrategy{
			BaseInterval: durationpb.New(XDSRetryBase),
			MaxInterval:  durationpb.New(XDSRetryMax),
		}},
	}
}
