package devgateway

import (
	"strings"
	"testing"

	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
)

func TestCompileTracing(t *testing.T) {
	otel := &tracev3.Tracing_Http{Name: openTelemetryTracer}
	for _, tt := range []struct {
		name string
		in   *hcmv3.HttpConnectionManager_Tracing
		want bool
		err  string
	}{
		{name: "none", in: nil},
		{name: "OpenTelemetry", in: &hcmv3.HttpConnectionManager_Tracing{Provider: otel, RandomSampling: &typev3.Percent{Value: 10}}, want: true},
		{name: "another tracer", in: &hcmv3.HttpConnectionManager_Tracing{Provider: &tracev3.Tracing_Http{Name: "envoy.tracers.zipkin"}},
			err: `tracer "envoy.tracers.zipkin" is not supported`},
		{name: "a field not followed", in: &hcmv3.HttpConnectionManager_Tracing{Provider: otel, Verbose: true}, err: "verbose"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := compileTracing(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one with %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}
