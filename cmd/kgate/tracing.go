package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/trace"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/dataplane/tracing"
	"github.com/kgate/kgate/translator"
)

// tracingFlags are --tracing-endpoint and --tracing-sampling-rate, the
// flag form of config-observability's tracing-endpoint and
// tracing-sampling-rate (tracing-protocol grpc when an endpoint is given).
type tracingFlags struct {
	endpoint, rate string
}

func (f *tracingFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.endpoint, "tracing-endpoint", "", "host:port of an OpenTelemetry collector (OTLP/gRPC, plaintext) to send request spans to; empty: no tracing")
	fs.StringVar(&f.rate, "tracing-sampling-rate", "1", "the probability, from 0 to 1, that a request arriving without a trace decision is traced")
}

// config is the flags parsed and checked as config-observability is.
func (f tracingFlags) config() (config.Tracing, error) {
	return config.TracingFlags(f.endpoint, f.rate)
}

// translator is the gateways' tracing: Envoy's OpenTelemetry tracer to
// the collector, at the sampling rate.
func (f tracingFlags) translator() (translator.Tracing, error) {
	t, err := f.config()
	if err != nil || !t.Enabled() {
		return translator.Tracing{}, err
	}
	return translator.Tracing{CollectorHost: t.Host, CollectorPort: t.Port, SampleRate: t.SampleRate}, nil
}

// tracerProvider is the TracerProvider of the component named service when
// the flags turn tracing on, nil otherwise; stop flushes its last spans
// (within 5 s) and closes it.
func (f tracingFlags) tracerProvider(log *slog.Logger, service string) (tp trace.TracerProvider, stop func(), err error) {
	t, err := f.config()
	if err != nil || !t.Enabled() {
		return nil, func() {}, err
	}
	sdk, err := tracing.NewProvider(context.Background(), tracing.ProviderOptions{
		Endpoint: t.Endpoint(), SampleRate: t.SampleRate, ServiceName: service,
	})
	if err != nil {
		return nil, func() {}, err
	}
	log.Info("tracing", "service", service, "collector", t.Endpoint(), "sampling_rate", t.SampleRate)
	return sdk, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := sdk.Shutdown(ctx); err != nil {
			log.Warn("tracing: the last spans were not sent", "service", service, "error", err)
		}
	}, nil
}
