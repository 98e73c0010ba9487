// Package v1beta1 holds Knative's serving.knative.dev/v1beta1 DomainMapping:
// a custom domain (the object's name) mapped to a Knative Service or Route,
// field for field as Knative has it, with Knative's defaults, validation
// messages and condition types, so that a DomainMapping written for Knative
// applies unchanged.
//
// It reuses serving.knative.dev/v1's Status, Condition, URL and Addressable:
// Knative's DomainMapping uses the same duck types as its v1 objects.
//
// The kubebuilder markers drive controller-gen (make generate): the deep
// copies (zz_generated.deepcopy.go) and the CRD in deploy/install, whose CEL
// rules reject what Knative's webhook rejects. See docs/kubernetes-crds.md.
//
// +kubebuilder:object:generate=true
// +groupName=serving.knative.dev
package v1beta1
