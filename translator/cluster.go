package translator

import (
	"math"
	"net"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kgate/kgate/translator/model"
)

const (
	connectTimeout = 5 * time.Second
	// upstreamIdleTimeout closes pooled upstream connections before the
	// application does: Node.js and uvicorn close idle keep-alive
	// connections after 5 s, and a request sent on a connection the server
	// is closing fails with 503 (there are no retries to hide it).
	// Reconnecting within a cluster costs little.
	upstreamIdleTimeout = 4 * time.Second
)

// Revision returns one revision's Cluster "<ns>/<rev>": EDS over ADS, so a
// scale or proxy/serve switch only touches its ClusterLoadAssignment.
//
// A revision with an ExternalName (a KIngress backend that is an
// ExternalName Service) is a LOGICAL_DNS cluster instead, its DNS name and
// port the one endpoint of its inline load_assignment, with no EDS: the
// gateway resolves the name itself. LOGICAL_DNS rather than STRICT_DNS:
// grpc-go's xDS client (kgate's proxyless clients read these clusters too)
// supports LOGICAL_DNS and not STRICT_DNS; an ExternalName usually names a
// Service IP or an outside host whose DNS answers rotate, where STRICT_DNS
// would turn every change of the answer into a new host set and drained
// connections, while LOGICAL_DNS opens new connections to the first
// address of the latest answer and keeps the others. V4_PREFERRED rather
// than Envoy's AUTO (IPv6 first): a pod without IPv6 connectivity must not
// pick the AAAA answer of a dual-stack outside name; an IPv6-only answer
// is still used. An invalid ExternalName (not a DNS name or IP, port 0)
// leaves the EDS cluster, which has no endpoints and answers 503.
//
// Load balancing is LEAST_REQUEST (power of two choices on in-flight
// requests): Knative revisions often have low containerConcurrency and
// uneven request durations, and sending the next request to the less busy
// of two pods keeps queues short on slow or just-started pods, where round
// robin would keep feeding them. grpc-go supports it too.
func Revision(rev model.Revision, opts Options) Output {
	name := ClusterName(rev.Key())
	c := &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{
			EdsConfig:   ads(),
			ServiceName: name,
		},
		ConnectTimeout: durationpb.New(connectTimeout),
		LbPolicy:       clusterv3.Cluster_LEAST_REQUEST,
		CircuitBreakers: &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{
			unlimited(corev3.RoutingPriority_DEFAULT),
			unlimited(corev3.RoutingPriority_HIGH),
		}},
		TypedExtensionProtocolOptions: map[string]*anypb.Any{
			upstreamHTTPOptionKey: mustAny(upstreamProtocol(rev.Protocol)),
		},
		Metadata: revisionMetadata(rev),
		// What a revision sends faster than its client reads waits in
		// Envoy's memory up to this much per connection.
		PerConnectionBufferLimitBytes: wrapperspb.UInt32(opts.Limits.WithDefaults().BufferBytes),
	}
	if ext := rev.ExternalName; ext != nil && validExternalName(*ext) {
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_LOGICAL_DNS}
		c.EdsClusterConfig = nil
		c.LoadAssignment = loadAssignment(name, []model.Endpoint{*ext})
		c.DnsLookupFamily = clusterv3.Cluster_V4_PREFERRED
	}
	if opts.LoadReporting {
		c.LrsServer = &corev3.ConfigSource{
			ResourceApiVersion:    corev3.ApiVersion_V3,
			ConfigSourceSpecifier: &corev3.ConfigSource_Self{Self: &corev3.SelfConfigSource{}},
		}
	}
	return Output{Clusters: []*clusterv3.Cluster{c}}
}

// MetadataNamespace is the cluster metadata namespace under which a
// revision cluster carries what the activator enforces and Envoy does not
// read: "revision" (namespace/name), "containerConcurrency" and
// "timeoutSeconds"; and, when the revision has them,
// "responseStartTimeoutSeconds" and "idleTimeoutSeconds" (which the
// activator enforces per revision), "service" and "configuration" (its
// Knative Service and Configuration, which the activator's metrics carry).
const MetadataNamespace = "kgate.dev/revision"

func revisionMetadata(rev model.Revision) *corev3.Metadata {
	fields := map[string]*structpb.Value{
		"revision":             structpb.NewStringValue(rev.Key()),
		"containerConcurrency": structpb.NewNumberValue(float64(rev.ContainerConcurrency)),
		"timeoutSeconds":       structpb.NewNumberValue(rev.Timeout.Seconds()),
	}
	if rev.ResponseStartTimeout > 0 {
		fields["responseStartTimeoutSeconds"] = structpb.NewNumberValue(rev.ResponseStartTimeout.Seconds())
	}
	if rev.IdleTimeout > 0 {
		fields["idleTimeoutSeconds"] = structpb.NewNumberValue(rev.IdleTimeout.Seconds())
	}
	if rev.Service != "" {
		fields["service"] = structpb.NewStringValue(rev.Service)
	}
	if rev.Configuration != "" {
		fields["configuration"] = structpb.NewStringValue(rev.Configuration)
	}
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{MetadataNamespace: {Fields: fields}}}
}

// unlimited lifts Envoy's per-cluster defaults (1024 requests, 1024
// connections, 1024 pending): a busy revision would get 503s from the
// gateway while its pods have room. Admission belongs to the autoscaler and
// the activator's breaker (containerConcurrency), not to the gateway. grpc-go
// honours max_requests too.
func unlimited(p corev3.RoutingPriority) *clusterv3.CircuitBreakers_Thresholds {
	return &clusterv3.CircuitBreakers_Thresholds{
		Priority:           p,
		MaxConnections:     wrapperspb.UInt32(math.MaxUint32),
		MaxPendingRequests: wrapperspb.UInt32(math.MaxUint32),
		MaxRequests:        wrapperspb.UInt32(math.MaxUint32),
		MaxRetries:         wrapperspb.UInt32(math.MaxUint32),
	}
}

// upstreamProtocol speaks HTTP/2 (h2c) to revisions that declare it and
// HTTP/1.1 to the rest.
func upstreamProtocol(p model.Protocol) *upstreamhttpv3.HttpProtocolOptions {
	explicit := &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
		ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{
			HttpProtocolOptions: &corev3.Http1ProtocolOptions{},
		},
	}
	if p == model.H2C {
		explicit.ProtocolConfig = &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
			Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
		}
	}
	return &upstreamhttpv3.HttpProtocolOptions{
		CommonHttpProtocolOptions: &corev3.HttpProtocolOptions{IdleTimeout: durationpb.New(upstreamIdleTimeout)},
		UpstreamProtocolOptions:   &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: explicit},
	}
}

// validExternalName says whether e can be a LOGICAL_DNS cluster's
// endpoint: an IP or a DNS name (a trailing dot allowed) and a port.
func validExternalName(e model.Endpoint) bool {
	if e.Port == 0 || e.Port > 65535 {
		return false
	}
	if net.ParseIP(e.Address) != nil {
		return true
	}
	return len(validation.IsDNS1123Subdomain(strings.TrimSuffix(e.Address, "."))) == 0
}
