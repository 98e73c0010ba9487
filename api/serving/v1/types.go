package v1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GroupName is the API group of the Knative serving types.
const GroupName = "serving.knative.dev"

// Version is the API version these types implement.
const Version = "v1"

// APIVersion is the apiVersion string manifests carry.
const APIVersion = GroupName + "/" + Version

// Kinds of the serving.knative.dev/v1 objects.
const (
	KindService       = "Service"
	KindConfiguration = "Configuration"
	KindRevision      = "Revision"
	KindRoute         = "Route"
)

// Service is a Knative Service: a Configuration plus a Route of the same name.
type Service struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ServiceSpec   `json:"spec,omitempty"`
	Status ServiceStatus `json:"status,omitempty"`
}

// ServiceSpec inlines a ConfigurationSpec and a RouteSpec, as Knative does.
type ServiceSpec struct {
	ConfigurationSpec `json:",inline"`
	RouteSpec         `json:",inline"`
}

// ServiceStatus inlines the Configuration and Route status fields.
type ServiceStatus struct {
	Status                    `json:",inline"`
	ConfigurationStatusFields `json:",inline"`
	RouteStatusFields         `json:",inline"`
}

// Configuration stamps out a new Revision for each change of its template.
type Configuration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ConfigurationSpec   `json:"spec,omitempty"`
	Status ConfigurationStatus `json:"status,omitempty"`
}

// ConfigurationSpec holds the template of the Revisions to create.
type ConfigurationSpec struct {
	Template RevisionTemplateSpec `json:"template"`
}

// ConfigurationStatus is the observed state of a Configuration.
type ConfigurationStatus struct {
	Status                    `json:",inline"`
	ConfigurationStatusFields `json:",inline"`
}

// ConfigurationStatusFields are the Configuration status fields a Service shares.
type ConfigurationStatusFields struct {
	LatestReadyRevisionName   string `json:"latestReadyRevisionName,omitempty"`
	LatestCreatedRevisionName string `json:"latestCreatedRevisionName,omitempty"`
}

// RevisionTemplateSpec is the template of a Revision: metadata and spec.
type RevisionTemplateSpec struct {
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              RevisionSpec `json:"spec,omitempty"`
}

// Revision is an immutable snapshot of code and configuration.
type Revision struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RevisionSpec   `json:"spec,omitempty"`
	Status RevisionStatus `json:"status,omitempty"`
}

// RevisionSpec is a PodSpec plus the Knative serving knobs.
type RevisionSpec struct {
	corev1.PodSpec `json:",inline"`

	// ContainerConcurrency is the hard limit of concurrent requests per
	// container; 0 means no limit.
	ContainerConcurrency *int64 `json:"containerConcurrency,omitempty"`
	// TimeoutSeconds bounds the whole request (default 300).
	TimeoutSeconds *int64 `json:"timeoutSeconds,omitempty"`
	// ResponseStartTimeoutSeconds bounds the time to the first response byte.
	ResponseStartTimeoutSeconds *int64 `json:"responseStartTimeoutSeconds,omitempty"`
	// IdleTimeoutSeconds bounds the time between response bytes.
	IdleTimeoutSeconds *int64 `json:"idleTimeoutSeconds,omitempty"`
}

// RevisionStatus is the observed state of a Revision.
type RevisionStatus struct {
	Status `json:",inline"`

	LogURL                string            `json:"logUrl,omitempty"`
	ContainerStatuses     []ContainerStatus `json:"containerStatuses,omitempty"`
	InitContainerStatuses []ContainerStatus `json:"initContainerStatuses,omitempty"`
	ActualReplicas        *int32            `json:"actualReplicas,omitempty"`
	DesiredReplicas       *int32            `json:"desiredReplicas,omitempty"`
}

// ContainerStatus names a container and the digest its image resolved to.
type ContainerStatus struct {
	Name        string `json:"name,omitempty"`
	ImageDigest string `json:"imageDigest,omitempty"`
}

// Route maps a network endpoint to one or more Revisions.
type Route struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RouteSpec   `json:"spec,omitempty"`
	Status RouteStatus `json:"status,omitempty"`
}

// RouteSpec holds the traffic targets.
type RouteSpec struct {
	Traffic []TrafficTarget `json:"traffic,omitempty"`
}

// TrafficTarget sends a percentage of traffic to a Revision, and optionally
// names it with a tag that gets its own URL.
type TrafficTarget struct {
	Tag               string `json:"tag,omitempty"`
	RevisionName      string `json:"revisionName,omitempty"`
	ConfigurationName string `json:"configurationName,omitempty"`
	LatestRevision    *bool  `json:"latestRevision,omitempty"`
	Percent           *int64 `json:"percent,omitempty"`
	// URL is set in status only: the tag's URL.
	URL *URL `json:"url,omitempty"`
}

// RouteStatus is the observed state of a Route.
type RouteStatus struct {
	Status            `json:",inline"`
	RouteStatusFields `json:",inline"`
}

// RouteStatusFields are the Route status fields a Service shares.
type RouteStatusFields struct {
	URL     *URL            `json:"url,omitempty"`
	Address *Addressable    `json:"address,omitempty"`
	Traffic []TrafficTarget `json:"traffic,omitempty"`
}

// Addressable is the cluster-local address of a Route.
type Addressable struct {
	Name *string `json:"name,omitempty"`
	URL  *URL    `json:"url,omitempty"`
}
