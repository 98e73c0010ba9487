package devgateway

import (
	"fmt"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// openTelemetryTracer is the only tracer the dev gateway follows.
const openTelemetryTracer = "envoy.tracers.opentelemetry"

// compileTracing reads a connection manager's tracing: whether requests are
// traced. The spans go through Options.TracerProvider, whose exporter and
// sampler the gateway's owner built from the same settings the translator
// put here (collector, random_sampling): the config says that requests
// are traced, not how the gateway exports.
func compileTracing(t *hcmv3.HttpConnectionManager_Tracing) (bool, error) {
	if t == nil {
		return false, nil
	}
	if err := onlyFields(t, "provider", "random_sampling", "spawn_upstream_span"); err != nil {
		return false, fmt.Errorf("tracing: %w", err)
	}
	if name := t.GetProvider().GetName(); name != openTelemetryTracer {
		return false, fmt.Errorf("tracing: tracer %q is not supported by the dev gateway (only %s)", name, openTelemetryTracer)
	}
	return true, nil
}
