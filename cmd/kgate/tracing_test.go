package main

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/kgate/kgate/translator"
)

// --tracing-endpoint and --tracing-sampling-rate reach the translator
// (Envoy's tracer) and build the components' providers; bad values fail
// the start naming the flag; no endpoint is no tracing at all.
func TestTracingFlags(t *testing.T) {
	cfg := localConfig{external: "127.0.0.1:8080", internal: "127.0.0.1:8081",
		tracing: tracingFlags{endpoint: "127.0.0.1:4317", rate: "0.5"}}
	opts, err := listenerOptions(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := (translator.Tracing{CollectorHost: "127.0.0.1", CollectorPort: 4317, SampleRate: 0.5}); opts.Tracing != want {
		t.Errorf("translator tracing %+v, want %+v", opts.Tracing, want)
	}
	tp, stop, err := cfg.tracing.tracerProvider(slog.New(slog.DiscardHandler), "kgate-activator")
	if err != nil || tp == nil {
		t.Fatalf("tracerProvider: %v, %v; want one", tp, err)
	}
	stop()

	off := tracingFlags{rate: "1"}
	if tp, stop, err := off.tracerProvider(slog.New(slog.DiscardHandler), "x"); tp != nil || err != nil {
		t.Errorf("no endpoint: %v, %v; want no provider", tp, err)
	} else {
		stop()
	}
	cfg.tracing = off
	if opts, err := listenerOptions(cfg); err != nil || opts.Tracing.Enabled() {
		t.Errorf("no endpoint: %+v, %v; want no tracing", opts.Tracing, err)
	}

	for _, bad := range []tracingFlags{{endpoint: "collector", rate: "1"}, {endpoint: "c:4317", rate: "1.5"}} {
		cfg.tracing = bad
		_, err := listenerOptions(cfg)
		if err == nil || !strings.HasPrefix(err.Error(), "--tracing-") {
			t.Errorf("%+v: %v, want an error naming the flag", bad, err)
		}
	}
}

// The Kubernetes modes check the flags before reaching the API server, and
// the activator before its control plane.
func TestTracingFlagsRefused(t *testing.T) {
	for _, args := range [][]string{
		{"controller", "--tracing-endpoint", "collector"},
		{"ingress", "--tracing-endpoint", "c:4317", "--tracing-sampling-rate", "2"},
		{"activator", "--tracing-endpoint", "c:4317", "--tracing-sampling-rate", "-1", "--listen", "127.0.0.1:0", "--xds-address", "127.0.0.1:1"},
	} {
		_, err := run(t, args...)
		if err == nil || !strings.Contains(err.Error(), "--tracing-") {
			t.Errorf("kgate %s: %v, want an error naming the flag", strings.Join(args, " "), err)
		}
	}
}
