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
//
// The template's name must start with the Service's: a rule on the root,
// the only place that sees metadata.name.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=services,singular=service,scope=Namespaced,shortName=kservice;ksvc,categories=all;knative;serving
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=".status.url"
// +kubebuilder:printcolumn:name="LatestCreated",type=string,JSONPath=".status.latestCreatedRevisionName"
// +kubebuilder:printcolumn:name="LatestReady",type=string,JSONPath=".status.latestReadyRevisionName"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=".status.conditions[?(@.type=='Ready')].status"
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=".status.conditions[?(@.type=='Ready')].reason"
// +kubebuilder:validation:XValidation:rule=`!has(self.spec) || !has(self.spec.template.metadata) || !has(self.spec.template.metadata.name) || self.spec.template.metadata.name == "" || self.spec.template.metadata.name.startsWith(self.metadata.name + '-')`,messageExpression=`'invalid value: "' + self.spec.template.metadata.name + '" must have prefix "' + self.metadata.name + '-"'`,fieldPath=`.spec.template.metadata.name`,reason=FieldValueInvalid
type Service struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// A Service's traffic always means its own Configuration, so naming one
	// is Knative's "must not set"; a Route's targets must name one (see
	// Route.Spec). The rule sits on this field because RouteSpec's own rules
	// are shared by both.
	//
	// +kubebuilder:validation:XValidation:rule=`!has(self.traffic) || self.traffic.all(t, !has(t.configurationName) || t.configurationName == "")`,message=`must not set the field(s): spec.traffic[*].configurationName`,fieldPath=`.traffic`,reason=FieldValueForbidden
	Spec   ServiceSpec   `json:"spec,omitempty"`
	Status ServiceStatus `json:"status,omitempty"`
}

// ServiceList is a list of Services, as the API server returns it.
//
// +kubebuilder:object:root=true
type ServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []Service `json:"items"`
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
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=configurations,singular=configuration,scope=Namespaced,shortName=config;cfg,categories=all;knative;serving
// +kubebuilder:printcolumn:name="LatestCreated",type=string,JSONPath=".status.latestCreatedRevisionName"
// +kubebuilder:printcolumn:name="LatestReady",type=string,JSONPath=".status.latestReadyRevisionName"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=".status.conditions[?(@.type=='Ready')].status"
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=".status.conditions[?(@.type=='Ready')].reason"
// +kubebuilder:validation:XValidation:rule=`!has(self.spec) || !has(self.spec.template.metadata) || !has(self.spec.template.metadata.name) || self.spec.template.metadata.name == "" || self.spec.template.metadata.name.startsWith(self.metadata.name + '-')`,messageExpression=`'invalid value: "' + self.spec.template.metadata.name + '" must have prefix "' + self.metadata.name + '-"'`,fieldPath=`.spec.template.metadata.name`,reason=FieldValueInvalid
type Configuration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ConfigurationSpec   `json:"spec,omitempty"`
	Status ConfigurationStatus `json:"status,omitempty"`
}

// ConfigurationList is a list of Configurations, as the API server returns it.
//
// +kubebuilder:object:root=true
type ConfigurationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []Configuration `json:"items"`
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
//
// The autoscaling annotations that are cheap to check in CEL are checked
// here with kgate's (Knative's) messages; the rest (durations, ranges that
// depend on config-autoscaler, class-specific rules) are the controller's.
//
// +kubebuilder:validation:XValidation:rule=`!has(self.metadata) || !has(self.metadata.annotations) || !('autoscaling.knative.dev/min-scale' in self.metadata.annotations) || self.metadata.annotations['autoscaling.knative.dev/min-scale'].matches('^([+]?0*[0-9]{1,10}|-0+)$') && int(self.metadata.annotations['autoscaling.knative.dev/min-scale']) <= 2147483647`,messageExpression=`self.metadata.annotations['autoscaling.knative.dev/min-scale'].matches('^[+-]?[0-9]+$') ? 'expected 0 <= ' + self.metadata.annotations['autoscaling.knative.dev/min-scale'] + ' <= 2147483647' : 'invalid value: ' + self.metadata.annotations['autoscaling.knative.dev/min-scale']`,fieldPath=`.metadata.annotations['autoscaling.knative.dev/min-scale']`,reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule=`!has(self.metadata) || !has(self.metadata.annotations) || !('autoscaling.knative.dev/minScale' in self.metadata.annotations) || self.metadata.annotations['autoscaling.knative.dev/minScale'].matches('^([+]?0*[0-9]{1,10}|-0+)$') && int(self.metadata.annotations['autoscaling.knative.dev/minScale']) <= 2147483647`,messageExpression=`self.metadata.annotations['autoscaling.knative.dev/minScale'].matches('^[+-]?[0-9]+$') ? 'expected 0 <= ' + self.metadata.annotations['autoscaling.knative.dev/minScale'] + ' <= 2147483647' : 'invalid value: ' + self.metadata.annotations['autoscaling.knative.dev/minScale']`,fieldPath=`.metadata.annotations['autoscaling.knative.dev/minScale']`,reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule=`!has(self.metadata) || !has(self.metadata.annotations) || !('autoscaling.knative.dev/max-scale' in self.metadata.annotations) || self.metadata.annotations['autoscaling.knative.dev/max-scale'].matches('^([+]?0*[0-9]{1,10}|-0+)$') && int(self.metadata.annotations['autoscaling.knative.dev/max-scale']) <= 2147483647`,messageExpression=`self.metadata.annotations['autoscaling.knative.dev/max-scale'].matches('^[+-]?[0-9]+$') ? 'expected 0 <= ' + self.metadata.annotations['autoscaling.knative.dev/max-scale'] + ' <= 2147483647' : 'invalid value: ' + self.metadata.annotations['autoscaling.knative.dev/max-scale']`,fieldPath=`.metadata.annotations['autoscaling.knative.dev/max-scale']`,reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule=`!has(self.metadata) || !has(self.metadata.annotations) || !('autoscaling.knative.dev/maxScale' in self.metadata.annotations) || self.metadata.annotations['autoscaling.knative.dev/maxScale'].matches('^([+]?0*[0-9]{1,10}|-0+)$') && int(self.metadata.annotations['autoscaling.knative.dev/maxScale']) <= 2147483647`,messageExpression=`self.metadata.annotations['autoscaling.knative.dev/maxScale'].matches('^[+-]?[0-9]+$') ? 'expected 0 <= ' + self.metadata.annotations['autoscaling.knative.dev/maxScale'] + ' <= 2147483647' : 'invalid value: ' + self.metadata.annotations['autoscaling.knative.dev/maxScale']`,fieldPath=`.metadata.annotations['autoscaling.knative.dev/maxScale']`,reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule=`!has(self.metadata) || !has(self.metadata.annotations) || !('autoscaling.knative.dev/target' in self.metadata.annotations) || !self.metadata.annotations['autoscaling.knative.dev/target'].matches('^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$') || double(self.metadata.annotations['autoscaling.knative.dev/target']) >= 0.01`,messageExpression=`'target ' + self.metadata.annotations['autoscaling.knative.dev/target'] + ' should be at least 0.01'`,fieldPath=`.metadata.annotations['autoscaling.knative.dev/target']`,reason=FieldValueInvalid
type RevisionTemplateSpec struct {
	// Knative keeps the template's metadata fields it does not list
	// (generateName, ...) rather than pruning them.
	//
	// +kubebuilder:pruning:PreserveUnknownFields
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              RevisionSpec `json:"spec,omitempty"`
}

// Revision is an immutable snapshot of code and configuration.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=revisions,singular=revision,scope=Namespaced,shortName=rev,categories=all;knative;serving
// +kubebuilder:printcolumn:name="Config Name",type=string,JSONPath=".metadata.labels['serving\\.knative\\.dev/configuration']"
// +kubebuilder:printcolumn:name="Generation",type=string,JSONPath=".metadata.labels['serving\\.knative\\.dev/configurationGeneration']"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=".status.conditions[?(@.type=='Ready')].status"
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=".status.conditions[?(@.type=='Ready')].reason"
// +kubebuilder:printcolumn:name="Actual Replicas",type=integer,JSONPath=".status.actualReplicas"
// +kubebuilder:printcolumn:name="Desired Replicas",type=integer,JSONPath=".status.desiredReplicas"
type Revision struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RevisionSpec   `json:"spec,omitempty"`
	Status RevisionStatus `json:"status,omitempty"`
}

// RevisionList is a list of Revisions, as the API server returns it.
//
// +kubebuilder:object:root=true
type RevisionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []Revision `json:"items"`
}

// RevisionSpec is a PodSpec plus the Knative serving knobs.
//
// The CEL rules check what Knative's webhook checks with its default
// config-defaults (container-concurrency-max-limit 1000,
// max-revision-timeout-seconds 600). Each rule walks the containers once:
// the port checks look at each container's first port only, which is enough
// because a second port is an error of its own, and keeps the estimated
// cost linear without bounding Kubernetes' own lists.
//
// +kubebuilder:validation:XValidation:rule=`self.containers.size() > 0`,message=`missing field(s)`,fieldPath=`.containers`,reason=FieldValueRequired
// +kubebuilder:validation:XValidation:rule=`self.containers.map(c, has(c.ports) ? c.ports.size() : 0).sum() <= 1`,message=`more than one container port is set: containers[*].ports: only a single port is allowed across all containers`,fieldPath=`.containers`,reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule=`self.containers.size() <= 1 || self.containers.exists(c, has(c.ports) && c.ports.size() > 0)`,message=`missing field(s): containers[*].ports: with more than one container, exactly one must declare a port`,fieldPath=`.containers`,reason=FieldValueRequired
// +kubebuilder:validation:XValidation:rule=`self.containers.all(c, has(c.image) && c.image != "")`,message=`missing field(s): containers[*].image`,fieldPath=`.containers`,reason=FieldValueRequired
// +kubebuilder:validation:XValidation:rule=`self.containers.all(c, !has(c.name) || c.name != 'queue-proxy')`,message=`"queue-proxy" is a reserved container name`,fieldPath=`.containers`,reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule=`self.containers.all(c, !has(c.ports) || c.ports.size() == 0 || !(c.ports[0].containerPort in [8008, 8012, 8013, 8022, 9090, 9091]))`,message=`invalid value: 8008, 8012, 8013, 8022, 9090 and 9091 are reserved ports: containers[*].ports.containerPort: please use a different value`,fieldPath=`.containers`,reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule=`self.containers.all(c, !has(c.ports) || c.ports.size() == 0 || !has(c.ports[0].name) || c.ports[0].name in ["", 'h2c', 'http1'])`,message=`Port name is not allowed: containers[*].ports.name: Name must be empty, or one of: 'h2c', 'http1'`,fieldPath=`.containers`,reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule=`self.containers.all(c, !has(c.ports) || c.ports.size() == 0 || !has(c.ports[0].protocol) || c.ports[0].protocol in ["", 'TCP'])`,message=`invalid value: containers[*].ports.protocol: only TCP is supported`,fieldPath=`.containers`,reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule=`!has(self.containerConcurrency) || (self.containerConcurrency >= 0 && self.containerConcurrency <= 1000)`,message=`expected 0 <= containerConcurrency <= 1000`,fieldPath=`.containerConcurrency`,reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule=`!has(self.timeoutSeconds) || (self.timeoutSeconds >= 0 && self.timeoutSeconds <= 600)`,message=`expected 0 <= timeoutSeconds <= 600`,fieldPath=`.timeoutSeconds`,reason=FieldValueInvalid
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
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=routes,singular=route,scope=Namespaced,shortName=rt,categories=all;knative;serving
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=".status.url"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=".status.conditions[?(@.type=='Ready')].status"
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=".status.conditions[?(@.type=='Ready')].reason"
type Route struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// A Route has no Configuration of its own: it needs traffic (Knative
	// reports an empty list as summing to 0), and each target names exactly
	// one of revisionName and configurationName.
	//
	// +kubebuilder:validation:XValidation:rule=`has(self.traffic) && self.traffic.size() > 0`,message=`Traffic targets sum to 0, want 100`,fieldPath=`.traffic`,reason=FieldValueInvalid
	// +kubebuilder:validation:XValidation:rule=`!has(self.traffic) || self.traffic.all(t, has(t.revisionName) && t.revisionName != "" || has(t.configurationName) && t.configurationName != "")`,message=`expected exactly one, got neither: spec.traffic[*].configurationName, spec.traffic[*].revisionName`,fieldPath=`.traffic`,reason=FieldValueRequired
	// +kubebuilder:validation:XValidation:rule=`!has(self.traffic) || self.traffic.all(t, !(has(t.revisionName) && t.revisionName != "" && has(t.configurationName) && t.configurationName != ""))`,message=`expected exactly one, got both: spec.traffic[*].configurationName, spec.traffic[*].revisionName`,fieldPath=`.traffic`,reason=FieldValueInvalid
	Spec   RouteSpec   `json:"spec,omitempty"`
	Status RouteStatus `json:"status,omitempty"`
}

// RouteList is a list of Routes, as the API server returns it.
//
// +kubebuilder:object:root=true
type RouteList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []Route `json:"items"`
}

// RouteSpec holds the traffic targets.
type RouteSpec struct {
	// Traffic lists the targets; its rules apply to a Service's and a
	// Route's spec alike (status.traffic, written by the controller, has
	// none). The bound keeps the estimated cost of the quadratic tag check
	// within the API server's budget; it is far above any real split.
	//
	// +kubebuilder:validation:MaxItems=500
	// +kubebuilder:validation:XValidation:rule=`self.size() == 0 || self.map(t, has(t.percent) ? t.percent : 0).sum() == 100`,message=`Traffic targets do not sum to 100, want 100`,reason=FieldValueInvalid
	// +kubebuilder:validation:XValidation:rule=`self.all(t, !has(t.tag) || t.tag == "" || self.exists_one(u, has(u.tag) && u.tag == t.tag))`,message=`Multiple definitions for a tag: each tag must be unique`,reason=FieldValueInvalid
	// +kubebuilder:validation:items:XValidation:rule=`!has(self.percent) || (self.percent >= 0 && self.percent <= 100)`,message=`expected 0 <= percent <= 100`,fieldPath=`.percent`,reason=FieldValueInvalid
	// +kubebuilder:validation:items:XValidation:rule=`!has(self.latestRevision) || self.latestRevision != (has(self.revisionName) && self.revisionName != "")`,messageExpression=`self.latestRevision ? 'may not set revisionName when latestRevision is true' : 'may not set revisionName "" when latestRevision is false'`,fieldPath=`.latestRevision`,reason=FieldValueInvalid
	// +kubebuilder:validation:items:XValidation:rule=`!has(self.tag) || self.tag == "" || self.tag.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')`,message=`not a DNS 1035 label: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character`,fieldPath=`.tag`,reason=FieldValueInvalid
	// +kubebuilder:validation:items:XValidation:rule=`!has(self.url)`,message=`must not set the field(s)`,fieldPath=`.url`,reason=FieldValueForbidden
	Traffic []TrafficTarget `json:"traffic,omitempty"`
}

// TrafficTarget sends a percentage of traffic to a Revision, and optionally
// names it with a tag that gets its own URL.
type TrafficTarget struct {
	// Tag names the target; it becomes a DNS label of the tag's URL.
	//
	// +kubebuilder:validation:MaxLength=63
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
