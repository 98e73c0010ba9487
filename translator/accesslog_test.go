package translator

import (
	"path/filepath"
	"strings"
	"testing"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// TestAccessLogGolden pins the gateway listeners' access log in JSON and
// with a text format of the user's (the default text format is in every
// other golden file), each valid as Envoy's validation rules say.
func TestAccessLogGolden(t *testing.T) {
	for _, tt := range []struct {
		golden string
		log    AccessLog
	}{
		{"access-log-json.yaml", AccessLog{JSON: true}},
		{"access-log-text.yaml", AccessLog{Format: `%REQ(:AUTHORITY)% %REQ(:PATH)% %RESPONSE_CODE% %DURATION% %UPSTREAM_CLUSTER% %REQ(KNATIVE-SERVING-REVISION)%`}},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			out := Listeners(Options{AccessLog: tt.log})
			assertValid(t, out)
			compareGolden(t, filepath.Join("testdata/out", tt.golden), render(t, out))
		})
	}
}

// TestAccessLogOnByDefault: every gateway listener logs unless disabled,
// and the default line has the fields an operator looks for.
func TestAccessLogOnByDefault(t *testing.T) {
	for _, disabled := range []bool{false, true} {
		out := Listeners(Options{ExternalTLSPort: DefaultExternalTLSPort, InternalTLSPort: DefaultInternalTLSPort, AccessLog: AccessLog{Disabled: disabled}})
		for _, l := range out.Listeners {
			var hcm hcmv3.HttpConnectionManager
			if err := l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
				t.Fatal(err)
			}
			if got := len(hcm.GetAccessLog()); (got == 0) != disabled {
				t.Errorf("listener %s (disabled %v): %d access logs", l.GetName(), disabled, got)
			}
		}
	}
	for _, op := range []string{"%REQ(:AUTHORITY)%", "%REQ(:METHOD)%", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", "%RESPONSE_CODE%",
		"%DURATION%", "%UPSTREAM_CLUSTER%", "%UPSTREAM_HOST%", "%REQ(KNATIVE-SERVING-REVISION)%"} {
		if !strings.Contains(DefaultAccessLogFormat, op) {
			t.Errorf("DefaultAccessLogFormat lacks %s", op)
		}
		found := false
		for _, v := range DefaultAccessLogJSON {
			found = found || v == op
		}
		if !found {
			t.Errorf("DefaultAccessLogJSON lacks %s", op)
		}
	}
}

func TestParseAccessLogJSON(t *testing.T) {
	if f, err := ParseAccessLogJSON(`{"host":"%REQ(:AUTHORITY)%"}`); err != nil || f["host"] != "%REQ(:AUTHORITY)%" {
		t.Errorf("got %v, %v", f, err)
	}
	for _, bad := range []string{``, `{}`, `[]`, `{"a":1}`} {
		if _, err := ParseAccessLogJSON(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
