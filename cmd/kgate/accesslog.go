package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/kgate/kgate/translator"
)

// accessLogFlags are the gateways' access log settings, Kourier's
// config-kourier enable-service-access-logging and
// service-access-log-template as flags.
type accessLogFlags struct {
	enabled          bool
	format, template string
}

func (f *accessLogFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.enabled, "access-log", true, "one access log line per request on the gateways' standard output (Kourier's enable-service-access-logging)")
	fs.StringVar(&f.format, "access-log-format", "text", "the access log's lines: text or json")
	fs.StringVar(&f.template, "access-log-template", "", "text: an Envoy format string, as Kourier's service-access-log-template; json: a JSON object of format strings by key; empty: kgate's default (docs/observability.md)")
}

// translator is the access log the flags say.
func (f accessLogFlags) translator() (translator.AccessLog, error) {
	a := translator.AccessLog{Disabled: !f.enabled}
	switch f.format {
	case "text", "": // "": a configuration built without the flags
		a.Format = f.template
	case "json":
		a.JSON = true
		if f.template != "" {
			fields, err := translator.ParseAccessLogJSON(f.template)
			if err != nil {
				return a, fmt.Errorf("--access-log-template: %w", err)
			}
			a.JSONFields = fields
		}
	default:
		return a, fmt.Errorf("--access-log-format %q: must be text or json", f.format)
	}
	return a, nil
}
