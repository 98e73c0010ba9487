package config

import (
	"math"
	"strings"
	"testing"
)

func TestParseTracing(t *testing.T) {
	grpc := func(host string, port uint32, rate float64) func(*Tracing) {
		return func(tr *Tracing) { *tr = Tracing{Protocol: TracingGRPC, Host: host, Port: port, SampleRate: rate} }
	}
	const cm = "config-observability: "
	tests := []parseCase[Tracing]{
		{name: "empty is no tracing", data: nil, want: func(*Tracing) {}},
		{name: "none", data: map[string]string{"tracing-protocol": "none"}, want: func(*Tracing) {}},
		{name: "none with a rate", data: map[string]string{"tracing-sampling-rate": "0.5"}, want: func(tr *Tracing) { tr.SampleRate = 0.5 }},
		{name: "grpc host:port", data: map[string]string{"tracing-protocol": "grpc", "tracing-endpoint": "otel.observability:4317", "tracing-sampling-rate": "0.1"},
			want: grpc("otel.observability", 4317, 0.1)},
		{name: "grpc, any case, http URL", data: map[string]string{"tracing-protocol": " GRPC", "tracing-endpoint": "http://10.0.0.1:4317/", "tracing-sampling-rate": "1"},
			want: grpc("10.0.0.1", 4317, 1)},
		{name: "IPv6", data: map[string]string{"tracing-protocol": "grpc", "tracing-endpoint": "[::1]:4317"}, want: grpc("::1", 4317, 0)},
		{name: "rate 0", data: map[string]string{"tracing-protocol": "grpc", "tracing-endpoint": "c:1", "tracing-sampling-rate": "0"}, want: grpc("c", 1, 0)},

		{name: "unknown protocol", data: map[string]string{"tracing-protocol": "zipkin"},
			err: cm + `tracing-protocol: "zipkin" is not none or grpc`},
		{name: "OTLP/HTTP", data: map[string]string{"tracing-protocol": "http/protobuf", "tracing-endpoint": "http://c:4318/v1/traces"},
			err: cm + `tracing-protocol: "http/protobuf" is not supported: kgate exports OTLP over gRPC (grpc) only`},
		{name: "endpoint without protocol", data: map[string]string{"tracing-endpoint": "c:4317"},
			err: cm + `tracing-endpoint: "c:4317" is set but tracing-protocol is none: set tracing-protocol grpc to trace`},
		{name: "grpc without endpoint", data: map[string]string{"tracing-protocol": "grpc"},
			err: cm + `tracing-endpoint: is required when tracing-protocol is grpc (the collector's host:port)`},
		{name: "rate above 1", data: map[string]string{"tracing-sampling-rate": "1.1"},
			err: cm + `tracing-sampling-rate: 1.1 is not between 0 and 1`},
		{name: "rate below 0", data: map[string]string{"tracing-sampling-rate": "-0.1"},
			err: cm + `tracing-sampling-rate: -0.1 is not between 0 and 1`},
		{name: "rate NaN", data: map[string]string{"tracing-sampling-rate": "NaN"},
			err: cm + `tracing-sampling-rate: "NaN" is not a finite number`},
		{name: "rate not a number", data: map[string]string{"tracing-sampling-rate": "10%"},
			err: cm + `tracing-sampling-rate: "10%" is not a number`},
		{name: "no port", data: map[string]string{"tracing-protocol": "grpc", "tracing-endpoint": "collector"},
			err: cm + `tracing-endpoint: "collector" is not host:port: address collector: missing port in address`},
		{name: "port 0", data: map[string]string{"tracing-protocol": "grpc", "tracing-endpoint": "c:0"},
			err: cm + `tracing-endpoint: "c:0": port "0" is not from 1 to 65535`},
		{name: "port too large", data: map[string]string{"tracing-protocol": "grpc", "tracing-endpoint": "c:65536"},
			err: cm + `tracing-endpoint: "c:65536": port "65536" is not from 1 to 65535`},
		{name: "empty host", data: map[string]string{"tracing-protocol": "grpc", "tracing-endpoint": ":4317"},
			err: cm + `tracing-endpoint: ":4317": "" is not a host name or IP`},
		{name: "https", data: map[string]string{"tracing-protocol": "grpc", "tracing-endpoint": "https://c:4317"},
			err: cm + `tracing-endpoint: "https://c:4317": TLS to the collector is not supported; use http://host:port`},
		{name: "OTLP/HTTP path", data: map[string]string{"tracing-protocol": "grpc", "tracing-endpoint": "http://c:4318/v1/traces"},
			err: cm + `tracing-endpoint: "http://c:4318/v1/traces": OTLP/gRPC takes no path (/v1/traces is OTLP/HTTP's)`},
		{name: "other scheme", data: map[string]string{"tracing-protocol": "grpc", "tracing-endpoint": "dns://c:4317"},
			err: cm + `tracing-endpoint: "dns://c:4317": scheme "dns" is not http`},
	}
	runParseCases(t, tests, ParseTracing, DefaultTracing, nil)
}

func TestTracingFlags(t *testing.T) {
	tr, err := TracingFlags("127.0.0.1:4317", "0.25")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Tracing{Protocol: TracingGRPC, Host: "127.0.0.1", Port: 4317, SampleRate: 0.25}); tr != want || tr.Endpoint() != "127.0.0.1:4317" || !tr.Enabled() {
		t.Errorf("got %+v (%s), want %+v", tr, tr.Endpoint(), want)
	}
	if tr, err := TracingFlags("", "1"); err != nil || tr.Enabled() || tr.Endpoint() != "" {
		t.Errorf("no endpoint: %+v, %v; want tracing off", tr, err)
	}
	for _, tt := range []struct{ endpoint, rate, err string }{
		{"c:4317", "2", `--tracing-sampling-rate: 2 is not between 0 and 1`},
		{"c", "1", `--tracing-endpoint: "c" is not host:port`},
	} {
		_, err := TracingFlags(tt.endpoint, tt.rate)
		if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
			t.Errorf("TracingFlags(%q, %q) = %v, want %s...", tt.endpoint, tt.rate, err, tt.err)
		}
	}
}

// FuzzParseTracing: whatever the data, a parsed Tracing is bounded.
func FuzzParseTracing(f *testing.F) {
	f.Add("grpc", "c:4317", "0.5")
	f.Add("none", "", "1e400")
	f.Fuzz(func(t *testing.T, proto, endpoint, rate string) {
		tr, err := ParseTracing(map[string]string{"tracing-protocol": proto, "tracing-endpoint": endpoint, "tracing-sampling-rate": rate})
		if err != nil {
			return
		}
		if math.IsNaN(tr.SampleRate) || tr.SampleRate < 0 || tr.SampleRate > 1 {
			t.Fatalf("rate %v out of bounds", tr.SampleRate)
		}
		if tr.Enabled() && (tr.Host == "" || tr.Port == 0) {
			t.Fatalf("enabled without a collector: %+v", tr)
		}
	})
}
