// Package config parses and validates the Knative ConfigMaps kgate honours —
// config-domain, config-network, config-defaults and config-autoscaler — with
// Knative's keys, defaults and rules. Each ParseX reads a ConfigMap's data and
// returns an error naming the ConfigMap, the key and the rule it broke;
// DefaultX returns what an absent ConfigMap means.
package config

// ExampleKey is the documentation key Knative ships in every ConfigMap; it is
// never configuration.
const ExampleKey = "_example"
