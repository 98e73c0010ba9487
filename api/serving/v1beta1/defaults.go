package v1beta1

import (
	"github.com/kgate/kgate/api/config"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
)

// SetDefaults fills in what Knative's defaulting webhook would: the ref's
// namespace is the mapping's. A mapping that names no namespace is in
// "default", as every object kgate reads. config-defaults sets nothing
// here; the parameter makes DomainMapping default like the v1 objects.
func (dm *DomainMapping) SetDefaults(config.Defaults) {
	if dm.Namespace == "" {
		dm.Namespace = servingv1.DefaultNamespace
	}
	if dm.Spec.Ref.Namespace == "" {
		dm.Spec.Ref.Namespace = dm.Namespace
	}
}
