package v1

import (
	"encoding/json"
	"fmt"
	"path"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kgate/kgate/api/autoscaling"
	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/api/fielderr"
)

// Validation follows Knative's webhook: the same rules and the same message
// texts (see fielderr.Messages to print them as Knative does), on
// field.Paths. Like the webhook, it expects objects that went through
// SetDefaults first.

// Validator validates against a cluster's config-defaults and
// config-autoscaler. It is not an API object, so it gets no deep copy.
//
// +kubebuilder:object:generate=false
type Validator struct {
	Defaults   config.Defaults
	Autoscaler config.Autoscaler
}

// DefaultValidator validates against Knative's default configuration.
func DefaultValidator() Validator {
	return Validator{Defaults: config.DefaultDefaults(), Autoscaler: config.DefaultAutoscaler()}
}

// ValidateService validates s against the default configuration.
func ValidateService(s *Service) field.ErrorList { return DefaultValidator().Service(s) }

// ValidateConfiguration validates c against the default configuration.
func ValidateConfiguration(c *Configuration) field.ErrorList {
	return DefaultValidator().Configuration(c)
}

// ValidateRoute validates r.
func ValidateRoute(r *Route) field.ErrorList { return DefaultValidator().Route(r) }

// ValidateRevision validates r against the default configuration.
func ValidateRevision(r *Revision) field.ErrorList { return DefaultValidator().Revision(r) }

// ValidateRevisionTemplate validates the template t of the Service or
// Configuration described by parent, at path (spec.template).
func ValidateRevisionTemplate(t *RevisionTemplateSpec, parent metav1.ObjectMeta, path *field.Path) field.ErrorList {
	return DefaultValidator().RevisionTemplate(t, parent, path)
}

// Service validates a Service: its metadata, template and traffic.
func (v Validator) Service(s *Service) field.ErrorList {
	errs := validateParentMetadata(s.ObjectMeta, field.NewPath("metadata"))
	errs = append(errs, validateRolloutDuration(s.Annotations, field.NewPath("metadata", "annotations"))...)
	spec := field.NewPath("spec")
	errs = append(errs, v.RevisionTemplate(&s.Spec.Template, s.ObjectMeta, spec.Child("template"))...)
	// An empty list is what SetDefaults turns into 100% latest.
	if len(s.Spec.Traffic) > 0 {
		errs = append(errs, validateTraffic(s.Spec.Traffic, true, spec.Child("traffic"))...)
	}
	return errs
}

// Configuration validates a Configuration: its metadata and template.
func (v Validator) Configuration(c *Configuration) field.ErrorList {
	errs := validateParentMetadata(c.ObjectMeta, field.NewPath("metadata"))
	return append(errs, v.RevisionTemplate(&c.Spec.Template, c.ObjectMeta, field.NewPath("spec", "template"))...)
}

// Route validates a Route: its metadata and traffic, each target naming a
// revisionName or a configurationName.
func (v Validator) Route(r *Route) field.ErrorList {
	errs := validateParentMetadata(r.ObjectMeta, field.NewPath("metadata"))
	errs = append(errs, validateRolloutDuration(r.Annotations, field.NewPath("metadata", "annotations"))...)
	return append(errs, validateTraffic(r.Spec.Traffic, false, field.NewPath("spec", "traffic"))...)
}

// Revision validates a Revision, whose own metadata carries its
// autoscaling annotations.
func (v Validator) Revision(r *Revision) field.ErrorList {
	meta := field.NewPath("metadata")
	errs := validateObjectMetadata(r.ObjectMeta, meta)
	errs = append(errs, v.annotations(r.Annotations, meta.Child("annotations"))...)
	return append(errs, v.RevisionSpec(&r.Spec, field.NewPath("spec"))...)
}

// RevisionTemplate validates the template of the object described by parent.
func (v Validator) RevisionTemplate(t *RevisionTemplateSpec, parent metav1.ObjectMeta, p *field.Path) field.ErrorList {
	errs := v.RevisionSpec(&t.Spec, p.Child("spec"))
	meta := p.Child("metadata")
	errs = append(errs, validateAnnotationSize(t.Annotations, meta.Child("annotations"))...)
	errs = append(errs, v.annotations(t.Annotations, meta.Child("annotations"))...)
	return append(errs, validateRevisionName(t.Name, t.GenerateName, parent, meta)...)
}

func (v Validator) annotations(ann map[string]string, p *field.Path) field.ErrorList {
	a, errs := autoscaling.Parse(ann, p)
	return append(errs, a.ValidateWith(v.Autoscaler, ann, p)...)
}

// validateObjectMetadata is Knative's: a DNS-1035 name (or generateName).
func validateObjectMetadata(m metav1.ObjectMeta, p *field.Path) field.ErrorList {
	if m.GenerateName != "" {
		if msgs := apivalidation.NameIsDNS1035Label(m.GenerateName, true); len(msgs) > 0 {
			return field.ErrorList{fielderr.Generic(p.Child("generateName"), m.GenerateName, fmt.Sprintf("not a DNS 1035 label prefix: %v", msgs))}
		}
	}
	if m.Name != "" {
		if msgs := validation.IsDNS1035Label(m.Name); len(msgs) > 0 {
			return field.ErrorList{fielderr.Generic(p.Child("name"), m.Name, fmt.Sprintf("not a DNS 1035 label: %v", msgs))}
		}
	}
	if m.Name == "" && m.GenerateName == "" {
		return field.ErrorList{field.Required(p.Child("name"), "name or generateName is required")}
	}
	return validateAnnotationSize(m.Annotations, p.Child("annotations"))
}

// validateAnnotationSize refuses annotations over the API server's total of
// 256 KiB (keys and values), as it would.
func validateAnnotationSize(ann map[string]string, p *field.Path) field.ErrorList {
	n := 0
	for k, v := range ann {
		n += len(k) + len(v)
	}
	if n > apivalidation.TotalAnnotationSizeLimitB {
		return field.ErrorList{field.TooLong(p, "", apivalidation.TotalAnnotationSizeLimitB)}
	}
	return nil
}

// validateParentMetadata checks the metadata of a Service, Configuration or
// Route, where autoscaling annotations would have no effect.
func validateParentMetadata(m metav1.ObjectMeta, p *field.Path) field.ErrorList {
	errs := validateObjectMetadata(m, p)
	for _, k := range autoscaling.Keys(m.Annotations) {
		errs = append(errs, fielderr.Generic(p.Child("annotations"), k, fmt.Sprintf("invalid key name %q", k),
			`autoscaling annotations must be put under "spec.template.metadata.annotations" to work`))
	}
	return errs
}

// validateRevisionName checks a template's name: a DNS-1035 label starting
// with "<parent>-".
func validateRevisionName(name, generateName string, parent metav1.ObjectMeta, meta *field.Path) field.ErrorList {
	if generateName != "" {
		if msgs := apivalidation.NameIsDNS1035Label(generateName, true); len(msgs) > 0 {
			return field.ErrorList{fielderr.Invalid(meta.Child("generateName"), fmt.Sprint("not a DNS 1035 label prefix: ", msgs))}
		}
	}
	if name == "" {
		return nil
	}
	if msgs := validation.IsDNS1035Label(name); len(msgs) > 0 {
		return field.ErrorList{fielderr.Invalid(meta.Child("name"), fmt.Sprint("not a DNS 1035 label: ", msgs))}
	}
	if parent.Name == "" && parent.GenerateName != "" {
		return field.ErrorList{fielderr.Disallowed(meta.Child("name"))}
	}
	if prefix := parent.Name + "-"; len(name) < len(prefix) || name[:len(prefix)] != prefix {
		return field.ErrorList{fielderr.Invalid(meta.Child("name"), fmt.Sprintf("%q must have prefix %q", name, prefix))}
	}
	return nil
}

// validateTraffic checks a traffic list. In a Service a target may leave out
// both names (it means the Service's Configuration) and may not name a
// configuration.
func validateTraffic(traffic []TrafficTarget, inService bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	tags := map[string]int{}
	var sum int64
	for i, tt := range traffic {
		tp := p.Index(i)
		if tt.LatestRevision != nil {
			if pinned := tt.RevisionName != ""; pinned == *tt.LatestRevision {
				errs = append(errs, fielderr.Generic(tp.Child("latestRevision"), *tt.LatestRevision,
					fmt.Sprintf("may not set revisionName %q when latestRevision is %t", tt.RevisionName, *tt.LatestRevision)))
			}
		}
		switch {
		case inService && tt.ConfigurationName != "":
			errs = append(errs, fielderr.Disallowed(tp.Child("configurationName")))
		case tt.RevisionName != "" && tt.ConfigurationName != "":
			errs = append(errs, fielderr.MultipleOneOf(tp.Child("revisionName"), tp.Child("configurationName"))...)
		case tt.RevisionName != "":
			if msgs := validation.IsQualifiedName(tt.RevisionName); len(msgs) > 0 {
				errs = append(errs, fielderr.Generic(tp.Child("revisionName"), tt.RevisionName, fmt.Sprintf("invalid key name %q", tt.RevisionName), msgs...))
			}
		case tt.ConfigurationName != "":
			if msgs := validation.IsQualifiedName(tt.ConfigurationName); len(msgs) > 0 {
				errs = append(errs, fielderr.Generic(tp.Child("configurationName"), tt.ConfigurationName, fmt.Sprintf("invalid key name %q", tt.ConfigurationName), msgs...))
			}
		case !inService:
			errs = append(errs, fielderr.MissingOneOf(tp.Child("revisionName"), tp.Child("configurationName"))...)
		}
		if tt.Percent != nil {
			if *tt.Percent < 0 || *tt.Percent > 100 {
				errs = append(errs, fielderr.OutOfBounds(tp.Child("percent"), *tt.Percent, 0, 100))
			}
			sum += *tt.Percent
		}
		if tt.URL != nil {
			errs = append(errs, fielderr.Disallowed(tp.Child("url")))
		}
		if tt.Tag == "" {
			continue
		}
		if msgs := validation.IsDNS1035Label(tt.Tag); len(msgs) > 0 {
			errs = append(errs, fielderr.Invalid(tp.Child("tag"), fmt.Sprint("not a DNS 1035 label: ", msgs)))
		}
		if j, ok := tags[tt.Tag]; ok {
			msg := fmt.Sprintf("Multiple definitions for %q", tt.Tag)
			errs = append(errs, fielderr.Generic(tp.Child("tag"), tt.Tag, msg), fielderr.Generic(p.Index(j).Child("tag"), tt.Tag, msg))
		} else {
			tags[tt.Tag] = i
		}
	}
	if sum != 100 {
		errs = append(errs, fielderr.Generic(p, sum, fmt.Sprintf("Traffic targets sum to %d, want 100", sum)))
	}
	return errs
}

// Knative's reserved names and ports.
var (
	reservedContainerNames = map[string]bool{"queue-proxy": true}
	// PORT is set by the platform for the serving container only.
	reservedEnv        = map[string]bool{"PORT": true, "K_SERVICE": true, "K_CONFIGURATION": true, "K_REVISION": true}
	reservedSidecarEnv = map[string]bool{"K_SERVICE": true, "K_CONFIGURATION": true, "K_REVISION": true}
	// 8012/8013 queue-proxy HTTP and HTTP/2, 8022 queue admin, 9090/9091
	// metrics, 8008 profiling.
	reservedPorts  = map[int32]bool{8012: true, 8013: true, 8022: true, 9090: true, 9091: true, 8008: true}
	validPortNames = map[string]bool{"h2c": true, "http1": true, "": true}
	reservedPaths  = map[string]bool{"/": true, "/dev": true, "/dev/log": true}
)

// Fields of a PodSpec, Container and ContainerPort Knative lets users set
// with its default feature flags; anything else is "must not set".
var (
	allowedPodSpec = set("serviceAccountName", "containers", "volumes", "imagePullSecrets",
		"enableServiceLinks", "automountServiceAccountToken", "securityContext")
	allowedContainer = set("name", "args", "command", "env", "workingDir", "envFrom", "image",
		"imagePullPolicy", "livenessProbe", "ports", "readinessProbe", "resources", "securityContext",
		"startupProbe", "terminationMessagePath", "terminationMessagePolicy", "volumeMounts")
	allowedPort = set("containerPort", "name", "protocol")
)

// RevisionSpec validates a Revision's spec at p.
func (v Validator) RevisionSpec(rs *RevisionSpec, p *field.Path) field.ErrorList {
	errs := disallowed(rs.PodSpec, allowedPodSpec, p)
	if a := rs.AutomountServiceAccountToken; a != nil && *a {
		errs = append(errs, fielderr.Disallowed(p.Child("automountServiceAccountToken")))
	}
	if rs.ServiceAccountName != "" {
		for _, msg := range validation.IsDNS1123Subdomain(rs.ServiceAccountName) {
			errs = append(errs, fielderr.Invalid(p.Child("serviceAccountName"), rs.ServiceAccountName, msg))
		}
	}

	mounted := map[string]bool{}
	for _, c := range rs.Containers {
		for _, m := range c.VolumeMounts {
			mounted[m.Name] = true
		}
	}
	volumes := map[string]bool{}
	for i, vol := range rs.Volumes {
		vp := p.Child("volumes").Index(i).Child("name")
		switch {
		case vol.Name == "":
			errs = append(errs, fielderr.Missing(vp))
		case volumes[vol.Name]:
			errs = append(errs, fielderr.Generic(vp, vol.Name, fmt.Sprintf("duplicate volume name %q", vol.Name)))
		case !mounted[vol.Name]:
			errs = append(errs, fielderr.Generic(vp, vol.Name, fmt.Sprintf("volume with name %q not mounted", vol.Name)))
		}
		volumes[vol.Name] = true
	}

	cs := p.Child("containers")
	ports := 0
	for _, c := range rs.Containers {
		ports += len(c.Ports)
	}
	switch {
	case ports == 0 && len(rs.Containers) > 1:
		errs = append(errs, fielderr.Missing(p.Child("containers[*]", "ports")))
	case ports > 1:
		errs = append(errs, fielderr.Generic(p.Child("containers[*]", "ports"), ports, "more than one container port is set", "Only a single port is allowed across all containers"))
	}
	switch len(rs.Containers) {
	case 0:
		errs = append(errs, fielderr.Missing(cs))
	case 1:
		errs = append(errs, validateContainer(rs.Containers[0], true, volumes, cs.Index(0))...)
	default:
		names := map[string]bool{}
		for i, c := range rs.Containers {
			if names[c.Name] {
				errs = append(errs, fielderr.Generic(cs.Index(i).Child("name"), c.Name, fmt.Sprintf("duplicate container name %q", c.Name)))
			}
			names[c.Name] = true
			errs = append(errs, validateContainer(c, len(c.Ports) > 0, volumes, cs.Index(i))...)
		}
	}

	// Knative bounds all three timeouts by max-revision-timeout-seconds;
	// 0 is none.
	for _, t := range []struct {
		name  string
		value *int64
	}{
		{"timeoutSeconds", rs.TimeoutSeconds},
		{"responseStartTimeoutSeconds", rs.ResponseStartTimeoutSeconds},
		{"idleTimeoutSeconds", rs.IdleTimeoutSeconds},
	} {
		if t.value != nil && *t.value != 0 && (*t.value < 0 || *t.value > v.Defaults.MaxRevisionTimeoutSeconds) {
			errs = append(errs, fielderr.OutOfBounds(p.Child(t.name), *t.value, 0, v.Defaults.MaxRevisionTimeoutSeconds))
		}
	}
	if cc := rs.ContainerConcurrency; cc != nil {
		var lowest int64
		if !v.Defaults.AllowContainerConcurrencyZero {
			lowest = 1
		}
		if *cc < lowest || *cc > v.Defaults.ContainerConcurrencyMaxLimit {
			errs = append(errs, fielderr.OutOfBounds(p.Child("containerConcurrency"), *cc, lowest, v.Defaults.ContainerConcurrencyMaxLimit))
		}
	}
	return errs
}

// validateContainer checks one container; serving is true for the user
// container (the only one, or the one with the port), false for a sidecar.
func validateContainer(c corev1.Container, serving bool, volumes map[string]bool, p *field.Path) field.ErrorList {
	errs := disallowed(c, allowedContainer, p)
	if reservedContainerNames[c.Name] {
		errs = append(errs, fielderr.Generic(p.Child("name"), c.Name, fmt.Sprintf("%q is a reserved container name", c.Name)))
	}
	reserved := reservedEnv
	if !serving {
		reserved = reservedSidecarEnv
	}
	for i, e := range c.Env {
		ep := p.Child("env").Index(i).Child("name")
		switch {
		case e.Name == "":
			errs = append(errs, fielderr.Missing(ep))
		case reserved[e.Name]:
			errs = append(errs, fielderr.Generic(ep, e.Name, fmt.Sprintf("%q is a reserved environment variable", e.Name)))
		}
	}
	for i, ef := range c.EnvFrom {
		ep := p.Child("envFrom").Index(i)
		switch {
		case ef.ConfigMapRef != nil && ef.SecretRef != nil:
			errs = append(errs, fielderr.MultipleOneOf(ep.Child("configMapRef"), ep.Child("secretRef"))...)
		case ef.ConfigMapRef == nil && ef.SecretRef == nil:
			errs = append(errs, fielderr.MissingOneOf(ep.Child("configMapRef"), ep.Child("secretRef"))...)
		}
	}
	if c.Image == "" {
		errs = append(errs, fielderr.Missing(p.Child("image")))
	}
	for i, port := range c.Ports {
		pp := p.Child("ports").Index(i)
		errs = append(errs, disallowed(port, allowedPort, pp)...)
		if reservedPorts[port.ContainerPort] {
			errs = append(errs, fielderr.Invalid(pp.Child("containerPort"), fmt.Sprintf("%d is a reserved port", port.ContainerPort),
				fmt.Sprintf("%d is a reserved port, please use a different value", port.ContainerPort)))
		}
		if port.ContainerPort < 0 || port.ContainerPort > 65535 {
			errs = append(errs, fielderr.OutOfBounds(pp.Child("containerPort"), port.ContainerPort, 0, 65535))
		}
		if i > 0 {
			continue // the count check reports extra ports
		}
		if port.Protocol != "" && port.Protocol != corev1.ProtocolTCP {
			errs = append(errs, fielderr.Invalid(pp.Child("protocol"), port.Protocol))
		}
		if !validPortNames[port.Name] {
			errs = append(errs, fielderr.Generic(pp.Child("name"), port.Name, fmt.Sprintf("Port name %v is not allowed", port.Name),
				"Name must be empty, or one of: 'h2c', 'http1'"))
		}
	}
	if serving {
		errs = append(errs, validateProbe(c.ReadinessProbe, p.Child("readinessProbe"))...)
		errs = append(errs, validateProbe(c.LivenessProbe, p.Child("livenessProbe"))...)
		errs = append(errs, validateProbe(c.StartupProbe, p.Child("startupProbe"))...)
	}
	switch c.TerminationMessagePolicy {
	case corev1.TerminationMessageReadFile, corev1.TerminationMessageFallbackToLogsOnError, "":
	default:
		errs = append(errs, fielderr.Invalid(p.Child("terminationMessagePolicy"), c.TerminationMessagePolicy))
	}
	seen := map[string]bool{}
	for i, m := range c.VolumeMounts {
		mp := p.Child("volumeMounts").Index(i)
		if !volumes[m.Name] {
			errs = append(errs, fielderr.Generic(mp.Child("name"), m.Name, "volumeMount has no matching volume"))
		}
		clean := path.Clean(m.MountPath)
		switch {
		case m.MountPath == "":
			errs = append(errs, fielderr.Missing(mp.Child("mountPath")))
		case reservedPaths[clean]:
			errs = append(errs, fielderr.Generic(mp.Child("mountPath"), m.MountPath, fmt.Sprintf("mountPath %q is a reserved path", clean)))
		case !path.IsAbs(m.MountPath):
			errs = append(errs, fielderr.Invalid(mp.Child("mountPath"), m.MountPath))
		case seen[clean]:
			errs = append(errs, fielderr.Invalid(mp.Child("mountPath"), fmt.Sprintf("%q must be unique", m.MountPath)))
		}
		seen[clean] = true
	}
	return errs
}

// validateProbe checks that a probe has exactly one handler.
func validateProbe(pr *corev1.Probe, p *field.Path) field.ErrorList {
	if pr == nil {
		return nil
	}
	var set []*field.Path
	h := pr.ProbeHandler
	if h.HTTPGet != nil {
		set = append(set, p.Child("httpGet"))
	}
	if h.TCPSocket != nil {
		set = append(set, p.Child("tcpSocket"))
	}
	if h.Exec != nil {
		set = append(set, p.Child("exec"))
	}
	if h.GRPC != nil {
		set = append(set, p.Child("grpc"))
	}
	switch {
	case len(set) == 0:
		return fielderr.MissingOneOf(p.Child("httpGet"), p.Child("tcpSocket"), p.Child("exec"), p.Child("grpc"))
	case len(set) > 1:
		return fielderr.MultipleOneOf(set...)
	}
	return nil
}

// disallowed reports the JSON fields set in obj that allowed does not list.
// Reading the JSON form keeps the list in step with the Kubernetes types.
func disallowed(obj any, allowed map[string]bool, p *field.Path) field.ErrorList {
	b, err := json.Marshal(obj)
	if err != nil {
		return field.ErrorList{field.InternalError(p, err)}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return field.ErrorList{field.InternalError(p, err)}
	}
	var keys []string
	for k, raw := range m {
		if !allowed[k] && !isZeroJSON(raw) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var errs field.ErrorList
	for _, k := range keys {
		errs = append(errs, fielderr.Disallowed(p.Child(k)))
	}
	return errs
}

// isZeroJSON reports JSON values that mean "not set" for fields the
// Kubernetes types do not omit when empty.
func isZeroJSON(raw json.RawMessage) bool {
	switch string(raw) {
	case "null", "{}", "[]", `""`, "0", "false":
		return true
	}
	return false
}

func set(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}
