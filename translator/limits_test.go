package translator

import (
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/kgate/kgate/translator/model"
)

// gatewayHCM returns the connection manager of the external listener
// Listeners(opts) emits, and that listener's buffer limit.
func gatewayHCM(t *testing.T, opts Options) (*hcmv3.HttpConnectionManager, uint32) {
	t.Helper()
	out := Listeners(opts)
	assertValid(t, out)
	l := out.Listeners[0]
	var hcm hcmv3.HttpConnectionManager
	if err := l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		t.Fatal(err)
	}
	return &hcm, l.GetPerConnectionBufferLimitBytes().GetValue()
}

// The limits reach the connection manager: the defaults for zero values,
// an operator's values otherwise, a negative duration disabling its timeout.
func TestListenerLimits(t *testing.T) {
	tests := []struct {
		name  string
		opts  Options
		check func(t *testing.T, hcm *hcmv3.HttpConnectionManager, buffer uint32)
	}{
		{name: "edge defaults", check: func(t *testing.T, hcm *hcmv3.HttpConnectionManager, buffer uint32) {
			common, h2 := hcm.GetCommonHttpProtocolOptions(), hcm.GetHttp2ProtocolOptions()
			for _, c := range []struct {
				what      string
				got, want any
			}{
				{"buffer", buffer, uint32(32 << 10)},
				{"request_headers_timeout", hcm.GetRequestHeadersTimeout().AsDuration(), 10 * time.Second},
				{"stream_idle_timeout", hcm.GetStreamIdleTimeout().AsDuration(), 300 * time.Second},
				{"idle_timeout", common.GetIdleTimeout().AsDuration(), time.Hour},
				{"max_request_headers_kb", hcm.GetMaxRequestHeadersKb().GetValue(), uint32(60)},
				{"max_headers_count", common.GetMaxHeadersCount().GetValue(), uint32(100)},
				{"headers_with_underscores_action", common.GetHeadersWithUnderscoresAction(), corev3.HttpProtocolOptions_REJECT_REQUEST},
				{"max_concurrent_streams", h2.GetMaxConcurrentStreams().GetValue(), uint32(100)},
				{"initial_stream_window_size", h2.GetInitialStreamWindowSize().GetValue(), uint32(64 << 10)},
				{"initial_connection_window_size", h2.GetInitialConnectionWindowSize().GetValue(), uint32(1 << 20)},
				{"use_remote_address", hcm.GetUseRemoteAddress().GetValue(), true},
				{"xff_num_trusted_hops", hcm.GetXffNumTrustedHops(), uint32(0)},
				{"normalize_path", hcm.GetNormalizePath().GetValue(), true},
				{"merge_slashes", hcm.GetMergeSlashes(), true},
				{"path_with_escaped_slashes_action", hcm.GetPathWithEscapedSlashesAction(), hcmv3.HttpConnectionManager_KEEP_UNCHANGED},
				{"request_timeout", hcm.GetRequestTimeout(), (*durationpb.Duration)(nil)},
			} {
				if c.got != c.want {
					t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
				}
			}
		}},
		{name: "operator's values", opts: Options{XFFNumTrustedHops: 1, Limits: Limits{
			BufferBytes: 1 << 20, RequestHeadersTimeout: time.Second, StreamIdleTimeout: time.Minute, ConnectionIdleTimeout: time.Minute,
			MaxRequestHeadersKiB: 96, MaxHeadersCount: 200, MaxConcurrentStreams: 50, InitialStreamWindowBytes: 1 << 20,
			InitialConnectionWindowBytes: 4 << 20, PathWithEscapedSlashes: hcmv3.HttpConnectionManager_REJECT_REQUEST,
			AllowHeadersWithUnderscores: true,
		}}, check: func(t *testing.T, hcm *hcmv3.HttpConnectionManager, buffer uint32) {
			common, h2 := hcm.GetCommonHttpProtocolOptions(), hcm.GetHttp2ProtocolOptions()
			if buffer != 1<<20 || hcm.GetXffNumTrustedHops() != 1 || hcm.GetRequestHeadersTimeout().AsDuration() != time.Second ||
				hcm.GetStreamIdleTimeout().AsDuration() != time.Minute || common.GetIdleTimeout().AsDuration() != time.Minute ||
				hcm.GetMaxRequestHeadersKb().GetValue() != 96 || common.GetMaxHeadersCount().GetValue() != 200 ||
				h2.GetMaxConcurrentStreams().GetValue() != 50 || h2.GetInitialStreamWindowSize().GetValue() != 1<<20 ||
				h2.GetInitialConnectionWindowSize().GetValue() != 4<<20 ||
				hcm.GetPathWithEscapedSlashesAction() != hcmv3.HttpConnectionManager_REJECT_REQUEST ||
				common.GetHeadersWithUnderscoresAction() != corev3.HttpProtocolOptions_ALLOW {
				t.Errorf("the connection manager does not carry the options: %v (buffer %d)", hcm, buffer)
			}
		}},
		{name: "negative durations disable", opts: Options{Limits: Limits{RequestHeadersTimeout: -1, StreamIdleTimeout: -1, ConnectionIdleTimeout: -1}},
			check: func(t *testing.T, hcm *hcmv3.HttpConnectionManager, _ uint32) {
				for what, d := range map[string]time.Duration{
					"request_headers_timeout": hcm.GetRequestHeadersTimeout().AsDuration(),
					"stream_idle_timeout":     hcm.GetStreamIdleTimeout().AsDuration(),
					"idle_timeout":            hcm.GetCommonHttpProtocolOptions().GetIdleTimeout().AsDuration(),
				} {
					if d != 0 {
						t.Errorf("%s = %v, want 0s (disabled)", what, d)
					}
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hcm, buffer := gatewayHCM(t, tt.opts)
			tt.check(t, hcm, buffer)
		})
	}
}

// A route timeout longer than the stream idle timeout becomes the route's
// idle timeout, so that a late response is not cut; other routes keep the
// connection manager's.
func TestRouteIdleTimeout(t *testing.T) {
	tests := []struct {
		name       string
		route      time.Duration
		streamIdle time.Duration
		want       time.Duration // 0: none set
	}{
		{"shorter than the stream idle timeout", 60 * time.Second, 0, 0},
		{"Knative's default, equal", 300 * time.Second, 0, 0},
		{"Knative's maximum, longer", 600 * time.Second, 0, 600 * time.Second},
		{"no route timeout", 0, 0, 0},
		{"stream idle timeout disabled", 600 * time.Second, -1, 0},
		{"stream idle timeout raised", 600 * time.Second, time.Hour, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := model.Service{Namespace: "default", Name: "s", VirtualHosts: []model.VirtualHost{{
				Host: "s.default.example.com", Visibility: model.External,
				Routes: []model.Route{{PathPrefix: "/", Splits: []model.Split{{Revision: "default/s-1", Percent: 100}}, Timeout: tt.route}},
			}}}
			out := Service(svc, Options{Limits: Limits{StreamIdleTimeout: tt.streamIdle}})
			assertValid(t, out)
			action := out.Routes[0].GetVirtualHosts()[0].GetRoutes()[0].GetRoute()
			if got := action.GetIdleTimeout().AsDuration(); got != tt.want || (tt.want == 0) != (action.GetIdleTimeout() == nil) {
				t.Errorf("idle_timeout = %v, want %v", action.GetIdleTimeout(), tt.want)
			}
			if got := action.GetTimeout().AsDuration(); got != tt.route {
				t.Errorf("timeout = %v, want the route's %v", got, tt.route)
			}
		})
	}
}

func TestLimitsValidate(t *testing.T) {
	tests := []struct {
		name    string
		limits  Limits
		wantErr string
	}{
		{"defaults", Limits{}, ""},
		{"headers too large for Envoy", Limits{MaxRequestHeadersKiB: 8193}, "limits.maxRequestHeadersKiB"},
		{"stream window too small", Limits{InitialStreamWindowBytes: 1024}, "limits.initialStreamWindowBytes"},
		{"connection window too large", Limits{InitialConnectionWindowBytes: 1 << 31}, "limits.initialConnectionWindowBytes"},
		{"unknown path action", Limits{PathWithEscapedSlashes: 42}, "limits.pathWithEscapedSlashes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.limits.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to name %s", err, tt.wantErr)
			}
		})
	}
}
