package translator

import (
	"fmt"
	"net"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
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
}

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
					EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: XDSCluster},
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
				EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: XDSCluster},
			}}},
		}},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{
			Clusters: []*clusterv3.Cluster{xdsCluster(opts.XDSAddress, opts.XDSPort)},
		},
		Admin: &bootstrapv3.Admin{Address: socketAddress(
			orDefault(opts.AdminAddress, DefaultAdminAddress),
			orDefault(opts.AdminPort, DefaultAdminPort),
		)},
	}
	if err := b.ValidateAll(); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	return b, nil
}

// xdsCluster reaches the control plane over HTTP/2 (gRPC), with keepalive
// pings so that a vanished control plane is noticed and the stream re-dialed.
func xdsCluster(address string, port uint32) *clusterv3.Cluster {
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
	return &clusterv3.Cluster{
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
}
