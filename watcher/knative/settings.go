package knative

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/api/manifest"
)

// settings are the parsed ConfigMaps.
type settings = config.Config

func defaultSettings() settings { return config.Default() }

// configMaps reads config-domain, config-network, config-defaults and
// config-autoscaler, in whatever namespace they are declared (local mode
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
		var err error
		switch cm.Name {
		case config.DomainConfigName:
			if next.Domain, err = config.ParseDomain(cm.Data); err != nil {
				next.Domain = last.Domain
			}
		case config.NetworkConfigName:
			if next.Network, err = config.ParseNetwork(cm.Data); err != nil {
				next.Network = last.Network
			}
		case config.DefaultsConfigName:
			if next.Defaults, err = config.ParseDefaults(cm.Data); err != nil {
				next.Defaults = last.Defaults
			}
		case config.AutoscalerConfigName:
			if next.Autoscaler, err = config.ParseAutoscaler(cm.Data); err != nil {
				next.Autoscaler = last.Autoscaler
			}
		default:
			continue
		}
		seen[cm.Name] = true
		if err != nil {
			rd.problem(o, "data", err.Error()+" (the last valid "+cm.Name+" stays in effect)")
		}
	}
	rd.r.settings = next
}
