// Package v1alpha1 holds the one networking.internal.knative.dev/v1alpha1
// type kgate reads in serving mode: Knative's ClusterDomainClaim, which
// delegates a domain to the namespace whose DomainMappings may use it.
// Field for field as Knative has it, so a claim written for Knative applies
// unchanged (and the CRD, made by controller-gen in deploy/install, is
// compatible with Knative's: the same group, kind, scope and schema).
//
// +kubebuilder:object:generate=true
// +groupName=networking.internal.knative.dev
package v1alpha1
