package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// ClusterDomainClaim reserves a domain, its name, for the DomainMappings of
// one namespace. Knative's DomainMapping reconciler creates one when
// config-network's autocreate-cluster-domain-claims is true; otherwise a
// cluster administrator does, and a DomainMapping of a domain without a
// claim for its namespace is not Ready.
//
// +genclient
// +genclient:nonNamespaced
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=knative-internal;networking,shortName=cdc
// +kubebuilder:printcolumn:name="Namespace",type=string,JSONPath=".spec.namespace"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type ClusterDomainClaim struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the claim.
	// +optional
	Spec ClusterDomainClaimSpec `json:"spec,omitempty"`
}

// ClusterDomainClaimSpec names the namespace the domain is delegated to.
type ClusterDomainClaimSpec struct {
	// Namespace is the namespace whose DomainMappings may map the domain.
	// +kubebuilder:validation:MinLength=1
	Namespace string `json:"namespace"`
}

// ClusterDomainClaimList is a list of ClusterDomainClaims.
//
// +kubebuilder:object:root=true
type ClusterDomainClaimList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterDomainClaim `json:"items"`
}
