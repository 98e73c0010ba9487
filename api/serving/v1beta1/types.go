package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
)

// DomainMapping maps a custom domain, its name, to a Knative Service or
// Route in its namespace.
//
// The name is a domain of at least two labels of at most 63 characters,
// outside the cluster's domain (cluster.local), and is not generated: rules on
// the root, the only place that sees metadata (the API server already refuses
// a name that is not a DNS-1123 subdomain). They report on metadata: the API
// server takes no fieldPath into the root's metadata. The label rule is a
// regular expression because splitting the name into labels costs more than
// the API server's CEL budget allows. A missing spec is Knative's three
// missing ref fields.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=domainmappings,singular=domainmapping,scope=Namespaced,shortName=dm,categories=all;knative;serving
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=".status.url"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=".status.conditions[?(@.type=='Ready')].status"
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=".status.conditions[?(@.type=='Ready')].reason"
// +kubebuilder:validation:XValidation:rule=`!has(self.metadata.generateName) || self.metadata.generateName == ""`,message=`must not set the field(s): metadata.generateName`,fieldPath=`.metadata`,reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule=`self.metadata.name.contains('.')`,messageExpression=`'invalid name "' + self.metadata.name + '": name: Invalid value: "' + self.metadata.name + '": should be a domain with at least two segments separated by dots'`,fieldPath=`.metadata`,reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule=`!self.metadata.name.matches('[^.]{64}')`,messageExpression=`'invalid name "' + self.metadata.name + '": name: Invalid value: "' + self.metadata.name.find('[^.]{64,}') + '": must be no more than 63 characters'`,fieldPath=`.metadata`,reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule=`!self.metadata.name.endsWith('.cluster.local')`,messageExpression=`'invalid name "' + self.metadata.name + '": must not be a subdomain of cluster local domain "cluster.local"'`,fieldPath=`.metadata`,reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule=`has(self.spec)`,message=`missing field(s): spec.ref.apiVersion, spec.ref.kind, spec.ref.name`,fieldPath=`.spec`,reason=FieldValueRequired
type DomainMapping struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DomainMappingSpec   `json:"spec,omitempty"`
	Status DomainMappingStatus `json:"status,omitempty"`
}

// DomainMappingList is a list of DomainMappings, as the API server returns it.
//
// +kubebuilder:object:root=true
type DomainMappingList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []DomainMapping `json:"items"`
}

// DomainMappingSpec names the target of the mapping and, optionally, the
// certificate to serve the domain with.
type DomainMappingSpec struct {
	// Ref is the object the domain maps to: a serving.knative.dev/v1
	// Service or Route in the mapping's namespace. (Knative resolves any
	// Addressable backed by a Kubernetes Service; kgate routes to Knative
	// Services and Routes.)
	//
	// The rules are Knative's checks of a reference that need nothing else;
	// the namespace check is the controller's, as CEL cannot see
	// metadata.namespace, and so is kgate's check of the kind.
	//
	// +kubebuilder:validation:XValidation:rule=`self.name != ""`,message=`missing field(s)`,fieldPath=`.name`,reason=FieldValueRequired
	// +kubebuilder:validation:XValidation:rule=`self.kind != ""`,message=`missing field(s)`,fieldPath=`.kind`,reason=FieldValueRequired
	// +kubebuilder:validation:XValidation:rule=`has(self.apiVersion) && self.apiVersion != ""`,message=`missing field(s)`,fieldPath=`.apiVersion`,reason=FieldValueRequired
	// +kubebuilder:validation:XValidation:rule=`!has(self.group) || self.group == ""`,message=`must not set the field(s)`,fieldPath=`.group`,reason=FieldValueForbidden
	Ref KReference `json:"ref"`

	// TLS names a Secret, in the mapping's namespace, whose certificate
	// serves the domain; without it the domain gets kgate's certificate when
	// external-domain-tls is on, and plain HTTP otherwise.
	TLS *SecretTLS `json:"tls,omitempty"`
}

// KReference refers to an object in the cluster, as Knative's
// knative.dev/pkg duck v1 KReference does (same fields, same JSON names).
type KReference struct {
	// Kind of the referent: Service or Route.
	Kind string `json:"kind"`
	// Namespace of the referent: the mapping's, which it defaults to.
	Namespace string `json:"namespace,omitempty"`
	// Name of the referent.
	Name string `json:"name"`
	// APIVersion of the referent: serving.knative.dev/v1.
	APIVersion string `json:"apiVersion,omitempty"`
	// Group is Knative's experimental alternative to APIVersion, which its
	// webhook refuses unless a feature flag allows it; kgate refuses it.
	Group string `json:"group,omitempty"`
	// Address names one of the referent's status.addresses. A Knative
	// Service or Route has one unnamed address, so kgate refuses a name here
	// rather than fail to resolve it later.
	Address *string `json:"address,omitempty"`
}

// SecretTLS names the Secret that terminates TLS for the domain.
type SecretTLS struct {
	// SecretName is a kubernetes.io/tls Secret in the mapping's namespace.
	SecretName string `json:"secretName"`
}

// DomainMappingStatus is the observed state of a DomainMapping: its
// conditions (see Conditions), and the URL and address the domain serves at.
type DomainMappingStatus struct {
	servingv1.Status `json:",inline"`

	// URL is http(s)://<name>: https when the domain is served with TLS.
	URL *servingv1.URL `json:"url,omitempty"`
	// Address holds the same URL, as Knative's Addressable duck type.
	Address *servingv1.Addressable `json:"address,omitempty"`
}
