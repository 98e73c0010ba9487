package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/template"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// NetworkConfigName is the name of the ConfigMap Network is read from.
const NetworkConfigName = "config-network"

// Knative's default host name templates.
const (
	DefaultDomainTemplate = "{{.Name}}.{{.Namespace}}.{{.Domain}}"
	DefaultTagTemplate    = "{{.Tag}}-{{.Name}}"
)

// DomainTemplateValues are what a domain-template can use.
type DomainTemplateValues struct {
	Name        string
	Namespace   string
	Domain      string
	Annotations map[string]string
	Labels      map[string]string
}

// TagTemplateValues are what a tag-template can use.
type TagTemplateValues struct {
	Name string
	Tag  string
}

// Network is the part of config-network kgate uses: how host names are made,
// and which are served over TLS.
type Network struct {
	DomainTemplate string // domain-template
	TagTemplate    string // tag-template

	// ExternalTLS serves external hosts over HTTPS (external-domain-tls,
	// or the older auto-tls: Enabled).
	ExternalTLS bool
	// ClusterLocalTLS serves cluster-local hosts over HTTPS
	// (cluster-local-domain-tls: Enabled).
	ClusterLocalTLS bool
	// HTTPProtocol is what plain HTTP gets on hosts served over HTTPS
	// (http-protocol): Enabled, Redirected or Disabled.
	HTTPProtocol string
	// NamespaceWildcardCertSelector, when set, selects the namespaces
	// whose external hosts share one wildcard certificate
	// (namespace-wildcard-cert-selector, a label selector in YAML or JSON).
	NamespaceWildcardCertSelector *metav1.LabelSelector
	// AutocreateDomainClaims, when set, says whether a DomainMapping of a
	// domain no ClusterDomainClaim delegates claims it
	// (autocreate-cluster-domain-claims, or the older
	// autocreateClusterDomainClaims); nil leaves it to the mode: Knative's
	// default is false, kgate local's true (see Network.Autocreate).
	AutocreateDomainClaims *bool
	// RolloutDuration is how long a new latest revision takes to receive
	// all of a traffic target's share, in steps (rollout-duration, or the
	// older rolloutDuration: whole seconds, as Knative reads it); 0 moves
	// it at once. A Service's or Route's
	// serving.knative.dev/rollout-duration annotation overrides it.
	RolloutDuration time.Duration

	domain, tag *template.Template
}

// maxRolloutSeconds bounds rollout-duration (a year) so that it stays a
// time.Duration.
const maxRolloutSeconds = 365 * 24 * 3600

// http-protocol values, as Knative spells them.
const (
	HTTPProtocolEnabled    = "Enabled"
	HTTPProtocolRedirected = "Redirected"
	HTTPProtocolDisabled   = "Disabled"
)

// DefaultNetwork returns Knative's config-network host name templates.
func DefaultNetwork() Network {
	n, err := ParseNetwork(nil)
	if err != nil {
		panic(err) // the defaults are constants
	}
	return n
}

// ParseNetwork reads config-network data. Both templates must parse and run
// on sample values; the domain template must yield a bare host name. The
// older camelCase keys domainTemplate and tagTemplate are read too, the
// kebab-case ones winning.
func ParseNetwork(data map[string]string) (Network, error) {
	return parseNetwork(&parser{configMap: NetworkConfigName, data: data})
}

func parseNetwork(p *parser) (Network, error) {
	n := Network{DomainTemplate: DefaultDomainTemplate, TagTemplate: DefaultTagTemplate, HTTPProtocol: HTTPProtocolEnabled}
	p.string("domainTemplate", &n.DomainTemplate)
	p.string("tagTemplate", &n.TagTemplate)
	p.string("domain-template", &n.DomainTemplate)
	p.string("tag-template", &n.TagTemplate)
	// auto-tls is the older name of external-domain-tls, which wins.
	p.enabled("auto-tls", &n.ExternalTLS)
	p.enabled("external-domain-tls", &n.ExternalTLS)
	p.enabled("cluster-local-domain-tls", &n.ClusterLocalTLS)
	if v, ok := p.get("http-protocol"); ok {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "", "enabled":
			n.HTTPProtocol = HTTPProtocolEnabled
		case "redirected":
			n.HTTPProtocol = HTTPProtocolRedirected
		case "disabled":
			n.HTTPProtocol = HTTPProtocolDisabled
		default:
			p.fail("http-protocol", "%q is not one of Enabled, Redirected, Disabled", v)
		}
	}
	for _, key := range []string{"autocreateClusterDomainClaims", "autocreate-cluster-domain-claims"} {
		if _, ok := p.get(key); ok {
			var b bool
			p.bool(key, &b)
			n.AutocreateDomainClaims = &b
		}
	}
	// rollout-duration wins over the older rolloutDuration.
	for _, key := range []string{"rolloutDuration", "rollout-duration"} {
		v, ok := p.get(key)
		if !ok {
			continue
		}
		secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || secs < 0 || secs > maxRolloutSeconds {
			p.fail(key, "%q is not a whole number of seconds from 0 to %d (such as 120)", v, maxRolloutSeconds)
			continue
		}
		n.RolloutDuration = time.Duration(secs) * time.Second
	}
	if v, ok := p.get("namespace-wildcard-cert-selector"); ok && strings.TrimSpace(v) != "" {
		sel := &metav1.LabelSelector{}
		if err := yaml.UnmarshalStrict([]byte(v), sel); err != nil {
			p.fail("namespace-wildcard-cert-selector", "not a label selector: %v", err)
		} else if _, err := metav1.LabelSelectorAsSelector(sel); err != nil {
			p.fail("namespace-wildcard-cert-selector", "%v", err)
		} else {
			n.NamespaceWildcardCertSelector = sel
		}
	}
	if p.err != nil {
		return Network{}, p.err
	}
	var err error
	if n.domain, err = boundedTemplate("domain-template", n.DomainTemplate); err != nil {
		return Network{}, fmt.Errorf("%s: domain-template: %w", NetworkConfigName, err)
	}
	if err := checkDomainTemplate(n.domain); err != nil {
		return Network{}, fmt.Errorf("%s: domain-template: %w", NetworkConfigName, err)
	}
	if n.tag, err = boundedTemplate("tag-template", n.TagTemplate); err != nil {
		return Network{}, fmt.Errorf("%s: tag-template: %w", NetworkConfigName, err)
	}
	if err := n.tag.Execute(io.Discard, TagTemplateValues{Name: "foo", Tag: "v2"}); err != nil {
		return Network{}, fmt.Errorf("%s: tag-template: %w", NetworkConfigName, err)
	}
	return n, nil
}

// Autocreate says whether DomainMappings claim their domains themselves:
// autocreate-cluster-domain-claims when config-network sets it, else def
// (the mode's default).
func (n Network) Autocreate(def bool) bool {
	if n.AutocreateDomainClaims != nil {
		return *n.AutocreateDomainClaims
	}
	return def
}

// checkDomainTemplate runs t on sample values and checks the result is a
// host name with no path, as Knative does.
func checkDomainTemplate(t *template.Template) error {
	var b bytes.Buffer
	if err := t.Execute(&b, DomainTemplateValues{Name: "foo", Namespace: "bar", Domain: "baz.com"}); err != nil {
		return err
	}
	u, err := url.Parse("https://" + b.String())
	if err != nil {
		return err
	}
	if u.Hostname() == "" {
		return errors.New("empty hostname")
	}
	if u.RequestURI() != "/" {
		return fmt.Errorf("domain template has url path: %s", u.RequestURI())
	}
	return nil
}

// Host renders the domain template: the host name of a Route.
func (n Network) Host(v DomainTemplateValues) (string, error) {
	t := n.domain
	if t == nil {
		var err error
		if t, err = boundedTemplate("domain-template", n.DomainTemplate); err != nil {
			return "", fmt.Errorf("parsing domain-template: %w", err)
		}
	}
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return "", fmt.Errorf("rendering domain-template for %s/%s: %w", v.Namespace, v.Name, err)
	}
	return b.String(), nil
}

// TagName renders the tag template: the name a tagged target's host is made
// from in place of the Route's name.
func (n Network) TagName(tag, name string) (string, error) {
	t := n.tag
	if t == nil {
		var err error
		if t, err = boundedTemplate("tag-template", n.TagTemplate); err != nil {
			return "", fmt.Errorf("parsing tag-template: %w", err)
		}
	}
	var b bytes.Buffer
	if err := t.Execute(&b, TagTemplateValues{Name: name, Tag: tag}); err != nil {
		return "", fmt.Errorf("rendering tag-template for tag %q of %s: %w", tag, name, err)
	}
	return b.String(), nil
}

// TagHost is the host name of a tagged traffic target: the domain template
// with the tag name in place of the Route's name.
func (n Network) TagHost(tag string, v DomainTemplateValues) (string, error) {
	name, err := n.TagName(tag, v.Name)
	if err != nil {
		return "", err
	}
	v.Name = name
	return n.Host(v)
}
