package config

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// DomainConfigName is the name of the ConfigMap Domain is read from.
const DomainConfigName = "config-domain"

// DefaultDomainName is the domain of Routes no config-domain entry matches.
const DefaultDomainName = "example.com"

// ClusterLocalDomain is the domain of Routes labelled cluster-local.
const ClusterLocalDomain = "svc.cluster.local"

// VisibilityLabel marks a Route (or Service) visible only inside the cluster
// when its value is VisibilityClusterLocal.
const (
	VisibilityLabel        = "networking.knative.dev/visibility"
	VisibilityClusterLocal = "cluster-local"
)

// Domain is config-domain: each key is a domain, each value empty (the
// domain for every Route) or "selector:" with labels a Route must carry.
type Domain struct {
	// Domains maps a domain to the labels that select it; an empty selector
	// matches every Route.
	Domains map[string]map[string]string
}

// DefaultDomain returns the domain configuration of an absent config-domain:
// example.com for every Route.
func DefaultDomain() Domain {
	return Domain{Domains: map[string]map[string]string{DefaultDomainName: {}}}
}

// domainEntry is the YAML a config-domain value holds.
type domainEntry struct {
	Selector map[string]string `json:"selector,omitempty"`
	// Type is Knative's "wildcard" marker, accepted and unused.
	Type string `json:"type,omitempty"`
}

// ParseDomain reads config-domain data. As in Knative, when no entry has an
// empty selector the default domain is added for Routes nothing else matches.
func ParseDomain(data map[string]string) (Domain, error) {
	d := Domain{Domains: map[string]map[string]string{}}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	hasDefault := false
	for _, k := range keys {
		if k == ExampleKey {
			continue
		}
		if msgs := validation.IsDNS1123Subdomain(k); len(msgs) > 0 {
			return Domain{}, fmt.Errorf("%s: %s: not a valid domain: %s", DomainConfigName, k, strings.Join(msgs, "; "))
		}
		var e domainEntry
		if err := yaml.UnmarshalStrict([]byte(data[k]), &e); err != nil {
			return Domain{}, fmt.Errorf("%s: %s: value must be empty or \"selector:\" with labels: %w", DomainConfigName, k, err)
		}
		if len(e.Selector) == 0 {
			hasDefault = true
			e.Selector = map[string]string{}
		}
		d.Domains[k] = e.Selector
	}
	if !hasDefault {
		d.Domains[DefaultDomainName] = map[string]string{}
	}
	return d, nil
}

// For returns the domain of a Route with the given labels: the matching
// entry with the most selector labels, ties broken by the smaller domain
// name; svc.cluster.local for a cluster-local Route.
func (d Domain) For(labels map[string]string) string {
	if labels[VisibilityLabel] == VisibilityClusterLocal {
		return ClusterLocalDomain
	}
	best, specificity := "", -1
	for domain, selector := range d.Domains {
		if !matches(selector, labels) {
			continue
		}
		if n := len(selector); n > specificity || (n == specificity && domain < best) {
			best, specificity = domain, n
		}
	}
	return best
}

func matches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
