package config

// Config is every ConfigMap kgate honours, parsed.
type Config struct {
	Defaults   Defaults
	Autoscaler Autoscaler
	Domain     Domain
	Network    Network
}

// Default returns the configuration of a cluster with none of the ConfigMaps.
func Default() Config {
	return Config{
		Defaults:   DefaultDefaults(),
		Autoscaler: DefaultAutoscaler(),
		Domain:     DefaultDomain(),
		Network:    DefaultNetwork(),
	}
}
