package translator

import (
	"math"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/kgate/kgate/translator/model"
)

// Tracing names the OpenTelemetry collector the gateways send spans to
// over OTLP/gRPC, and the share of requests they trace. The zero value
// traces nothing.
type Tracing struct {
	// CollectorHost and CollectorPort are the collector's address (a DNS
	// name or an IP); tracing is on when both are set.
	CollectorHost string
	CollectorPort uint32
	// SampleRate is the probability, from 0 to 1, that a request that
	// arrives without a trace decision is traced (random_sampling).
	SampleRate float64
	// ServiceName is the service.name of the gateways' spans; empty means
	// DefaultTracingServiceName.
	ServiceName string
}

// Enabled says whether the gateways trace.
func (t Tracing) Enabled() bool { return t.CollectorHost != "" && t.CollectorPort != 0 }

const (
	// TracingCluster is the collector's Cluster. It has no "/", so no
	// revision's cluster ("<namespace>/<revision>") can take its name.
	TracingCluster = "kgate-tracing-collector"
	// DefaultTracingServiceName is the service.name of the gateways' spans.
	DefaultTracingServiceName = "kgate-gateway"
	// openTelemetryTracer is Envoy's OpenTelemetry tracer.
	openTelemetryTracer = "envoy.tracers.opentelemetry"
	// tracingExportTimeout bounds one export to the collector.
	tracingExportTimeout = 5 * time.Second
)

// connManagerTracing is the connection manager's tracing: Envoy's
// OpenTelemetry tracer exporting to TracingCluster over gRPC, a server
// span per request and a client span per upstream request
// (spawn_upstream_span), W3C traceparent propagated. A request whose
// traceparent already carries a decision keeps it; the others are sampled
// at SampleRate. nil when tracing is off.
func connManagerTracing(t Tracing) *hcmv3.HttpConnectionManager_Tracing {
	if !t.Enabled() {
		return nil
	}
	name := t.ServiceName
	if name == "" {
		name = DefaultTracingServiceName
	}
	return &hcmv3.HttpConnectionManager_Tracing{
		RandomSampling:    &typev3.Percent{Value: samplePercent(t.SampleRate)},
		SpawnUpstreamSpan: wrapperspb.Bool(true),
		Provider: &tracev3.Tracing_Http{
			Name: openTelemetryTracer,
			ConfigType: &tracev3.Tracing_Http_TypedConfig{TypedConfig: mustAny(&tracev3.OpenTelemetryConfig{
				GrpcService: &corev3.GrpcService{
					TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: TracingCluster}},
					Timeout:         durationpb.New(tracingExportTimeout),
				},
				ServiceName: name,
			})},
		},
	}
}

// tracingCluster is the collector as a LOGICAL_DNS cluster speaking
// HTTP/2 (gRPC): the one address of its name, re-resolved as DNS says
// (LOGICAL_DNS rather than STRICT_DNS for the reason Revision gives:
// grpc-go's xDS client reads clusters too). nil when tracing is off.
func tracingCluster(t Tracing) *clusterv3.Cluster {
	if !t.Enabled() {
		return nil
	}
	return &clusterv3.Cluster{
		Name:                 TracingCluster,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_LOGICAL_DNS},
		DnsLookupFamily:      clusterv3.Cluster_V4_PREFERRED,
		ConnectTimeout:       durationpb.New(connectTimeout),
		LoadAssignment:       loadAssignment(TracingCluster, []model.Endpoint{{Address: t.CollectorHost, Port: t.CollectorPort}}),
		TypedExtensionProtocolOptions: map[string]*anypb.Any{
			upstreamHTTPOptionKey: mustAny(&upstreamhttpv3.HttpProtocolOptions{
				UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
					ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
						Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
					},
				}},
			}),
		},
	}
}

// samplePercent is a rate from 0 to 1 as Envoy's percent, to four
// decimals (0.1 is 10, not 10.000000000000002); out of range is clamped,
// NaN is 0.
func samplePercent(rate float64) float64 {
	if math.IsNaN(rate) {
		return 0
	}
	return math.Round(min(max(rate, 0), 1)*1e6) / 1e4
}
