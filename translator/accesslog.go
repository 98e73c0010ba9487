package translator

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// StdoutAccessLogger is the access logger extension the gateway listeners
// write with: one line per request on Envoy's standard output.
const StdoutAccessLogger = "envoy.access_loggers.stdout"

// DefaultAccessLogFormat is the text access log line: Envoy's own default
// format (what Kourier writes when service-access-log-template is empty)
// followed by the upstream cluster ("<namespace>/<revision>") and the
// revision the route picked (the Knative-Serving-Revision request header
// the weighted cluster sets).
const DefaultAccessLogFormat = `[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" ` +
	`%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% ` +
	`%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" ` +
	`"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER% "%REQ(KNATIVE-SERVING-REVISION)%"` + "\n"

// DefaultAccessLogJSON is the JSON access log line: the fields of
// DefaultAccessLogFormat, one key each.
var DefaultAccessLogJSON = map[string]string{
	"start_time":            "%START_TIME%",
	"method":                "%REQ(:METHOD)%",
	"path":                  "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
	"protocol":              "%PROTOCOL%",
	"response_code":         "%RESPONSE_CODE%",
	"response_flags":        "%RESPONSE_FLAGS%",
	"bytes_received":        "%BYTES_RECEIVED%",
	"bytes_sent":            "%BYTES_SENT%",
	"duration":              "%DURATION%",
	"upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
	"x_forwarded_for":       "%REQ(X-FORWARDED-FOR)%",
	"user_agent":            "%REQ(USER-AGENT)%",
	"request_id":            "%REQ(X-REQUEST-ID)%",
	"authority":             "%REQ(:AUTHORITY)%",
	"upstream_host":         "%UPSTREAM_HOST%",
	"upstream_cluster":      "%UPSTREAM_CLUSTER%",
	"revision":              "%REQ(KNATIVE-SERVING-REVISION)%",
}

// AccessLog configures the access log of every gateway listener's HTTP
// connection manager. The zero value is on, in text, with
// DefaultAccessLogFormat, as Kourier's enable-service-access-logging is
// on by default.
type AccessLog struct {
	// Disabled turns the access log off (Kourier's
	// enable-service-access-logging: "false").
	Disabled bool
	// JSON writes each line as a JSON object of JSONFields; otherwise
	// lines are Format.
	JSON bool
	// Format is an Envoy format string, as Kourier's
	// service-access-log-template: command operators such as
	// %REQ(:AUTHORITY)% between literal text. A newline is added when it
	// does not end with one. Empty means DefaultAccessLogFormat.
	Format string
	// JSONFields are the JSON lines' keys, each with an Envoy format
	// string. Empty means DefaultAccessLogJSON.
	JSONFields map[string]string
}

// ParseAccessLogJSON reads JSON access log fields given as a JSON object
// of strings ({"host": "%REQ(:AUTHORITY)%", ...}), as a flag carries
// them.
func ParseAccessLogJSON(s string) (map[string]string, error) {
	var fields map[string]string
	if err := json.Unmarshal([]byte(s), &fields); err != nil {
		return nil, fmt.Errorf("access log JSON format: want a JSON object of format strings: %w", err)
	}
	if len(fields) == 0 {
		return nil, fmt.Errorf("access log JSON format: no field")
	}
	return fields, nil
}

// accessLogs returns the connection manager's access_log: none when
// disabled, else one standard output logger with the format.
func accessLogs(a AccessLog) []*accesslogv3.AccessLog {
	if a.Disabled {
		return nil
	}
	var format *corev3.SubstitutionFormatString
	if a.JSON {
		fields := a.JSONFields
		if len(fields) == 0 {
			fields = DefaultAccessLogJSON
		}
		s := &structpb.Struct{Fields: map[string]*structpb.Value{}}
		for _, k := range slices.Sorted(maps.Keys(fields)) {
			s.Fields[k] = structpb.NewStringValue(fields[k])
		}
		format = &corev3.SubstitutionFormatString{Format: &corev3.SubstitutionFormatString_JsonFormat{JsonFormat: s}}
	} else {
		text := orDefault(a.Format, DefaultAccessLogFormat)
		if !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		format = &corev3.SubstitutionFormatString{Format: &corev3.SubstitutionFormatString_TextFormatSource{
			TextFormatSource: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: text}},
		}}
	}
	return []*accesslogv3.AccessLog{{
		Name: StdoutAccessLogger,
		ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: mustAny(&streamv3.StdoutAccessLog{
			AccessLogFormat: &streamv3.StdoutAccessLog_LogFormat{LogFormat: format},
		})},
	}}
}
