package activator

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
)

// httpProtocolOptionsKey is where a cluster's upstream HTTP options live
// in typed_extension_protocol_options (Envoy's extension name).
const httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// revisionOf reads what the activator needs of a revision cluster: its
// revision's key and configuration. ok is false for a cluster that carries
// no revision metadata, which is not a revision's.
func revisionOf(c *clusterv3.Cluster) (key string, cfg RevisionConfig, ok bool, err error) {
	md, ok := c.GetMetadata().GetFilterMetadata()[translator.MetadataNamespace]
	if !ok {
		return "", RevisionConfig{}, false, nil
	}
	fields := md.GetFields()
	key = fields["revision"].GetStringValue()
	if ns, name, found := strings.Cut(key, "/"); !found || ns == "" || name == "" {
		return "", RevisionConfig{}, true, fmt.Errorf("metadata %s: revision %q is not namespace/name", translator.MetadataNamespace, key)
	}
	cc, err := wholeNumber(fields, "containerConcurrency")
	if err != nil {
		return "", RevisionConfig{}, true, err
	}
	timeout, err := wholeNumber(fields, "timeoutSeconds")
	if err != nil {
		return "", RevisionConfig{}, true, err
	}
	start, err := wholeNumber(fields, "responseStartTimeoutSeconds")
	if err != nil {
		return "", RevisionConfig{}, true, err
	}
	idle, err := wholeNumber(fields, "idleTimeoutSeconds")
	if err != nil {
		return "", RevisionConfig{}, true, err
	}
	protocol, err := protocolOf(c)
	if err != nil {
		return "", RevisionConfig{}, true, err
	}
	return key, RevisionConfig{
		ContainerConcurrency: cc,
		Protocol:             protocol,
		Timeout:              time.Duration(timeout) * time.Second,
		ResponseStartTimeout: time.Duration(start) * time.Second,
		IdleTimeout:          time.Duration(idle) * time.Second,
		Service:              fields["service"].GetStringValue(),
		Configuration:        fields["configuration"].GetStringValue(),
	}, true, nil
}

// wholeNumber reads a non-negative whole number from revision metadata; a
// missing field is 0, the default of every such field.
func wholeNumber(fields map[string]*structpb.Value, name string) (int, error) {
	v, ok := fields[name]
	if !ok {
		return 0, nil
	}
	n, isNumber := v.GetKind().(*structpb.Value_NumberValue)
	if !isNumber || n.NumberValue < 0 || n.NumberValue != math.Trunc(n.NumberValue) || n.NumberValue > math.MaxInt32 {
		return 0, fmt.Errorf("metadata %s: %s %v is not a whole number from 0", translator.MetadataNamespace, name, v.AsInterface())
	}
	return int(n.NumberValue), nil
}

// protocolOf reads what the pods speak from the cluster's upstream HTTP
// options: HTTP/2 there means h2c (the pods have no TLS), anything else
// HTTP/1.1.
func protocolOf(c *clusterv3.Cluster) (model.Protocol, error) {
	a, ok := c.GetTypedExtensionProtocolOptions()[httpProtocolOptionsKey]
	if !ok {
		return model.HTTP1, nil
	}
	var opts upstreamhttpv3.HttpProtocolOptions
	if err := a.UnmarshalTo(&opts); err != nil {
		return "", fmt.Errorf("decoding %s: %w", httpProtocolOptionsKey, err)
	}
	if opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil {
		return model.H2C, nil
	}
	return model.HTTP1, nil
}

// podsOf reads the pods of a revision's "<ns>/<rev>/pods" load assignment:
// every endpoint of every locality that Envoy would send requests to.
func podsOf(cla *endpointv3.ClusterLoadAssignment) ([]model.Endpoint, error) {
	var pods []model.Endpoint
	for _, locality := range cla.GetEndpoints() {
		for _, lb := range locality.GetLbEndpoints() {
			switch lb.GetHealthStatus() {
			case corev3.HealthStatus_UNHEALTHY, corev3.HealthStatus_DRAINING, corev3.HealthStatus_TIMEOUT:
				continue
			}
			sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
			port, isPort := sa.GetPortSpecifier().(*corev3.SocketAddress_PortValue)
			if sa.GetAddress() == "" || !isPort {
				return nil, errors.New("an endpoint has no socket address with a port number")
			}
			pods = append(pods, model.Endpoint{Address: sa.GetAddress(), Port: port.PortValue})
		}
	}
	return pods, nil
}
