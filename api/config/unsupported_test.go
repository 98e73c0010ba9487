package config

import (
	"maps"
	"strings"
	"testing"
)

func TestUnsupported(t *testing.T) {
	type want struct {
		key     string
		status  KeyStatus
		why     string // a part of Why
		suggest string
	}
	tests := []struct {
		name      string
		configMap string
		data      map[string]string
		want      []want
	}{
		{
			name:      "keys kgate reads, and the example, are not reported",
			configMap: NetworkConfigName,
			data: map[string]string{
				ExampleKey: "anything", "domain-template": "{{.Name}}.{{.Domain}}", "domainTemplate": "{{.Name}}.{{.Domain}}",
				"tag-template": "{{.Tag}}-{{.Name}}", "auto-tls": "Disabled", "external-domain-tls": "Disabled",
				"cluster-local-domain-tls": "Disabled", "http-protocol": "Enabled", "autocreate-cluster-domain-claims": "true",
				"autocreateClusterDomainClaims": "true", "namespace-wildcard-cert-selector": "",
			},
		},
		{
			name:      "Knative's keys kgate does not support say why",
			configMap: NetworkConfigName,
			data:      map[string]string{"ingress-class": "kourier.ingress.networking.knative.dev", "ingress.class": "x", "autoTLS": "Enabled"},
			want: []want{
				{key: "autoTLS", status: KeyNotSupported, why: "external-domain-tls"},
				{key: "ingress-class", status: KeyNotSupported, why: "kgate is the ingress"},
				{key: "ingress.class", status: KeyNotSupported, why: "kgate is the ingress"},
			},
		},
		{
			name:      "an unknown key gets the closest known key",
			configMap: NetworkConfigName,
			data:      map[string]string{"domain-tempate": "{{.Name}}", "extrenal-domain-tls": "Enabled", "foo": "bar"},
			want: []want{
				{key: "domain-tempate", status: KeyUnknown, suggest: "domain-template"},
				{key: "extrenal-domain-tls", status: KeyUnknown, suggest: "external-domain-tls"},
				{key: "foo", status: KeyUnknown},
			},
		},
		{
			name:      "a misspelt key of a ConfigMap that does not parse is still reported",
			configMap: NetworkConfigName,
			data:      map[string]string{"http-protocol": "Sometimes", "tag-templat": "x"},
			want:      []want{{key: "tag-templat", status: KeyUnknown, suggest: "tag-template"}},
		},
		{
			name:      "camelCase and underscores are matched to Knative's spelling",
			configMap: AutoscalerConfigName,
			data:      map[string]string{"enableScaleToZero": "false", "stable_window": "30s"},
			want: []want{
				{key: "enableScaleToZero", status: KeyUnknown, suggest: "enable-scale-to-zero"},
				{key: "stable_window", status: KeyUnknown, suggest: "stable-window"},
			},
		},
		{
			name:      "every config-defaults key Knative reads is read (enable-service-links too)",
			configMap: DefaultsConfigName,
			data: map[string]string{
				"container-name-template": "user-container", "init-container-name-template": "init-container",
				"allow-container-concurrency-zero": "true", "enable-service-links": "default",
				"revision-timeout-seconds": "300", "max-revision-timeout-seconds": "600", "revision-idle-timeout-seconds": "0",
				"revision-response-start-timeout-seconds": "300", "container-concurrency": "0", "container-concurrency-max-limit": "1000",
				"revision-cpu-request": "100m", "revision-memory-request": "100M", "revision-ephemeral-storage-request": "500M",
				"revision-cpu-limit": "1", "revision-memory-limit": "200M", "revision-ephemeral-storage-limit": "750M",
			},
		},
		{
			name:      "every config-autoscaler key Knative reads is read",
			configMap: AutoscalerConfigName,
			data: map[string]string{
				"pod-autoscaler-class": ClassKPA, "enable-scale-to-zero": "true", "allow-zero-initial-scale": "false",
				"max-scale-up-rate": "1000", "max-scale-down-rate": "2", "container-concurrency-target-percentage": "70",
				"container-concurrency-target-default": "100", "requests-per-second-target-default": "200",
				"target-burst-capacity": "211", "panic-window-percentage": "10", "activator-capacity": "100",
				"panic-threshold-percentage": "200", "initial-scale": "1", "min-scale": "0", "max-scale": "0",
				"max-scale-limit": "0", "stable-window": "60s", "scale-down-delay": "0s",
				"scale-to-zero-grace-period": "30s", "scale-to-zero-pod-retention-period": "0s",
			},
		},
		{
			name:      "every config-gc key Knative reads is read (a parser added later is known without a list)",
			configMap: GCConfigName,
			data: map[string]string{
				"retain-since-create-time": "48h", "retain-since-last-active-time": "disabled",
				"min-non-active-revisions": "20", "max-non-active-revisions": "1000",
			},
		},
		{
			name:      "rollout-duration, in both spellings, is read",
			configMap: NetworkConfigName,
			data:      map[string]string{"rollout-duration": "120", "rolloutDuration": "60"},
		},
		{
			name:      "config-domain's keys are domains: none is unsupported",
			configMap: DomainConfigName,
			data:      map[string]string{"example.com": "", "ingress-class": "x"},
		},
		{
			name:      "every key of a Knative ConfigMap kgate does not read is not supported",
			configMap: "config-features",
			data:      map[string]string{ExampleKey: "x", "kubernetes.podspec-fieldref": "enabled", "multi-container": "enabled"},
			want: []want{
				{key: "kubernetes.podspec-fieldref", status: KeyNotSupported, why: "kgate does not read config-features"},
				{key: "multi-container", status: KeyNotSupported, why: "kgate does not read config-features"},
			},
		},
		{
			name:      "config-certmanager, which only kgate controller reads",
			configMap: "config-certmanager",
			data:      map[string]string{"issuerRef": "kind: ClusterIssuer"},
			want:      []want{{key: "issuerRef", status: KeyNotSupported, why: "its own CA"}},
		},
		{
			name:      "a ConfigMap neither kgate's nor Knative's is none of kgate's business",
			configMap: "my-app-settings",
			data:      map[string]string{"colour": "blue"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := maps.Clone(tt.data)
			got := Unsupported(tt.configMap, tt.data)
			if !maps.Equal(before, tt.data) {
				t.Errorf("Unsupported changed the data: %v, was %v", tt.data, before)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Unsupported = %+v, want keys %+v", got, tt.want)
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Key != w.key || g.Value != tt.data[w.key] || g.Status != w.status || g.Suggest != w.suggest || !strings.Contains(g.Why, w.why) {
					t.Errorf("key %d = %+v, want %+v with value %q", i, g, w, tt.data[w.key])
				}
				if (g.Status == KeyNotSupported) != strings.Contains(g.Message(), "not supported by kgate") {
					t.Errorf("key %s: message %q does not say %s", g.Key, g.Message(), g.Status)
				}
				if g.Status == KeyNotSupported && g.Why == "" {
					t.Errorf("key %s is not supported without saying why", g.Key)
				}
			}
		})
	}
}

// The keys a parser reads are recorded whatever the values, and only in
// the probe's own copy: parsing a ConfigMap's data never writes to it.
func TestKeysRead(t *testing.T) {
	tests := []struct {
		configMap string
		data      map[string]string
		want      []string // among the keys read
		known     bool
	}{
		{configMap: NetworkConfigName, want: []string{"domain-template", "domainTemplate", "http-protocol", "namespace-wildcard-cert-selector"}, known: true},
		{configMap: NetworkConfigName, data: map[string]string{"http-protocol": "bad"}, want: []string{"tag-template", "autocreate-cluster-domain-claims"}, known: true},
		{configMap: DefaultsConfigName, data: map[string]string{"revision-timeout-seconds": "x"}, want: []string{"enable-service-links", "revision-response-start-timeout-seconds"}, known: true},
		{configMap: AutoscalerConfigName, want: []string{"pod-autoscaler-class", "scale-to-zero-pod-retention-period"}, known: true},
		{configMap: "config-features", known: false},
	}
	for _, tt := range tests {
		data := maps.Clone(tt.data)
		read, known := keysRead(tt.configMap, data)
		if known != tt.known {
			t.Errorf("%s: known %v, want %v", tt.configMap, known, tt.known)
		}
		for _, k := range tt.want {
			if !read[k] {
				t.Errorf("%s %v: %s not among the keys read %v", tt.configMap, tt.data, k, read)
			}
		}
		if !maps.Equal(data, tt.data) {
			t.Errorf("%s: keysRead changed the data to %v", tt.configMap, data)
		}
	}
	data := map[string]string{"domain-template": "{{.Name}}.{{.Domain}}"}
	if _, err := ParseNetwork(data); err != nil || len(data) != 1 {
		t.Errorf("ParseNetwork: error %v, data after %v; want it left alone", err, data)
	}
}

func TestClosest(t *testing.T) {
	candidates := []string{"stable-window", "scale-down-delay", "min-scale", "max-scale", "enable-scale-to-zero"}
	tests := []struct{ key, want string }{
		{"stable-windw", "stable-window"},
		{"minScale", "min-scale"},
		{"MAX_SCALE", "max-scale"},
		{"max-scal", "max-scale"},
		{"scale-dwon-delay", "scale-down-delay"}, // two edits
		{"mix-scale", "min-scale"},               // nearest first: max-scale is as near; the first wins
		{"foo", ""},
		{"sca", ""},    // too short to guess
		{"stable", ""}, // too far
	}
	for _, tt := range tests {
		if got := closest(tt.key, candidates); got != tt.want {
			t.Errorf("closest(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}
