package config

import (
	"maps"
	"slices"
	"strings"
)

// KeyStatus says why kgate ignores a ConfigMap key.
type KeyStatus string

const (
	// KeyNotSupported is a key Knative Serving reads that kgate
	// deliberately does not (UnsupportedKey.Why says what it does instead).
	KeyNotSupported KeyStatus = "not supported by kgate"
	// KeyUnknown is a key neither kgate nor Knative reads: a typo, or a key
	// of another ConfigMap.
	KeyUnknown KeyStatus = "unknown"
)

// UnsupportedKey is a key of a ConfigMap that kgate ignores.
type UnsupportedKey struct {
	Key, Value string
	Status     KeyStatus
	// Why says, for a key not supported, why and what kgate does instead.
	Why string
	// Suggest is, for an unknown key, the known key of the same ConfigMap
	// it is closest to; "" when none is close.
	Suggest string
}

// Message is a log line's message for the key.
func (u UnsupportedKey) Message() string {
	if u.Status == KeyNotSupported {
		return "ConfigMap key not supported by kgate; ignored"
	}
	return "unknown ConfigMap key; ignored"
}

// Unsupported returns, sorted by key, the keys of the data of the ConfigMap
// called name that kgate ignores: in a ConfigMap kgate reads, the keys its
// parser does not read (whether the data parses or not: a misspelt key may
// be why it does not); in one of Knative Serving's ConfigMaps that kgate
// does not read at all, every key. ExampleKey is never one, nor a key of a
// ConfigMap that is neither kgate's nor Knative's, nor any key of
// config-domain, whose keys are domains (ParseDomain checks them).
//
// A key is supported when the ConfigMap's parser reads it, so a key added
// to a parser is known here without being listed.
func Unsupported(name string, data map[string]string) []UnsupportedKey {
	if name == DomainConfigName {
		return nil
	}
	read, known := keysRead(name, data)
	unread, knative := unreadConfigMaps[name]
	if !known && !knative {
		return nil
	}
	var out []UnsupportedKey
	var candidates []string // the ConfigMap's keys, for suggestions; made once needed
	for _, k := range slices.Sorted(maps.Keys(data)) {
		if k == ExampleKey || read[k] {
			continue
		}
		u := UnsupportedKey{Key: k, Value: data[k], Status: KeyNotSupported}
		switch why, ok := notSupported[name][k]; {
		case !known:
			u.Why = unread
		case ok:
			u.Why = why
		default:
			u.Status = KeyUnknown
			if candidates == nil {
				all, _ := keysRead(name, nil)
				candidates = slices.Sorted(maps.Keys(all))
				candidates = append(candidates, slices.Sorted(maps.Keys(notSupported[name]))...)
			}
			u.Suggest = closest(k, candidates)
		}
		out = append(out, u)
	}
	return out
}

// keysRead parses data as the ConfigMap called name and returns the keys
// its parser asked for (see parser.get), and whether kgate reads such a
// ConfigMap at all. The outcome of the parse is not wanted: a parser reads
// every key whatever the values.
func keysRead(name string, data map[string]string) (map[string]bool, bool) {
	p := &parser{configMap: name, data: data, read: map[string]bool{}}
	switch name {
	case NetworkConfigName:
		_, _ = parseNetwork(p)
	case DefaultsConfigName:
		_, _ = parseDefaults(p)
	case AutoscalerConfigName:
		_, _ = parseAutoscaler(p)
	case GCConfigName:
		_, _ = parseGC(p)
	default:
		return nil, false
	}
	return p.read, true
}

// closest is the candidate nearest to key: the same once case and the
// separators Knative's spellings differ by (-, _, .) are ignored
// (enableScaleToZero, enable_scale_to_zero), else at most two edits away
// and fewer than a third of the key's length; "" when none is.
func closest(key string, candidates []string) string {
	norm := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r == '-' || r == '_' || r == '.' {
				return -1
			}
			return r
		}, strings.ToLower(s))
	}
	best, bestDist := "", 3
	for _, c := range candidates {
		if c == key {
			continue
		}
		if norm(c) == norm(key) {
			return c
		}
		if d := editDistance(key, c); d < bestDist && 3*d < len(key) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes (keys
// are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// notSupported are the keys of the ConfigMaps kgate reads that Knative
// Serving reads and kgate deliberately does not, with why. A key that a
// parser reads is supported whatever this says, so an entry can stay when
// support lands.
var notSupported = map[string]map[string]string{
	NetworkConfigName: {
		"ingress-class":                         "kgate is the ingress: its own Envoy gateways serve every Route",
		"ingress.class":                         "kgate is the ingress: its own Envoy gateways serve every Route",
		"certificate-class":                     "certificates come from kgate: its own CA in kgate local, config-certmanager's issuer in Kubernetes",
		"certificate.class":                     "certificates come from kgate: its own CA in kgate local, config-certmanager's issuer in Kubernetes",
		"default-external-scheme":               "not implemented: a URL's scheme follows external-domain-tls",
		"defaultExternalScheme":                 "not implemented: a URL's scheme follows external-domain-tls",
		"enable-mesh-pod-addressability":        "no service mesh integration",
		"mesh-compatibility-mode":               "no service mesh integration",
		"system-internal-tls":                   "traffic inside the system (gateway and activator to pods) is plain HTTP; the control plane speaks mutual TLS anyway",
		"internal-encryption":                   "traffic inside the system (gateway and activator to pods) is plain HTTP; the control plane speaks mutual TLS anyway",
		"autoTLS":                               "Knative's oldest spelling: use external-domain-tls",
		"httpProtocol":                          "Knative's oldest spelling: use http-protocol",
		"istio.sidecar.includeOutboundIPRanges": "obsolete in Knative too",
	},
}

// unreadConfigMaps are Knative Serving's ConfigMaps that kgate does not read,
// with why: their keys are not supported by kgate. A ConfigMap that
// Config.Set reads is read whatever this says.
var unreadConfigMaps = map[string]string{
	"config-features":        "kgate does not read config-features: its feature flags are fixed at Knative's defaults (docs/knative-parity.md)",
	ObservabilityConfigName:  "kgate does not read config-observability: tracing and access logs are set by flags (--tracing-endpoint, --tracing-sampling-rate, --access-log), metrics are Prometheus on /metrics",
	"config-tracing":         "kgate does not read config-tracing: tracing is set by flags (--tracing-endpoint, --tracing-sampling-rate)",
	"config-logging":         "kgate does not read config-logging: its log level is the --log-level flag",
	"config-deployment":      "kgate does not read config-deployment: there is no queue-proxy, and images run as given (no digest resolution)",
	"config-leader-election": "kgate does not read config-leader-election: kgate controller's election is its --leader-elect flag and a fixed Lease",
	// kgate controller reads it itself (watcher/kube) and keeps it from the
	// pipeline: only a folder's (kgate local, kgate xds) gets here.
	"config-certmanager": "kgate local does not read config-certmanager: it issues certificates from its own CA (kgate controller reads it, for cert-manager's issuers)",
}
