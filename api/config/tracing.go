package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// ObservabilityConfigName is the ConfigMap Knative reads its tracing
// settings from (since Knative 1.18; the older config-tracing named a
// Zipkin backend, which kgate does not speak).
const ObservabilityConfigName = "config-observability"

// The keys of config-observability that Tracing reads.
const (
	TracingProtocolKey     = "tracing-protocol"
	TracingEndpointKey     = "tracing-endpoint"
	TracingSamplingRateKey = "tracing-sampling-rate"
)

// The values of tracing-protocol. Knative also knows "http/protobuf";
// kgate exports OTLP over gRPC only, which Envoy's OpenTelemetry tracer
// speaks too.
const (
	TracingNone = "none"
	TracingGRPC = "grpc"
)

// Tracing is where the gateways and the activator send spans: an OTLP/gRPC
// collector and the share of requests traced.
type Tracing struct {
	// Protocol is TracingNone (no tracing, the default) or TracingGRPC.
	Protocol string
	// Host and Port name the collector (tracing-endpoint, "host:port" or
	// "http://host:port"); set when Protocol is TracingGRPC.
	Host string
	Port uint32
	// SampleRate is the probability, from 0 to 1, that a request not
	// already traced by its client is (tracing-sampling-rate).
	SampleRate float64
}

// DefaultTracing is Knative's default: no tracing.
func DefaultTracing() Tracing { return Tracing{Protocol: TracingNone} }

// Enabled says whether spans are exported.
func (t Tracing) Enabled() bool { return t.Protocol == TracingGRPC }

// Endpoint is the collector's "host:port", "" when tracing is off.
func (t Tracing) Endpoint() string {
	if !t.Enabled() {
		return ""
	}
	return net.JoinHostPort(t.Host, strconv.FormatUint(uint64(t.Port), 10))
}

// ParseTracing reads the tracing keys of config-observability.
func ParseTracing(data map[string]string) (Tracing, error) {
	return parseTracing(ObservabilityConfigName, "", data)
}

// TracingFlags reads the same settings from command-line flags named
// "--tracing-endpoint" and "--tracing-sampling-rate": an endpoint turns
// tracing on (protocol grpc), none leaves it off.
func TracingFlags(endpoint, rate string) (Tracing, error) {
	data := map[string]string{TracingSamplingRateKey: rate}
	if endpoint != "" {
		data[TracingProtocolKey] = TracingGRPC
		data[TracingEndpointKey] = endpoint
	}
	t, err := parseTracing("flags", "--", data)
	if err != nil {
		// "flags: --tracing-endpoint: ..." reads better without its source.
		return Tracing{}, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "flags: "))
	}
	return t, nil
}

func parseTracing(source, keyPrefix string, data map[string]string) (Tracing, error) {
	t := DefaultTracing()
	p := &parser{configMap: source, data: map[string]string{}}
	for k, v := range data {
		p.data[keyPrefix+k] = v
	}
	protocolKey, endpointKey, rateKey := keyPrefix+TracingProtocolKey, keyPrefix+TracingEndpointKey, keyPrefix+TracingSamplingRateKey
	if v, ok := p.get(protocolKey); ok {
		switch proto := strings.ToLower(strings.TrimSpace(v)); proto {
		case "", TracingNone:
			t.Protocol = TracingNone
		case TracingGRPC:
			t.Protocol = TracingGRPC
		case "http/protobuf":
			p.fail(protocolKey, "%q is not supported: kgate exports OTLP over gRPC (grpc) only", v)
		default:
			p.fail(protocolKey, "%q is not none or grpc", v)
		}
	}
	p.float(rateKey, &t.SampleRate)
	if t.SampleRate < 0 || t.SampleRate > 1 {
		p.fail(rateKey, "%v is not between 0 and 1", t.SampleRate)
	}
	ep, _ := p.get(endpointKey)
	if t.Protocol == TracingNone && strings.TrimSpace(ep) != "" {
		p.fail(endpointKey, "%q is set but %s is none: set %s grpc to trace", ep, TracingProtocolKey, TracingProtocolKey)
	}
	if t.Protocol == TracingGRPC && p.err == nil {
		host, port, err := collectorAddress(ep)
		if err != nil {
			p.fail(endpointKey, "%v", err)
		}
		t.Host, t.Port = host, port
	}
	if p.err != nil {
		return Tracing{}, p.err
	}
	return t, nil
}

// collectorAddress reads an OTLP/gRPC endpoint: "host:port", or
// "http://host:port" as Knative's examples write it (no path: gRPC has its
// own). Plaintext only: kgate has no client certificate for a collector.
func collectorAddress(ep string) (string, uint32, error) {
	ep = strings.TrimSpace(ep)
	if ep == "" {
		return "", 0, fmt.Errorf("is required when tracing-protocol is grpc (the collector's host:port)")
	}
	if strings.Contains(ep, "://") {
		u, err := url.Parse(ep)
		if err != nil {
			return "", 0, fmt.Errorf("%q is not host:port or http://host:port", ep)
		}
		switch {
		case u.Scheme == "https":
			return "", 0, fmt.Errorf("%q: TLS to the collector is not supported; use http://host:port", ep)
		case u.Scheme != "http":
			return "", 0, fmt.Errorf("%q: scheme %q is not http", ep, u.Scheme)
		case u.Path != "" && u.Path != "/":
			return "", 0, fmt.Errorf("%q: OTLP/gRPC takes no path (%s is OTLP/HTTP's)", ep, u.Path)
		}
		ep = u.Host
	}
	host, port, err := net.SplitHostPort(ep)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port: %v", ep, err)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("%q: port %q is not from 1 to 65535", ep, port)
	}
	if host == "" || len(host) > 253 || strings.ContainsAny(host, " /?#@") {
		return "", 0, fmt.Errorf("%q: %q is not a host name or IP", ep, host)
	}
	return host, uint32(n), nil
}
