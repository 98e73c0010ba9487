// Package v1 holds the Knative serving.knative.dev/v1 API types (Service,
// Configuration, Revision, Route), field-for-field compatible with Knative:
// the same JSON names, defaults, status shape and validation rules, so that
// manifests written for Knative apply unchanged.
//
// The kubebuilder markers on the types drive controller-gen (make generate):
// the deep-copy functions (zz_generated.deepcopy.go) and the CRDs in
// deploy/install, with the CEL rules that let the API server reject what
// Knative's webhook would, without a webhook. See docs/kubernetes-crds.md.
//
// +kubebuilder:object:generate=true
// +groupName=serving.knative.dev
package v1
