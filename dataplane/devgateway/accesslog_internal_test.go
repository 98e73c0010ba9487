package devgateway

import (
	"strings"
	"testing"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/kgate/kgate/translator"
)

// The dev gateway compiles every access log the translator makes, and
// refuses, by name, an operator it cannot write (the listener is NACKed
// rather than logged with less than it says).
func TestAccessLogFormats(t *testing.T) {
	compile := func(a translator.AccessLog) error {
		l := translator.Listeners(translator.Options{AccessLog: a}).Listeners[0]
		var hcm hcmv3.HttpConnectionManager
		if err := l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
			t.Fatal(err)
		}
		_, err := compileConnManager(&hcm)
		return err
	}
	for _, ok := range []translator.AccessLog{{}, {JSON: true}, {Disabled: true}, {Format: "%REQ(:AUTHORITY)% %RESP(content-type)%"},
		{Format: "%REQUEST_HEADER(:METHOD)% %REQUEST_HEADER(X-ENVOY-ORIGINAL-PATH?:PATH)% %RESPONSE_HEADER(X-ENVOY-UPSTREAM-SERVICE-TIME)%"},
		{JSON: true, JSONFields: map[string]string{"line": "%REQ(:METHOD)% %REQ(:PATH)% took %DURATION% ms"}}} {
		if err := compile(ok); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
	for format, want := range map[string]string{
		"%UPSTREAM_TRANSPORT_FAILURE_REASON%": "%UPSTREAM_TRANSPORT_FAILURE_REASON% is not supported by the dev gateway",
		"%REQ(:PATH):10%":                     "a length limit is not supported",
		"%START_TIME(%s)%":                    "is not",
		"100% sure, 50% not":                  "is not a command operator",
		"%REQ()%":                             "names no header",
		"trailing %":                          "opens no command operator",
	} {
		err := compile(translator.AccessLog{Format: format})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("format %q: got %v, want an error with %q", format, err, want)
		}
	}
}
