package knative

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kgate/kgate/api/fielderr"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/translator/model"
)

// defaultTimeoutSeconds is Knative's revision-timeout-seconds default, used
// when a revision somehow has no timeoutSeconds.
const defaultTimeoutSeconds = 300

// configState is what Knative stores of a Configuration between rounds.
type configState struct {
	// gen is the Configuration's generation: it bumps on each template change.
	gen int64
	// template is the digest (templateDigest) of the declared template the
	// latest revision was made from.
	template      string
	latestCreated string
	latestReady   string
	// nextGC is when one of its revisions next turns stale (collect).
	nextGC time.Time
}

// revisionState is a Revision: immutable once made, kept while its
// Configuration exists.
type revisionState struct {
	namespace, name string
	// nsName is "namespace/name" (key), made once: rounds ask for it
	// 10,000 times each.
	nsName          string
	config, service string
	template        string // the declared template it was made from ("" when restored)
	digest          string // templateDigest of that template
	generation      int64  // the Configuration generation that made it
	created         time.Time
	labels          map[string]string
	annotations     map[string]string
	spec            servingv1.RevisionSpec // defaulted when made
	ready           bool
	// atZero says the autoscaler starts it at zero, as Input.StartsAtZero
	// said when it was made: it is Ready without waiting for Input.Ready.
	atZero bool
	cond   conds
	// failed and failure are the failure the conditions were set from
	// (Input.Failed), with ready what an incremental round compares.
	failed  bool
	failure Failure
	// out and mdl are the last round's output and model of the revision,
	// which a round keeps unless fresh says they are out of date.
	out   *servingv1.Revision
	mdl   model.Revision
	fresh bool
	// routing is Knative's routing state (gc.go) and routingModified when
	// it last changed: garbage collection reads both.
	routing         string
	routingModified time.Time
}

func (rev *revisionState) key() string {
	if rev.nsName == "" {
		rev.nsName = rev.namespace + "/" + rev.name
	}
	return rev.nsName
}

// plan is what applying a template would do to a Configuration.
type plan struct {
	changed  bool
	gen      int64
	name     string // revision name
	template string
}

// plan decides the revision a Configuration's template maps to, without
// changing anything: a changed template makes a new revision named by the
// template or <config>-<generation>; reusing an existing revision name for a
// different template is an error at path.
func (r *Reconciler) plan(ns, cfg string, tmpl servingv1.RevisionTemplateSpec, path *field.Path) (plan, field.ErrorList) {
	t := mustJSON(tmpl)
	d := templateDigest(t)
	cs := r.configs[ns+"/"+cfg]
	if cs != nil && cs.template == d {
		return plan{name: cs.latestCreated, gen: cs.gen, template: t}, nil
	}
	p := plan{changed: true, gen: 1, template: t}
	if cs != nil {
		p.gen = cs.gen + 1
	}
	p.name = tmpl.Name
	if p.name == "" {
		p.name = childName(cfg, fmt.Sprintf("-%05d", p.gen))
	}
	rev := r.revisions[ns+"/"+p.name]
	if rev == nil {
		return p, nil
	}
	namePath := path.Child("metadata", "name")
	switch {
	case rev.config != cfg:
		return p, field.ErrorList{field.Invalid(namePath, p.name,
			fmt.Sprintf("Revision %q already exists and belongs to Configuration %q; choose another name", p.name, rev.config))}
	case rev.digest != d && tmpl.Name != "" && cs != nil && cs.latestCreated == p.name:
		return p, field.ErrorList{fielderr.Generic(namePath, p.name,
			"Saw the following changes without a name change (-old +new)", changes(rev.template, t, path.String())...)}
	case rev.digest != d:
		return p, field.ErrorList{fielderr.Generic(namePath, p.name,
			fmt.Sprintf("Revision %q already exists with a different template; choose another name (-old +new)", p.name),
			changes(rev.template, t, path.String())...)}
	}
	return p, nil // back to an existing revision's template: it becomes the latest again
}

// apply records a served Configuration's template, making its revision when
// the template changed. cfg holds the defaulted template; declared is the
// template as declared, which decides what counts as a change (defaults
// changing later do not make new revisions, as in Knative where defaults are
// frozen into the stored object).
func (r *Reconciler) apply(now time.Time, cfg *servingv1.Configuration, declared servingv1.RevisionTemplateSpec, owner string, atZero func(*revisionState) bool) *configState {
	key := cfg.Namespace + "/" + cfg.Name
	cs := r.configs[key]
	if cs == nil {
		cs = &configState{}
		r.configs[key] = cs
	}
	p, errs := r.plan(cfg.Namespace, cfg.Name, declared, field.NewPath("spec", "template"))
	if len(errs) > 0 || !p.changed {
		// Errors were reported when the object was accepted; a version that
		// has them is never applied.
		return cs
	}
	cs.gen, cs.template, cs.latestCreated = p.gen, templateDigest(p.template), p.name
	if r.revisions[cfg.Namespace+"/"+p.name] != nil {
		return cs
	}
	labels := withLabel(cfg.Spec.Template.Labels, LabelConfiguration, cfg.Name)
	labels[LabelConfigurationGeneration] = strconv.FormatInt(p.gen, 10)
	if owner != "" {
		labels[LabelService] = owner
	}
	rev := &revisionState{
		namespace: cfg.Namespace, name: p.name, config: cfg.Name, service: owner,
		template: p.template, digest: templateDigest(p.template), generation: p.gen, created: now,
		labels: labels, annotations: copyMap(cfg.Spec.Template.Annotations),
		spec:    clone(cfg.Spec.Template.Spec),
		routing: RoutingStatePending, routingModified: now,
	}
	rev.atZero = atZero(rev)
	r.revisions[rev.key()] = rev
	r.revsNew = append(r.revsNew, rev)
	return cs
}

// startsAtZero asks Input.StartsAtZero about a revision made this round,
// and lists it in the Result when it does.
func (rd *round) startsAtZero(rev *revisionState) bool {
	if rd.in.StartsAtZero == nil {
		return false
	}
	var cc int64
	if rev.spec.ContainerConcurrency != nil {
		cc = *rev.spec.ContainerConcurrency
	}
	if !rd.in.StartsAtZero(rd.now, rd.r.settings.Autoscaler, rev.annotations, cc) {
		return false
	}
	rd.res.ReadyAtZero = append(rd.res.ReadyAtZero, rev.key())
	return true
}

// output is the Revision object (status filled by the caller).
func (rev *revisionState) output() *servingv1.Revision {
	labels := make(map[string]string, len(rev.labels)+1)
	maps.Copy(labels, rev.labels)
	annotations := withLabel(rev.annotations, AnnotationTemplateDigest, rev.digest)
	rev.routingMeta(labels, annotations)
	return &servingv1.Revision{
		TypeMeta: metav1.TypeMeta{APIVersion: servingv1.APIVersion, Kind: servingv1.KindRevision},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: rev.namespace, Name: rev.name, Generation: 1,
			Labels: labels, Annotations: annotations,
			CreationTimestamp: metav1.NewTime(rev.created),
		},
		Spec:   clone(rev.spec),
		Status: servingv1.RevisionStatus{Status: servingv1.Status{ObservedGeneration: 1}},
	}
}

// model is what the gateways need of the revision.
func (rev *revisionState) model() model.Revision {
	var cc int64
	if rev.spec.ContainerConcurrency != nil {
		cc = *rev.spec.ContainerConcurrency
	}
	return model.Revision{Namespace: rev.namespace, Name: rev.name, Protocol: protocol(rev.spec), Timeout: rev.timeout(), ContainerConcurrency: cc,
		ResponseStartTimeout: rev.responseStartTimeout(), IdleTimeout: rev.idleTimeout(),
		Service: rev.labels[LabelService], Configuration: rev.labels[LabelConfiguration]}
}

func (rev *revisionState) timeout() time.Duration {
	s := int64(defaultTimeoutSeconds)
	if rev.spec.TimeoutSeconds != nil {
		s = *rev.spec.TimeoutSeconds
	}
	return time.Duration(s) * time.Second
}

// protocol is H2C when the serving container's port is named h2c or http2
// (Knative accepts both), else HTTP/1.1.
func protocol(spec servingv1.RevisionSpec) model.Protocol {
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			if p.Name == "h2c" || p.Name == "http2" {
				return model.H2C
			}
		}
	}
	return model.HTTP1
}

// revisionStatuses sets every revision's readiness and conditions.
func (rd *round) revisionStatuses() {
	for key, rev := range rd.r.revisions {
		if rd.dirty != nil && rev.cond != nil && !rev.inputsChanged(rd.in, key) {
			continue // as it was
		}
		failure, failed := rd.in.Failed[key]
		rev.ready = !failed && (rd.in.Ready == nil || rd.in.Ready[key] || rev.atZero)
		rev.failed, rev.failure, rev.fresh = failed, failure, true
		rev.cond = conds{}
		switch {
		case failed:
			rev.cond.set(condFalse(servingv1.ConditionResourcesAvailable, failure.Reason, failure.Message))
			rev.cond.set(condFalse(servingv1.ConditionContainerHealthy, failure.Reason, failure.Message))
			rev.cond.set(condUnknown(servingv1.ConditionActive, ReasonDeploying, ""))
		case rev.ready:
			rev.cond.set(condTrue(servingv1.ConditionResourcesAvailable))
			rev.cond.set(condTrue(servingv1.ConditionContainerHealthy))
			rev.cond.set(condTrue(servingv1.ConditionActive))
		default:
			rev.cond.set(condUnknown(servingv1.ConditionResourcesAvailable, ReasonDeploying, ""))
			rev.cond.set(condUnknown(servingv1.ConditionContainerHealthy, ReasonDeploying, ""))
			rev.cond.set(condUnknown(servingv1.ConditionActive, ReasonDeploying, ""))
		}
		// Active is informational in Knative: a revision scaled to zero is
		// still Ready.
		rev.cond.ready(servingv1.ConditionResourcesAvailable, servingv1.ConditionContainerHealthy)
	}
}

// configurationStatuses sets latestCreated/latestReady and Ready. As in
// Knative, latestReadyRevisionName moves to the latest created revision once
// that is ready, and otherwise stays where it was.
func (rd *round) configurationStatuses() {
	for _, e := range rd.freshConfigs {
		key := e.key
		if !e.served {
			e.cond.set(condFalse(servingv1.ConditionReady, ReasonInvalidSpec, invalidMessage(e.invalid, false)))
			continue
		}
		cs := rd.r.configs[key]
		e.out.Status.ObservedGeneration = cs.gen
		e.out.Status.LatestCreatedRevisionName = cs.latestCreated
		latest := rd.r.revisions[e.out.Namespace+"/"+cs.latestCreated]
		var failure Failure
		failed := false
		if latest != nil {
			failure, failed = rd.in.Failed[latest.key()]
		}
		switch {
		case latest != nil && latest.ready:
			cs.latestReady = cs.latestCreated
			e.cond.set(condTrue(servingv1.ConditionReady))
		case failed:
			// As Knative: the revision's failure, on its Configuration and
			// so its Service, where a user looks first.
			e.cond.set(condFalse(servingv1.ConditionReady, ReasonRevisionFailed,
				fmt.Sprintf("Revision %q failed with message: %s.", cs.latestCreated, failure.Message)))
		default:
			e.cond.set(condUnknown(servingv1.ConditionReady, ReasonDeploying,
				fmt.Sprintf("Revision %q is not yet ready.", cs.latestCreated)))
		}
		e.out.Status.LatestReadyRevisionName = cs.latestReady
		if len(e.invalid) > 0 {
			e.cond.set(condFalse(servingv1.ConditionReady, ReasonInvalidSpec, invalidMessage(e.invalid, true)))
		}
	}
}

// invalidMessage renders validation errors in Knative's words, saying
// whether the last valid version still serves.
func invalidMessage(errs field.ErrorList, serving bool) string {
	msg := strings.Join(fieldMessages(errs), "; ")
	if serving {
		msg += " (the last valid version keeps serving)"
	}
	return msg
}

// templateDigest identifies a declared template (its canonical JSON): two
// templates are the same revision when their digests are equal. It is what
// a Revision stored in the API server keeps of its template (see
// AnnotationTemplateDigest), so that a restarted controller tells a
// changed template from an unchanged one.
func templateDigest(canonicalJSON string) string {
	sum := sha256.Sum256([]byte(canonicalJSON))
	return hex.EncodeToString(sum[:16])
}

// childName is Knative's kmeta.ChildName: parent+suffix, with the parent cut
// and hashed when the result would exceed the 63 characters of a DNS label.
func childName(parent, suffix string) string {
	const longest = 63
	if len(parent)+len(suffix) <= longest {
		return parent + suffix
	}
	h := fmt.Sprintf("%x", md5.Sum([]byte(parent)))
	head := longest - len(suffix) - len(h)
	if head < 0 {
		return fmt.Sprintf("%x", md5.Sum([]byte(parent+suffix)))
	}
	return parent[:head] + h + suffix
}

// changes lists where two JSON documents differ, at most five, as
// "path: -old +new", to tell a user what changed.
func changes(a, b, prefix string) []string {
	var x, y any
	_ = json.Unmarshal([]byte(a), &x)
	_ = json.Unmarshal([]byte(b), &y)
	var out []string
	var walk func(p string, x, y any)
	walk = func(p string, x, y any) {
		if len(out) >= 5 || reflect.DeepEqual(x, y) {
			return
		}
		switch xv := x.(type) {
		case map[string]any:
			if yv, ok := y.(map[string]any); ok {
				keys := map[string]bool{}
				for k := range xv {
					keys[k] = true
				}
				for k := range yv {
					keys[k] = true
				}
				sorted := make([]string, 0, len(keys))
				for k := range keys {
					sorted = append(sorted, k)
				}
				sort.Strings(sorted)
				for _, k := range sorted {
					walk(p+"."+k, xv[k], yv[k])
				}
				return
			}
		case []any:
			if yv, ok := y.([]any); ok && len(xv) == len(yv) {
				for i := range xv {
					walk(fmt.Sprintf("%s[%d]", p, i), xv[i], yv[i])
				}
				return
			}
		}
		out = append(out, fmt.Sprintf("%s: -%s +%s", p, short(x), short(y)))
	}
	walk(prefix, x, y)
	return out
}

// short renders a JSON value compactly for a message.
func short(v any) string {
	if v == nil {
		return "(none)"
	}
	b, _ := json.Marshal(v)
	if s := string(b); len(s) <= 60 {
		return s
	}
	return string(b[:57]) + "..."
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
