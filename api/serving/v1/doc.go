// Package v1 holds the Knative serving.knative.dev/v1 API types (Service,
// Configuration, Revision, Route), field-for-field compatible with Knative:
// the same JSON names, defaults, status shape and validation rules, so that
// manifests written for Knative apply unchanged.
package v1
