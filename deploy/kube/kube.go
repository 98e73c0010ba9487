// Package kube is the Kubernetes side of running revisions: what a Revision
// becomes in the cluster and how kgate scales it there.
//
// The builders are pure: Deployment makes the revision's Deployment (its
// pods honour Knative's runtime contract: PORT, K_SERVICE, K_CONFIGURATION,
// K_REVISION, a readiness probe on the serving port), PrivateService the
// ClusterIP Service whose EndpointSlices list the revision's pods, and
// Endpoints reads the ready pods out of those slices for EDS. Scaler is the
// deploy.Deployer of Kubernetes mode: it sets replicas through the
// Deployment's scale subresource and reports the ready endpoints that the
// controller hands it from its EndpointSlice informer. Watching is the
// controller's job, not this package's.
//
// There is no queue-proxy in kgate: Knative puts one in every pod to hold
// requests, enforce containerConcurrency, report load and run the readiness
// probe aggressively; in kgate the activator and the gateways do that work
// (load comes from the gateways over LRS). So the pods hold only the user's
// containers, the kubelet runs the user's readiness probe itself, and the
// private Service targets the container's port directly.
package kube

import (
	"fmt"
	"strings"
)

// Labels and annotations, with Knative's keys.
const (
	// LabelRevision names the revision on its Deployment, pods, private
	// Service and (copied by the EndpointSlice controller from the Service)
	// the Service's EndpointSlices.
	LabelRevision = "serving.knative.dev/revision"
	// LabelRevisionUID holds the revision's UID; the pod selector uses it,
	// as Knative's does, so that a revision deleted and created again under
	// the same name does not adopt the old pods.
	LabelRevisionUID   = "serving.knative.dev/revisionUID"
	LabelConfiguration = "serving.knative.dev/configuration"
	LabelService       = "serving.knative.dev/service"
	// LabelApp is set to the revision's name unless the revision has one,
	// as Knative does for tracing.
	LabelApp = "app"
	// LabelServiceType is "Private" on the private Service (and so on its
	// EndpointSlices): a label selector for the controller's informer.
	LabelServiceType = "networking.internal.knative.dev/serviceType"
	// ServiceTypePrivate is LabelServiceType's value.
	ServiceTypePrivate = "Private"

	// AnnotationDefaultContainer tells kubectl which container logs and
	// exec mean: the serving one.
	AnnotationDefaultContainer = "kubectl.kubernetes.io/default-container"
	// AnnotationProgressDeadline overrides Options.ProgressDeadline for one
	// revision (a duration, e.g. "300s").
	AnnotationProgressDeadline = "serving.knative.dev/progress-deadline"
)

// SplitKey splits a revision key "namespace/name".
func SplitKey(key string) (namespace, name string, err error) {
	namespace, name, ok := strings.Cut(key, "/")
	if !ok || namespace == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("revision key %q is not namespace/name", key)
	}
	return namespace, name, nil
}
