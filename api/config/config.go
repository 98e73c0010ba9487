package config

// Config is every ConfigMap kgate honours, parsed.
type Config struct {
	Defaults   Defaults
	Autoscaler Autoscaler
	Domain     Domain
	Network    Network
	GC         GC
}

// Default returns the configuration of a cluster with none of the ConfigMaps.
func Default() Config {
	return Config{
		Defaults:   DefaultDefaults(),
		Autoscaler: DefaultAutoscaler(),
		Domain:     DefaultDomain(),
		Network:    DefaultNetwork(),
		GC:         DefaultGC(),
	}
}

// Set parses the data of the ConfigMap called name into its part of c.
// known is false for a name kgate does not read; on an error c keeps what
// it had, and the error names the ConfigMap.
func (c *Config) Set(name string, data map[string]string) (known bool, err error) {
	switch name {
	case DomainConfigName:
		return true, set(&c.Domain, ParseDomain, data)
	case NetworkConfigName:
		return true, set(&c.Network, ParseNetwork, data)
	case DefaultsConfigName:
		return true, set(&c.Defaults, ParseDefaults, data)
	case AutoscalerConfigName:
		return true, set(&c.Autoscaler, ParseAutoscaler, data)
	case GCConfigName:
		return true, set(&c.GC, ParseGC, data)
	}
	return false, nil
}

func set[T any](dst *T, parse func(map[string]string) (T, error), data map[string]string) error {
	v, err := parse(data)
	if err != nil {
		return err
	}
	*dst = v
	return nil
}
