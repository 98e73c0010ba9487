package v1beta1

import (
	"fmt"
	"strings"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kgate/kgate/api/fielderr"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
)

// ClusterDomain is the cluster's DNS domain. A mapping's domain may not be
// under it: those names are the cluster's own (name.ns.svc.cluster.local).
// Knative reads it from the pod's resolv.conf; kgate uses Kubernetes'
// default, as for cluster-local Routes.
const ClusterDomain = "cluster.local"

// ValidateDomainMapping validates dm as Knative's webhook does, with its
// messages (see fielderr.Messages), and then what kgate needs to serve it
// (see routable). Like the webhook, it expects a mapping that went through
// SetDefaults first.
func ValidateDomainMapping(dm *DomainMapping) field.ErrorList {
	errs := validateMetadata(dm, field.NewPath("metadata"))
	spec := field.NewPath("spec")
	errs = append(errs, validateRef(dm.Spec.Ref, dm.Namespace, spec.Child("ref"))...)
	errs = append(errs, routable(dm.Spec.Ref, spec.Child("ref"))...)
	return append(errs, validateTLS(dm.Spec.TLS, spec.Child("tls"))...)
}

// validateMetadata is Knative's: the name is a domain, not under the
// cluster's, and not generated (a generated name is no domain). kgate adds
// the API server's own limits, so that kgate local refuses what a cluster
// would: no trailing dot, annotations within 256 KiB.
func validateMetadata(dm *DomainMapping, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if dm.GenerateName != "" {
		errs = append(errs, fielderr.Disallowed(p.Child("generateName")))
	}
	// Knative reports the apimachinery error under the path "name", within
	// its own message on metadata.name.
	if ferrs := validation.IsFullyQualifiedDomainName(field.NewPath("name"), dm.Name); len(ferrs) > 0 {
		errs = append(errs, fielderr.Generic(p.Child("name"), dm.Name, fmt.Sprintf("invalid name %q: %s", dm.Name, ferrs.ToAggregate())))
	} else if strings.HasSuffix(dm.Name, ".") {
		// IsFullyQualifiedDomainName takes "example.com."; object names
		// cannot end in a dot.
		for _, msg := range validation.IsDNS1123Subdomain(dm.Name) {
			errs = append(errs, fielderr.Invalid(p.Child("name"), dm.Name, msg))
		}
	}
	if strings.HasSuffix(dm.Name, "."+ClusterDomain) {
		errs = append(errs, fielderr.Generic(p.Child("name"), dm.Name,
			fmt.Sprintf("invalid name %q: must not be a subdomain of cluster local domain %q", dm.Name, ClusterDomain)))
	}
	n := 0
	for k, v := range dm.Annotations {
		n += len(k) + len(v)
	}
	if n > apivalidation.TotalAnnotationSizeLimitB {
		errs = append(errs, field.TooLong(p.Child("annotations"), "", apivalidation.TotalAnnotationSizeLimitB))
	}
	return errs
}

// validateRef is Knative's KReference validation with its default feature
// flags: name, apiVersion and kind given, no group, and the namespace the
// mapping's (parentNS), since a mapping serves only its own namespace.
func validateRef(ref KReference, parentNS string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if ref.Name == "" {
		errs = append(errs, fielderr.Missing(p.Child("name")))
	}
	if ref.Group != "" {
		errs = append(errs, fielderr.Disallowed(p.Child("group")))
	}
	if ref.APIVersion == "" {
		errs = append(errs, fielderr.Missing(p.Child("apiVersion")))
	}
	if ref.Kind == "" {
		errs = append(errs, fielderr.Missing(p.Child("kind")))
	}
	// An empty namespace is left to SetDefaults, as in Knative.
	if ref.Namespace != "" && parentNS != "" && ref.Namespace != parentNS {
		errs = append(errs, fielderr.Generic(p.Child("namespace"), ref.Namespace, "mismatched namespaces",
			fmt.Sprintf("parent namespace: %q does not match ref: %q", parentNS, ref.Namespace)))
	}
	return errs
}

// routableKinds are the kinds of serving.knative.dev/v1 kgate can map a
// domain to: the addressable ones.
var routableKinds = map[string]bool{servingv1.KindService: true, servingv1.KindRoute: true}

// routable is kgate's rule, not Knative's: Knative resolves any Addressable
// (a Kubernetes Service too) when it reconciles, whereas kgate routes to
// Knative Services and Routes only, by their one address. The API server
// accepts other references, as Knative's does; this check makes them an
// error on the field rather than a mapping that never resolves.
func routable(ref KReference, p *field.Path) field.ErrorList {
	const want = "a DomainMapping's ref must be a " + servingv1.APIVersion + " Service or Route"
	var errs field.ErrorList
	switch {
	case ref.APIVersion == "" || ref.Kind == "":
		// validateRef reports what is missing.
	case ref.APIVersion != servingv1.APIVersion:
		errs = append(errs, fielderr.Invalid(p.Child("apiVersion"), ref.APIVersion, want))
	case !routableKinds[ref.Kind]:
		errs = append(errs, fielderr.Invalid(p.Child("kind"), ref.Kind, want))
	}
	if ref.Address != nil && *ref.Address != "" {
		errs = append(errs, fielderr.Invalid(p.Child("address"), *ref.Address,
			"a Knative Service or Route has one unnamed address; leave address out"))
	}
	return errs
}

// validateTLS checks the Secret's name, which Knative leaves to the
// gateway: a name no Secret can have would only fail later, unexplained.
func validateTLS(tls *SecretTLS, p *field.Path) field.ErrorList {
	if tls == nil {
		return nil
	}
	sp := p.Child("secretName")
	if tls.SecretName == "" {
		return field.ErrorList{fielderr.Missing(sp)}
	}
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Subdomain(tls.SecretName) {
		errs = append(errs, fielderr.Invalid(sp, tls.SecretName, msg))
	}
	return errs
}
