package manifest

import (
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kgate/kgate/api/fielderr"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
)

// serving.knative.dev/v1alpha1, Knative's API until 2019 (the 0.x releases),
// is read by converting it to serving.knative.dev/v1 as Knative's own
// conversion (pkg/apis/serving/v1alpha1/*_conversion.go) did, after the
// checks of its v1alpha1 validation that v1 cannot make:
//
//   - runLatest: the configuration's template, traffic 100% to the latest
//     revision.
//   - release: the template; traffic to revisions[0] (tag "current", 100 −
//     rolloutPercent) and revisions[1] (tag "candidate", rolloutPercent),
//     plus a tag "latest" on the latest revision with no traffic. The
//     revision name "@latest" means the latest revision.
//   - pinned: the template; traffic 100% to revisionName, untagged.
//   - manual: cannot be converted (Knative could not either).
//   - template and traffic inline (the v1beta1 shape v1alpha1 also took):
//     kept, a target's name becoming its tag.
//
// In a revision template, container becomes containers[0], concurrencyModel
// Single becomes containerConcurrency 1, and the long-ignored generation and
// servingState are dropped; Knative Build (build, buildName, buildRef) is
// gone and cannot be converted. Errors name the v1alpha1 field paths, so
// that they point into the file as written.

// v1alpha1 is the older Knative API version.
const v1alpha1 = servingv1.GroupName + "/v1alpha1"

// latestKeyword is release mode's name for the latest revision.
const latestKeyword = "@latest"

// alphaObject is a decoded v1alpha1 object.
type alphaObject interface {
	// convert returns the v1 object and notes on what changed, or the
	// errors that stop the conversion.
	convert() (obj any, notes []string, errs field.ErrorList)
}

// Types of v1alpha1 as manifests spelled it (their union over the 0.x
// releases). Only exported types are embedded, so that a JSON type error's
// Go path maps back to the JSON path (see jsonPath).

type alphaService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   alphaServiceSpec `json:"spec"`
	Status json.RawMessage  `json:"status,omitempty"` // ignored, as for v1
}

type alphaServiceSpec struct {
	Generation int64           `json:"generation,omitempty"`
	RunLatest  *alphaRunLatest `json:"runLatest,omitempty"`
	Release    *alphaRelease   `json:"release,omitempty"`
	Pinned     *alphaPinned    `json:"pinned,omitempty"`
	Manual     *struct{}       `json:"manual,omitempty"`

	// The inline ConfigurationSpec and RouteSpec.
	Build            *json.RawMessage           `json:"build,omitempty"`
	RevisionTemplate *alphaRevisionTemplateSpec `json:"revisionTemplate,omitempty"`
	Template         *alphaRevisionTemplateSpec `json:"template,omitempty"`
	Traffic          []alphaTrafficTarget       `json:"traffic,omitempty"`
}

type alphaRunLatest struct {
	Configuration alphaConfigurationSpec `json:"configuration"`
}

type alphaRelease struct {
	Revisions      []string               `json:"revisions,omitempty"`
	RolloutPercent int                    `json:"rolloutPercent,omitempty"`
	Configuration  alphaConfigurationSpec `json:"configuration"`
}

type alphaPinned struct {
	RevisionName  string                 `json:"revisionName,omitempty"`
	Configuration alphaConfigurationSpec `json:"configuration"`
}

type alphaConfiguration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   alphaConfigurationSpec `json:"spec"`
	Status json.RawMessage        `json:"status,omitempty"`
}

type alphaConfigurationSpec struct {
	Generation       int64                      `json:"generation,omitempty"`
	Build            *json.RawMessage           `json:"build,omitempty"`
	RevisionTemplate *alphaRevisionTemplateSpec `json:"revisionTemplate,omitempty"`
	Template         *alphaRevisionTemplateSpec `json:"template,omitempty"`
}

type alphaRevisionTemplateSpec struct {
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              alphaRevisionSpec `json:"spec"`
}

type alphaRevision struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   alphaRevisionSpec `json:"spec"`
	Status json.RawMessage   `json:"status,omitempty"`
}

type alphaRevisionSpec struct {
	servingv1.RevisionSpec `json:",inline"`

	Container        *corev1.Container       `json:"container,omitempty"`
	ConcurrencyModel string                  `json:"concurrencyModel,omitempty"`
	Generation       int64                   `json:"generation,omitempty"`
	ServingState     string                  `json:"servingState,omitempty"`
	BuildName        string                  `json:"buildName,omitempty"`
	BuildRef         *corev1.ObjectReference `json:"buildRef,omitempty"`
}

type alphaRoute struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   alphaRouteSpec  `json:"spec"`
	Status json.RawMessage `json:"status,omitempty"`
}

type alphaRouteSpec struct {
	Generation int64                `json:"generation,omitempty"`
	Traffic    []alphaTrafficTarget `json:"traffic,omitempty"`
}

type alphaTrafficTarget struct {
	servingv1.TrafficTarget `json:",inline"`

	Name string `json:"name,omitempty"` // the tag's old name
}

// notes collects what a conversion changed, once each.
type notes []string

func (n *notes) add(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	for _, x := range *n {
		if x == s {
			return
		}
	}
	*n = append(*n, s)
}

// deprecation is the warning a converted object carries.
func deprecation(n notes) string {
	if len(n) == 0 {
		return fmt.Sprintf("%s is deprecated: read as %s, whose fields are the same here; change apiVersion to %s",
			v1alpha1, servingv1.APIVersion, servingv1.APIVersion)
	}
	return fmt.Sprintf("%s is deprecated: converted to %s (%s); write %s",
		v1alpha1, servingv1.APIVersion, strings.Join(n, "; "), servingv1.APIVersion)
}

func (s *alphaService) convert() (any, []string, field.ErrorList) {
	spec := field.NewPath("spec")
	ss := &s.Spec
	var n notes
	var errs field.ErrorList
	if ss.Generation != 0 {
		n.add("spec.generation ignored")
	}

	// Exactly one mode, or the inline template; traffic only with the latter.
	var modes []*field.Path
	if ss.RunLatest != nil {
		modes = append(modes, spec.Child("runLatest"))
	}
	if ss.Release != nil {
		modes = append(modes, spec.Child("release"))
	}
	if ss.Pinned != nil {
		modes = append(modes, spec.Child("pinned"))
	}
	if ss.Manual != nil {
		modes = append(modes, spec.Child("manual"))
		errs = append(errs, fielderr.Generic(spec.Child("manual"), "manual",
			"manual mode cannot be converted to "+servingv1.APIVersion,
			"declare a Configuration and a Route instead"))
	}
	if len(modes) > 0 && len(ss.Traffic) > 0 {
		errs = append(errs, fielderr.MultipleOneOf(append([]*field.Path{spec.Child("traffic")}, modes...)...)...)
	}
	set := modes
	inline := alphaConfigurationSpec{Build: ss.Build, RevisionTemplate: ss.RevisionTemplate, Template: ss.Template}
	switch {
	case ss.Template != nil:
		set = append(set, spec.Child("template"))
	case ss.RevisionTemplate != nil:
		set = append(set, spec.Child("revisionTemplate"))
	case ss.Build != nil:
		set = append(set, spec.Child("build"))
	}
	switch {
	case len(set) > 1:
		errs = append(errs, fielderr.MultipleOneOf(set...)...)
	case len(set) == 0:
		errs = append(errs, fielderr.MissingOneOf(spec.Child("runLatest"), spec.Child("release"),
			spec.Child("pinned"), spec.Child("template"))...)
	}
	if len(errs) > 0 {
		return nil, nil, errs
	}

	out := &servingv1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: servingv1.APIVersion, Kind: servingv1.KindService},
		ObjectMeta: s.ObjectMeta,
	}
	var cfg *alphaConfigurationSpec
	var cp *field.Path
	switch {
	case ss.RunLatest != nil:
		cfg, cp = &ss.RunLatest.Configuration, spec.Child("runLatest", "configuration")
		out.Spec.Traffic = []servingv1.TrafficTarget{{LatestRevision: ptr(true), Percent: ptr[int64](100)}}
		n.add("spec.runLatest → spec.template + traffic [latestRevision 100%%]")
	case ss.Release != nil:
		cfg, cp = &ss.Release.Configuration, spec.Child("release", "configuration")
		out.Spec.Traffic, errs = ss.Release.traffic(spec.Child("release"))
		if len(errs) == 0 {
			n.add("spec.release → spec.template + traffic [%s]", describeTraffic(out.Spec.Traffic))
		}
	case ss.Pinned != nil:
		cfg, cp = &ss.Pinned.Configuration, spec.Child("pinned", "configuration")
		if ss.Pinned.RevisionName == "" {
			errs = append(errs, fielderr.Missing(spec.Child("pinned", "revisionName")))
		}
		out.Spec.Traffic = []servingv1.TrafficTarget{{RevisionName: ss.Pinned.RevisionName, Percent: ptr[int64](100)}}
		n.add("spec.pinned → spec.template + traffic [%s]", describeTraffic(out.Spec.Traffic))
	default:
		cfg, cp = &inline, spec
		if inline.RevisionTemplate != nil {
			n.add("spec.revisionTemplate → spec.template")
		}
		var terrs field.ErrorList
		out.Spec.Traffic, terrs = convertTraffic(ss.Traffic, spec.Child("traffic"), &n)
		errs = append(errs, terrs...)
	}
	var cerrs field.ErrorList
	out.Spec.ConfigurationSpec, cerrs = cfg.convert(cp, &n)
	errs = append(errs, cerrs...)
	if len(errs) > 0 {
		return nil, nil, errs
	}
	return out, n, nil
}

// traffic checks a release as Knative's v1alpha1 validation did and returns
// its traffic.
func (r *alphaRelease) traffic(p *field.Path) ([]servingv1.TrafficTarget, field.ErrorList) {
	var errs field.ErrorList
	switch n := len(r.Revisions); {
	case n == 0:
		errs = append(errs, fielderr.Missing(p.Child("revisions")))
	case n > 2:
		errs = append(errs, fielderr.OutOfBounds(p.Child("revisions"), n, 1, 2))
	}
	for i, rev := range r.Revisions {
		if rev == latestKeyword {
			continue
		}
		if msgs := validation.IsDNS1035Label(rev); len(msgs) > 0 {
			errs = append(errs, fielderr.Invalid(p.Child("revisions").Index(i), fmt.Sprint("not a DNS 1035 label: ", msgs)))
		}
	}
	if r.RolloutPercent < 0 || r.RolloutPercent > 99 {
		errs = append(errs, fielderr.OutOfBounds(p.Child("rolloutPercent"), r.RolloutPercent, 0, 99))
	} else if len(r.Revisions) < 2 && r.RolloutPercent != 0 {
		errs = append(errs, fielderr.Invalid(p.Child("rolloutPercent"), r.RolloutPercent,
			"rolloutPercent is the candidate's share: it needs a second revision"))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	target := func(rev, tag string, percent int) servingv1.TrafficTarget {
		t := servingv1.TrafficTarget{Tag: tag, RevisionName: rev, Percent: ptr(int64(percent))}
		if rev == latestKeyword {
			t.RevisionName, t.LatestRevision = "", ptr(true)
		}
		return t
	}
	traffic := []servingv1.TrafficTarget{target(r.Revisions[0], "current", 100-r.RolloutPercent)}
	if len(r.Revisions) == 2 {
		traffic = append(traffic, target(r.Revisions[1], "candidate", r.RolloutPercent))
	}
	// No percent, as in Knative: the tag only gives the latest a URL.
	return append(traffic, servingv1.TrafficTarget{Tag: "latest", LatestRevision: ptr(true)}), nil
}

// describeTraffic renders targets for a warning: "current: rev 80%, ...".
func describeTraffic(traffic []servingv1.TrafficTarget) string {
	parts := make([]string, 0, len(traffic))
	for _, t := range traffic {
		var b strings.Builder
		if t.Tag != "" {
			b.WriteString(t.Tag + ": ")
		}
		if t.RevisionName != "" {
			b.WriteString(t.RevisionName)
		} else {
			b.WriteString("latestRevision")
		}
		var pct int64
		if t.Percent != nil {
			pct = *t.Percent
		}
		fmt.Fprintf(&b, " %d%%", pct)
		parts = append(parts, b.String())
	}
	return strings.Join(parts, ", ")
}

// convertTraffic converts traffic targets at p, a name becoming a tag.
func convertTraffic(in []alphaTrafficTarget, p *field.Path, n *notes) ([]servingv1.TrafficTarget, field.ErrorList) {
	var errs field.ErrorList
	var out []servingv1.TrafficTarget
	for i, t := range in {
		tt := t.TrafficTarget
		switch {
		case t.Name != "" && t.Tag != "":
			errs = append(errs, fielderr.MultipleOneOf(p.Index(i).Child("name"), p.Index(i).Child("tag"))...)
		case t.Name != "":
			tt.Tag = t.Name
			n.add("%s.name → tag", p)
		}
		out = append(out, tt)
	}
	return out, errs
}

// convert converts a Configuration's spec at p.
func (c *alphaConfigurationSpec) convert(p *field.Path, n *notes) (servingv1.ConfigurationSpec, field.ErrorList) {
	var errs field.ErrorList
	if c.Generation != 0 {
		n.add("%s ignored", p.Child("generation"))
	}
	if c.Build != nil {
		errs = append(errs, fielderr.Generic(p.Child("build"), "build",
			"Knative Build was removed and cannot be converted",
			"build the image beforehand and name it in the container's image"))
	}
	t, tp := c.Template, p.Child("template")
	switch {
	case c.RevisionTemplate != nil && c.Template != nil:
		return servingv1.ConfigurationSpec{}, append(errs, fielderr.MultipleOneOf(p.Child("revisionTemplate"), tp)...)
	case c.RevisionTemplate != nil:
		t, tp = c.RevisionTemplate, p.Child("revisionTemplate")
	case c.Template == nil:
		return servingv1.ConfigurationSpec{}, append(errs, fielderr.MissingOneOf(p.Child("revisionTemplate"), tp)...)
	}
	spec, serrs := t.Spec.convert(tp.Child("spec"), n)
	errs = append(errs, serrs...)
	return servingv1.ConfigurationSpec{Template: servingv1.RevisionTemplateSpec{ObjectMeta: t.ObjectMeta, Spec: spec}}, errs
}

// convert converts a Revision's spec at p.
func (s *alphaRevisionSpec) convert(p *field.Path, n *notes) (servingv1.RevisionSpec, field.ErrorList) {
	var errs field.ErrorList
	out := s.RevisionSpec
	switch {
	case s.Container != nil && len(out.Containers) > 0:
		errs = append(errs, fielderr.MultipleOneOf(p.Child("container"), p.Child("containers"))...)
	case s.Container != nil:
		out.Containers = []corev1.Container{*s.Container}
		n.add("container → containers[0]")
	case len(out.Containers) == 0:
		errs = append(errs, fielderr.MissingOneOf(p.Child("container"), p.Child("containers"))...)
	}

	cc := out.ContainerConcurrency
	switch m := s.ConcurrencyModel; m {
	case "":
	case "Single", "Multi":
		want := int64(0) // Multi: no limit
		if m == "Single" {
			want = 1
		}
		switch {
		case cc == nil:
			out.ContainerConcurrency = ptr(want)
			n.add("concurrencyModel %s → containerConcurrency %d", m, want)
		case *cc != want:
			errs = append(errs, fielderr.MultipleOneOf(p.Child("containerConcurrency"), p.Child("concurrencyModel"))...)
		default:
			n.add("concurrencyModel %s ignored (containerConcurrency is set)", m)
		}
	default:
		errs = append(errs, fielderr.Invalid(p.Child("concurrencyModel"), m, "want Single or Multi"))
	}

	if s.Generation != 0 {
		n.add("%s ignored", p.Child("generation"))
	}
	if s.ServingState != "" {
		n.add("%s ignored", p.Child("servingState"))
	}
	for _, b := range []struct {
		name string
		set  bool
	}{{"buildName", s.BuildName != ""}, {"buildRef", s.BuildRef != nil}} {
		if b.set {
			errs = append(errs, fielderr.Generic(p.Child(b.name), b.name,
				"Knative Build was removed and cannot be converted",
				"build the image beforehand and name it in the container's image"))
		}
	}
	return out, errs
}

func (c *alphaConfiguration) convert() (any, []string, field.ErrorList) {
	var n notes
	spec, errs := c.Spec.convert(field.NewPath("spec"), &n)
	if len(errs) > 0 {
		return nil, nil, errs
	}
	if c.Spec.RevisionTemplate != nil {
		n = append(notes{"spec.revisionTemplate → spec.template"}, n...)
	}
	return &servingv1.Configuration{
		TypeMeta:   metav1.TypeMeta{APIVersion: servingv1.APIVersion, Kind: servingv1.KindConfiguration},
		ObjectMeta: c.ObjectMeta,
		Spec:       spec,
	}, n, nil
}

func (r *alphaRoute) convert() (any, []string, field.ErrorList) {
	var n notes
	if r.Spec.Generation != 0 {
		n.add("spec.generation ignored")
	}
	traffic, errs := convertTraffic(r.Spec.Traffic, field.NewPath("spec", "traffic"), &n)
	if len(errs) > 0 {
		return nil, nil, errs
	}
	return &servingv1.Route{
		TypeMeta:   metav1.TypeMeta{APIVersion: servingv1.APIVersion, Kind: servingv1.KindRoute},
		ObjectMeta: r.ObjectMeta,
		Spec:       servingv1.RouteSpec{Traffic: traffic},
	}, n, nil
}

func (r *alphaRevision) convert() (any, []string, field.ErrorList) {
	var n notes
	spec, errs := r.Spec.convert(field.NewPath("spec"), &n)
	if len(errs) > 0 {
		return nil, nil, errs
	}
	return &servingv1.Revision{
		TypeMeta:   metav1.TypeMeta{APIVersion: servingv1.APIVersion, Kind: servingv1.KindRevision},
		ObjectMeta: r.ObjectMeta,
		Spec:       spec,
	}, n, nil
}

// alphaInto returns the v1alpha1 type to decode kind into, or nil for a kind
// v1alpha1 did not have.
func alphaInto(kind string) alphaObject {
	switch kind {
	case servingv1.KindService:
		return &alphaService{}
	case servingv1.KindConfiguration:
		return &alphaConfiguration{}
	case servingv1.KindRoute:
		return &alphaRoute{}
	case servingv1.KindRevision:
		return &alphaRevision{}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
