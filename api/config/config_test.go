package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// parseCase is a row of a ConfigMap parser's table: the data, and either
// the changes from the defaults it yields or its error.
type parseCase[T any] struct {
	name string
	data map[string]string
	want func(*T) // changes from the defaults
	err  string
}

// runParseCases checks parse against each case; normalize, when set,
// clears what reflect.DeepEqual cannot compare.
func runParseCases[T any](t *testing.T, cases []parseCase[T], parse func(map[string]string) (T, error), defaults func() T, normalize func(*T)) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse(tt.data)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error = %v\nwant    %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := defaults()
			tt.want(&want)
			if normalize != nil {
				normalize(&got)
				normalize(&want)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestParseDefaults(t *testing.T) {
	tests := []parseCase[Defaults]{
		{name: "empty is Knative's defaults", data: nil, want: func(*Defaults) {}},
		{name: "the example key is not configuration", data: map[string]string{ExampleKey: "revision-timeout-seconds: x"}, want: func(*Defaults) {}},
		{name: "timeouts; response start follows the revision timeout",
			data: map[string]string{"revision-timeout-seconds": "120", "max-revision-timeout-seconds": "900", "revision-idle-timeout-seconds": "60"},
			want: func(d *Defaults) {
				d.RevisionTimeoutSeconds, d.MaxRevisionTimeoutSeconds, d.RevisionIdleTimeoutSeconds = 120, 900, 60
				d.RevisionResponseStartTimeoutSeconds = 120
			}},
		{name: "concurrency", data: map[string]string{"container-concurrency": "10", "container-concurrency-max-limit": "100", "allow-container-concurrency-zero": "false"},
			want: func(d *Defaults) {
				d.ContainerConcurrency, d.ContainerConcurrencyMaxLimit, d.AllowContainerConcurrencyZero = 10, 100, false
			}},
		{name: "timeout above max", data: map[string]string{"revision-timeout-seconds": "700"},
			err: "config-defaults: revision-timeout-seconds: 700 cannot be greater than max-revision-timeout-seconds (600)"},
		{name: "response start above timeout", data: map[string]string{"revision-response-start-timeout-seconds": "301"},
			err: "config-defaults: revision-response-start-timeout-seconds: 301 cannot be greater than revision-timeout-seconds (300)"},
		{name: "idle above timeout", data: map[string]string{"revision-idle-timeout-seconds": "301"},
			err: "config-defaults: revision-idle-timeout-seconds: 301 cannot be greater than revision-timeout-seconds (300)"},
		{name: "concurrency above its limit", data: map[string]string{"container-concurrency": "1001"},
			err: "config-defaults: container-concurrency: expected 0 <= 1001 <= 1000"},
		{name: "limit below 1", data: map[string]string{"container-concurrency-max-limit": "0"},
			err: "config-defaults: container-concurrency-max-limit: expected 1 <= 0 <= 2147483647"},
		{name: "not an integer", data: map[string]string{"revision-timeout-seconds": "5m"},
			err: `config-defaults: revision-timeout-seconds: "5m" is not an integer`},
		{name: "bad quantity", data: map[string]string{"revision-memory-limit": "lots"},
			err: `config-defaults: revision-memory-limit: "lots" is not a resource quantity: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`},
		{name: "bad template", data: map[string]string{"container-name-template": "{{.Nope}}"},
			err: `config-defaults: container-name-template: executing template: template: container-name-template:1:2: executing "container-name-template" at <.Nope>: can't evaluate field Nope in type v1.ObjectMeta`},
		{name: "bad service links", data: map[string]string{"enable-service-links": "maybe"},
			err: `config-defaults: enable-service-links: "maybe" is not one of true, false, default`},
	}
	// The name templates are functions: compared by TestContainerNames.
	runParseCases(t, tests, ParseDefaults, DefaultDefaults, func(d *Defaults) { d.containerName, d.initContainerName = nil, nil })
}

func TestContainerNames(t *testing.T) {
	d, err := ParseDefaults(map[string]string{"container-name-template": "{{.Name}}-app"})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.UserContainerName(metav1.ObjectMeta{Name: "hello"}); got != "hello-app" {
		t.Errorf("UserContainerName = %q, want hello-app", got)
	}
	if got := DefaultDefaults().InitContainerName(metav1.ObjectMeta{Name: "hello"}); got != "init-container" {
		t.Errorf("InitContainerName = %q, want init-container", got)
	}
	// A hand-built Defaults still names containers.
	if got := (Defaults{ContainerNameTemplate: "c"}).UserContainerName(metav1.ObjectMeta{}); got != "c" {
		t.Errorf("UserContainerName = %q, want c", got)
	}
}

func TestParseAutoscaler(t *testing.T) {
	tests := []parseCase[Autoscaler]{
		{name: "empty is Knative's defaults", want: func(*Autoscaler) {}},
		{name: "every key",
			data: map[string]string{
				"pod-autoscaler-class": "hpa.autoscaling.knative.dev", "enable-scale-to-zero": "false", "allow-zero-initial-scale": "true",
				"max-scale-up-rate": "10", "max-scale-down-rate": "4", "container-concurrency-target-percentage": "80",
				"container-concurrency-target-default": "50", "requests-per-second-target-default": "100", "target-burst-capacity": "-1",
				"panic-window-percentage": "20", "panic-threshold-percentage": "300", "activator-capacity": "50",
				"initial-scale": "0", "min-scale": "1", "max-scale": "10", "max-scale-limit": "20",
				"stable-window": "2m", "scale-down-delay": "30s", "scale-to-zero-grace-period": "45s", "scale-to-zero-pod-retention-period": "1m",
			},
			want: func(a *Autoscaler) {
				*a = Autoscaler{PodAutoscalerClass: ClassHPA, EnableScaleToZero: false, AllowZeroInitialScale: true,
					MaxScaleUpRate: 10, MaxScaleDownRate: 4, TargetUtilization: 0.8, ContainerConcurrencyTargetDefault: 50,
					RPSTargetDefault: 100, TargetBurstCapacity: -1, PanicWindowPercentage: 20, PanicThresholdPercentage: 300,
					ActivatorCapacity: 50, InitialScale: 0, MinScale: 1, MaxScale: 10, MaxScaleLimit: 20,
					StableWindow: 2 * time.Minute, ScaleDownDelay: 30 * time.Second, ScaleToZeroGracePeriod: 45 * time.Second,
					ScaleToZeroPodRetentionPeriod: time.Minute}
			}},
		{name: "utilization as a fraction", data: map[string]string{"container-concurrency-target-percentage": "0.5"},
			want: func(a *Autoscaler) { a.TargetUtilization = 0.5 }},
		{name: "stable window too short", data: map[string]string{"stable-window": "5s"},
			err: "config-autoscaler: stable-window: 5s, must be in [6s; 1h0m0s] range"},
		{name: "stable window imprecise", data: map[string]string{"stable-window": "6500ms"},
			err: "config-autoscaler: stable-window: 6.5s, must be specified with at most second precision"},
		{name: "grace period", data: map[string]string{"scale-to-zero-grace-period": "0s"},
			err: "config-autoscaler: scale-to-zero-grace-period: must be positive, was: 0s"},
		{name: "burst capacity", data: map[string]string{"target-burst-capacity": "-2"},
			err: "config-autoscaler: target-burst-capacity: must be either non-negative or -1 (for unlimited), was: -2"},
		{name: "utilization above 100", data: map[string]string{"container-concurrency-target-percentage": "101"},
			err: "config-autoscaler: container-concurrency-target-percentage: 101 is outside of valid range of (0, 100]"},
		{name: "scale-up rate", data: map[string]string{"max-scale-up-rate": "1"},
			err: "config-autoscaler: max-scale-up-rate: 1, must be greater than 1.0"},
		{name: "panic window", data: map[string]string{"panic-window-percentage": "101"},
			err: "config-autoscaler: panic-window-percentage: 101, must be in [1, 100] interval"},
		{name: "initial scale 0 without consent", data: map[string]string{"initial-scale": "0"},
			err: "config-autoscaler: initial-scale: 0, must be at least 0 (or at least 1 when allow-zero-initial-scale is false)"},
		{name: "max scale above its limit", data: map[string]string{"max-scale": "30", "max-scale-limit": "20"},
			err: "config-autoscaler: max-scale: 30, must be in [1, max-scale-limit(20)] range"},
		{name: "min above max", data: map[string]string{"min-scale": "3", "max-scale": "2"},
			err: "config-autoscaler: min-scale: 3 must be less than max-scale (2)"},
		{name: "unknown class", data: map[string]string{"pod-autoscaler-class": "kpa"},
			err: `config-autoscaler: pod-autoscaler-class: "kpa" is not one of kpa.autoscaling.knative.dev, hpa.autoscaling.knative.dev`},
		{name: "not a boolean", data: map[string]string{"enable-scale-to-zero": "yes please"},
			err: `config-autoscaler: enable-scale-to-zero: "yes please" is not a boolean (want true or false)`},
		{name: "not a duration", data: map[string]string{"scale-down-delay": "10"},
			err: `config-autoscaler: scale-down-delay: "10" is not a duration (such as 30s or 1m)`},
	}
	runParseCases(t, tests, ParseAutoscaler, DefaultAutoscaler, nil)
}

func TestDomain(t *testing.T) {
	d, err := ParseDomain(map[string]string{
		ExampleKey:             "ignored: [",
		"10.104.46.103.nip.io": "",
		"prod.example.com":     "selector:\n  app: prod\n",
		"team.example.com":     "selector:\n  app: prod\n  team: a\n",
		"a.example.com":        "selector:\n  app: prod\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		labels map[string]string
		want   string
	}{
		{nil, "10.104.46.103.nip.io"},
		{map[string]string{"app": "dev"}, "10.104.46.103.nip.io"},
		{map[string]string{"app": "prod"}, "a.example.com"}, // ties go to the smaller name
		{map[string]string{"app": "prod", "team": "a"}, "team.example.com"},
		{map[string]string{"networking.knative.dev/visibility": "cluster-local"}, "svc.cluster.local"},
	}
	for _, tt := range tests {
		if got := d.For(tt.labels); got != tt.want {
			t.Errorf("For(%v) = %q, want %q", tt.labels, got, tt.want)
		}
	}

	if got := DefaultDomain().For(nil); got != "example.com" {
		t.Errorf("default domain = %q, want example.com", got)
	}
	// Only selective entries: example.com still serves the rest.
	d, err = ParseDomain(map[string]string{"prod.example.com": "selector:\n  app: prod\n"})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.For(nil); got != "example.com" {
		t.Errorf("For(nil) = %q, want example.com", got)
	}

	for data, want := range map[string]string{
		"Bad_Domain": `config-domain: Bad_Domain: not a valid domain: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
		"ok.com":     `config-domain: ok.com: value must be empty or "selector:" with labels: error unmarshaling JSON: while decoding JSON: json: unknown field "selectr"`,
	} {
		value := "selectr:\n  app: x\n"
		if _, err := ParseDomain(map[string]string{data: value}); err == nil || err.Error() != want {
			t.Errorf("ParseDomain(%q) error = %v\nwant %s", data, err, want)
		}
	}
}

func TestNetwork(t *testing.T) {
	n := DefaultNetwork()
	host, err := n.Host(DomainTemplateValues{Name: "hello", Namespace: "default", Domain: "example.com"})
	if err != nil || host != "hello.default.example.com" {
		t.Errorf("Host = %q, %v; want hello.default.example.com", host, err)
	}
	host, err = n.TagHost("blue", DomainTemplateValues{Name: "hello", Namespace: "default", Domain: "example.com"})
	if err != nil || host != "blue-hello.default.example.com" {
		t.Errorf("TagHost = %q, %v; want blue-hello.default.example.com", host, err)
	}

	n, err = ParseNetwork(map[string]string{"domain-template": "{{.Name}}-{{.Namespace}}.{{.Domain}}", "tagTemplate": "{{.Name}}-{{.Tag}}", "ingress-class": "ignored"})
	if err != nil {
		t.Fatal(err)
	}
	host, err = n.TagHost("blue", DomainTemplateValues{Name: "hello", Namespace: "ns", Domain: "nip.io"})
	if err != nil || host != "hello-blue-ns.nip.io" {
		t.Errorf("TagHost = %q, %v; want hello-blue-ns.nip.io", host, err)
	}

	for _, tt := range []struct {
		data map[string]string
		err  string
	}{
		{map[string]string{"domain-template": "{{.Name}"}, `config-network: domain-template: template: domain-template:1: bad character U+007D '}'`},
		{map[string]string{"domain-template": "{{.Name}}.{{.Domain}}/path"}, "config-network: domain-template: domain template has url path: /path"},
		{map[string]string{"domain-template": "{{.Nme}}"}, `config-network: domain-template: template: domain-template:1:2: executing "domain-template" at <.Nme>: can't evaluate field Nme in type config.DomainTemplateValues`},
		{map[string]string{"domain-template": ""}, "config-network: domain-template: empty hostname"},
		{map[string]string{"tag-template": "{{.Tg}}"}, `config-network: tag-template: template: tag-template:1:2: executing "tag-template" at <.Tg>: can't evaluate field Tg in type config.TagTemplateValues`},
	} {
		if _, err := ParseNetwork(tt.data); err == nil || err.Error() != tt.err {
			t.Errorf("ParseNetwork(%v) error = %v\nwant %s", tt.data, err, tt.err)
		}
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	if c.Defaults.RevisionTimeoutSeconds != 300 || c.Autoscaler.StableWindow != time.Minute || c.Domain.For(nil) != "example.com" || c.Network.DomainTemplate != DefaultDomainTemplate {
		t.Errorf("Default() = %+v", c)
	}
}

func TestAutoscalerBounded(t *testing.T) {
	tests := []struct {
		name                   string
		maxScale, limit, ceil  int32
		wantMaxScale, wantLimt int32
	}{
		{name: "no ceiling", ceil: 0, wantMaxScale: 0, wantLimt: 0},
		{name: "the ceiling where none is set", ceil: 8, wantMaxScale: 8, wantLimt: 8},
		{name: "a lower max-scale stays", maxScale: 3, ceil: 8, wantMaxScale: 3, wantLimt: 8},
		{name: "a higher max-scale comes down", maxScale: 20, ceil: 8, wantMaxScale: 8, wantLimt: 8},
		{name: "the ConfigMap's own limit wins", maxScale: 50, limit: 100, ceil: 8, wantMaxScale: 50, wantLimt: 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := DefaultAutoscaler()
			a.MaxScale, a.MaxScaleLimit = tt.maxScale, tt.limit
			got := a.Bounded(tt.ceil)
			if got.MaxScale != tt.wantMaxScale || got.MaxScaleLimit != tt.wantLimt {
				t.Errorf("max-scale %d, max-scale-limit %d; want %d, %d", got.MaxScale, got.MaxScaleLimit, tt.wantMaxScale, tt.wantLimt)
			}
		})
	}
	if got := LocalMaxScaleLimit(1); got != 8 {
		t.Errorf("LocalMaxScaleLimit(1) = %d, want at least 8", got)
	}
	if got := LocalMaxScaleLimit(16); got != 64 {
		t.Errorf("LocalMaxScaleLimit(16) = %d, want 4 per CPU", got)
	}
}

func TestParseNetworkTLS(t *testing.T) {
	tests := []struct {
		name                        string
		data                        map[string]string
		externalTLS, localTLS       bool
		protocol, selector, wantErr string
	}{
		{name: "defaults", protocol: "Enabled"},
		{name: "external-domain-tls", data: map[string]string{"external-domain-tls": "Enabled"}, externalTLS: true, protocol: "Enabled"},
		{name: "the older auto-tls", data: map[string]string{"auto-tls": "enabled"}, externalTLS: true, protocol: "Enabled"},
		{name: "external-domain-tls wins over auto-tls", data: map[string]string{"auto-tls": "Enabled", "external-domain-tls": "Disabled"}, protocol: "Enabled"},
		{name: "cluster-local-domain-tls", data: map[string]string{"cluster-local-domain-tls": "Enabled"}, localTLS: true, protocol: "Enabled"},
		{name: "redirected", data: map[string]string{"http-protocol": "Redirected"}, protocol: "Redirected"},
		{name: "disabled, any case", data: map[string]string{"http-protocol": "disabled"}, protocol: "Disabled"},
		{name: "a wildcard selector", data: map[string]string{"namespace-wildcard-cert-selector": "matchLabels:\n  tls: wildcard\n"}, protocol: "Enabled", selector: "tls=wildcard"},
		{name: "a bad switch", data: map[string]string{"external-domain-tls": "yes"}, wantErr: `config-network: external-domain-tls: "yes" is not Enabled or Disabled`},
		{name: "a bad protocol", data: map[string]string{"http-protocol": "Sometimes"}, wantErr: `config-network: http-protocol: "Sometimes" is not one of Enabled, Redirected, Disabled`},
		{name: "a bad selector", data: map[string]string{"namespace-wildcard-cert-selector": "matchExpressions: [{key: a, operator: Sometimes}]"}, wantErr: "config-network: namespace-wildcard-cert-selector"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ParseNetwork(tt.data)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n.ExternalTLS != tt.externalTLS || n.ClusterLocalTLS != tt.localTLS || n.HTTPProtocol != tt.protocol {
				t.Errorf("external %v, cluster-local %v, http-protocol %q; want %v, %v, %q", n.ExternalTLS, n.ClusterLocalTLS, n.HTTPProtocol, tt.externalTLS, tt.localTLS, tt.protocol)
			}
			sel := ""
			if n.NamespaceWildcardCertSelector != nil {
				s, _ := metav1.LabelSelectorAsSelector(n.NamespaceWildcardCertSelector)
				sel = s.String()
			}
			if sel != tt.selector {
				t.Errorf("selector %q, want %q", sel, tt.selector)
			}
		})
	}
}

// autocreate-cluster-domain-claims (and its older camelCase spelling) is
// left to the mode when config-network does not set it.
func TestAutocreateDomainClaims(t *testing.T) {
	tests := []struct {
		data    map[string]string
		def     bool
		want    bool
		wantErr bool
	}{
		{data: nil, def: false, want: false},
		{data: nil, def: true, want: true},
		{data: map[string]string{"autocreate-cluster-domain-claims": "true"}, want: true},
		{data: map[string]string{"autocreate-cluster-domain-claims": "false"}, def: true, want: false},
		{data: map[string]string{"autocreateClusterDomainClaims": "true"}, want: true},
		{data: map[string]string{"autocreateClusterDomainClaims": "true", "autocreate-cluster-domain-claims": "false"}, def: true, want: false},
		{data: map[string]string{"autocreate-cluster-domain-claims": "yes please"}, wantErr: true},
	}
	for _, tt := range tests {
		n, err := ParseNetwork(tt.data)
		if (err != nil) != tt.wantErr {
			t.Errorf("%v: error %v, want error %v", tt.data, err, tt.wantErr)
			continue
		}
		if err == nil && n.Autocreate(tt.def) != tt.want {
			t.Errorf("%v with default %v: autocreate %v, want %v", tt.data, tt.def, n.Autocreate(tt.def), tt.want)
		}
		if err != nil && !strings.Contains(err.Error(), "autocreate-cluster-domain-claims") {
			t.Errorf("error %q does not name the key", err)
		}
	}
}
