package knative

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/api/manifest"
)

// settings are the parsed ConfigMaps.
type settings = config.Config

func defaultSettings() settings { return config.Default() }

// section copies the part of from that the ConfigMap name sets into c,
// saying whether kgate reads such a ConfigMap at all.
func section(c *config.Config, name string, from config.Config) bool {
	switch name {
	case config.DomainConfigName:
		c.Domain = from.Domain
	case config.NetworkConfigName:
		c.Network = from.Network
	case config.DefaultsConfigName:
		c.Defaults = from.Defaults
	case config.AutoscalerConfigName:
		c.Autoscaler = from.Autoscaler
	case config.GCConfigName:
		c.GC = from.GC
	default:
		return false
	}
	return true
}

// configMaps reads config-domain, config-network, config-defaults,
// config-autoscaler and config-gc, in whatever namespace they are declared (local mode
// has no knative-serving namespace to insist on). An absent ConfigMap means
// the base configuration (Knative's defaults unless SetBase changed it); one that does not parse keeps its last good value.
// Other ConfigMaps are ignored.
func (rd *round) configMaps(cms []manifest.Object) {
	last := rd.r.settings
	next := rd.r.base
	seen := map[string]bool{}
	for _, o := range cms {
		cm := o.Obj.(*corev1.ConfigMap)
		if seen[cm.Name] {
			rd.problem(o, "", "another "+cm.Name+" is declared first (ConfigMaps are read by name, whatever their namespace); this one is ignored")
			continue
		}
		// A ConfigMap that does not parse keeps its last good value.
		if known := section(&next, cm.Name, last); !known {
			continue
		}
		_, err := next.Set(cm.Name, cm.Data)
		seen[cm.Name] = true
		if err != nil {
			rd.problem(o, "data", err.Error()+" (the last valid "+cm.Name+" stays in effect)")
		}
		// Without an issuer (kgate local issues each host its certificate
		// on demand) there is no wildcard certificate to make: say so
		// rather than let the key pass for honoured.
		if cm.Name == config.NetworkConfigName && err == nil && next.Network.NamespaceWildcardCertSelector != nil && rd.in.Certificate == nil {
			rd.problem(o, "data[namespace-wildcard-cert-selector]",
				"no certificate issuer here (kgate local issues each host its own certificate on demand): this key has no effect")
		}
	}
	next.Autoscaler = next.Autoscaler.Bounded(rd.r.ceiling)
	rd.r.settings = next
}
