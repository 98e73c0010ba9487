package main

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// The access log flags, as Kourier's config-kourier keys: on and text by
// default, json with a template of format strings, errors naming the flag.
func TestAccessLogFlags(t *testing.T) {
	parse := func(args ...string) (accessLogFlags, error) {
		var f accessLogFlags
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		f.register(fs)
		return f, fs.Parse(args)
	}
	f, _ := parse()
	if a, err := f.translator(); err != nil || a.Disabled || a.JSON || a.Format != "" {
		t.Errorf("defaults: %+v, %v", a, err)
	}
	f, _ = parse("--access-log=false")
	if a, _ := f.translator(); !a.Disabled {
		t.Errorf("--access-log=false: %+v", a)
	}
	f, _ = parse("--access-log-template", "%REQ(:AUTHORITY)% %RESPONSE_CODE%")
	if a, _ := f.translator(); a.Format != "%REQ(:AUTHORITY)% %RESPONSE_CODE%" {
		t.Errorf("template: %+v", a)
	}
	f, _ = parse("--access-log-format", "json", "--access-log-template", `{"host":"%REQ(:AUTHORITY)%"}`)
	if a, err := f.translator(); err != nil || !a.JSON || a.JSONFields["host"] != "%REQ(:AUTHORITY)%" {
		t.Errorf("json: %+v, %v", a, err)
	}
	for _, args := range [][]string{{"--access-log-format", "xml"}, {"--access-log-format", "json", "--access-log-template", "%REQ(:AUTHORITY)%"}} {
		f, _ = parse(args...)
		if _, err := f.translator(); err == nil || !strings.Contains(err.Error(), "--access-log-") {
			t.Errorf("%v: %v", args, err)
		}
	}
}
