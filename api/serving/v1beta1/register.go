package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
)

// GroupName is the API group of DomainMapping, the group of the v1 types.
const GroupName = servingv1.GroupName

// Version is the API version these types implement.
const Version = "v1beta1"

// APIVersion is the apiVersion string manifests carry.
const APIVersion = GroupName + "/" + Version

// KindDomainMapping is the kind of a DomainMapping.
const KindDomainMapping = "DomainMapping"

// SchemeGroupVersion is the group and version of the types in this package,
// as clients and schemes name it.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: Version}

// Resource returns the group-qualified resource for a plural name
// ("domainmappings" -> domainmappings.serving.knative.dev), as listers'
// errors need.
func Resource(resource string) schema.GroupResource {
	return SchemeGroupVersion.WithResource(resource).GroupResource()
}

var (
	// SchemeBuilder collects the functions that add this package's types to
	// a scheme. It is apimachinery's, not controller-runtime's, so the API
	// package does not depend on a controller framework.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds DomainMapping and DomainMappingList to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(SchemeGroupVersion, &DomainMapping{}, &DomainMappingList{})
	// Registers ListOptions, GetOptions, WatchEvent... in this group version,
	// which watches and parameter codecs need.
	metav1.AddToGroupVersion(s, SchemeGroupVersion)
	return nil
}
