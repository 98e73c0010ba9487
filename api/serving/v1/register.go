package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// SchemeGroupVersion is the group and version of the types in this package,
// as clients and schemes name it.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: Version}

// Resource returns the group-qualified resource for a plural name
// ("services" -> services.serving.knative.dev), as listers' errors need.
func Resource(resource string) schema.GroupResource {
	return SchemeGroupVersion.WithResource(resource).GroupResource()
}

var (
	// SchemeBuilder collects the functions that add this package's types to
	// a scheme. It is apimachinery's, not controller-runtime's, so the API
	// package does not depend on a controller framework.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds Service, Configuration, Revision, Route and their
	// lists to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(SchemeGroupVersion,
		&Service{}, &ServiceList{},
		&Configuration{}, &ConfigurationList{},
		&Revision{}, &RevisionList{},
		&Route{}, &RouteList{},
	)
	// Registers ListOptions, GetOptions, WatchEvent... in this group version,
	// which watches and parameter codecs need.
	metav1.AddToGroupVersion(s, SchemeGroupVersion)
	return nil
}
