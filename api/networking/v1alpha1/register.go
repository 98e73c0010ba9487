package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is Knative's internal networking API group.
const GroupName = "networking.internal.knative.dev"

// Version is the API version these types implement.
const Version = "v1alpha1"

// APIVersion is the apiVersion string manifests carry.
const APIVersion = GroupName + "/" + Version

// KindClusterDomainClaim is the kind of a ClusterDomainClaim.
const KindClusterDomainClaim = "ClusterDomainClaim"

// SchemeGroupVersion is the group and version of the types in this package.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: Version}

var (
	// SchemeBuilder collects the functions that add this package's types to
	// a scheme (apimachinery's, so the API package needs no controller
	// framework).
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds ClusterDomainClaim and its list to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(SchemeGroupVersion, &ClusterDomainClaim{}, &ClusterDomainClaimList{})
	metav1.AddToGroupVersion(s, SchemeGroupVersion)
	return nil
}
