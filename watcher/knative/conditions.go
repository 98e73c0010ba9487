package knative

import (
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
)

// Condition reasons kgate sets, Knative's where Knative has one.
const (
	// ReasonInvalidSpec: the object's newest version failed validation.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonRevisionMissing: a traffic target's revision is missing or not ready.
	ReasonRevisionMissing = "RevisionMissing"
	// ReasonConfigurationMissing: a traffic target's configuration does not exist.
	ReasonConfigurationMissing = "ConfigurationMissing"
	// ReasonDeploying: the revision is not ready yet.
	ReasonDeploying = "Deploying"
	// ReasonRevisionFailed: a Configuration's latest created revision
	// cannot run (Input.Failed).
	ReasonRevisionFailed = "RevisionFailed"
	// ReasonNotOwned: an object of the same name exists and is not the Service's.
	ReasonNotOwned = "NotOwned"
	// ReasonIngressNotConfigured: the Route is not served yet.
	ReasonIngressNotConfigured = "IngressNotConfigured"
	// ReasonDomainConflict: another, earlier Service holds one of the hosts.
	ReasonDomainConflict = "DomainConflict"
	// ReasonInvalidHost: the domain template rendered an invalid host name.
	ReasonInvalidHost = "InvalidHost"
	// ReasonDuplicateDeclaration: the object is declared more than once
	// (two files, say); the first declaration is served, the others are
	// ignored. The API server would have one object: this is kgate local's.
	ReasonDuplicateDeclaration = "DuplicateDeclaration"
)

// cond is a condition before it is stamped with its transition time.
type cond struct {
	typ      servingv1.ConditionType
	status   corev1.ConditionStatus
	severity servingv1.ConditionSeverity
	reason   string
	message  string
}

func condTrue(t servingv1.ConditionType) cond {
	return cond{typ: t, status: corev1.ConditionTrue}
}

func condFalse(t servingv1.ConditionType, reason, message string) cond {
	return cond{typ: t, status: corev1.ConditionFalse, reason: reason, message: message}
}

func condUnknown(t servingv1.ConditionType, reason, message string) cond {
	return cond{typ: t, status: corev1.ConditionUnknown, reason: reason, message: message}
}

// conds is the condition set of one object, keyed by type.
type conds map[servingv1.ConditionType]cond

func (c conds) set(x cond) { c[x.typ] = x }

// ready sets the Ready condition from its dependents as Knative's living
// condition sets do: True when all are True, else the first False one, else
// the first Unknown one.
func (c conds) ready(deps ...servingv1.ConditionType) {
	for _, want := range []corev1.ConditionStatus{corev1.ConditionFalse, corev1.ConditionUnknown} {
		for _, d := range deps {
			if x, ok := c[d]; ok && x.status == want {
				c.set(cond{typ: servingv1.ConditionReady, status: want, reason: x.reason, message: x.message})
				return
			}
		}
	}
	for _, d := range deps {
		if _, ok := c[d]; !ok {
			c.set(condUnknown(servingv1.ConditionReady, "", ""))
			return
		}
	}
	c.set(condTrue(servingv1.ConditionReady))
}

// stamp turns the set into Knative conditions sorted by type. A condition
// equal to the previous one (status, severity, reason and message) keeps its
// lastTransitionTime, as Knative's condition manager does; any change takes now.
func (c conds) stamp(prev []servingv1.Condition, now time.Time) []servingv1.Condition {
	out := make([]servingv1.Condition, 0, len(c))
	for _, x := range c {
		t := metav1.NewTime(now)
		for _, p := range prev {
			if p.Type == x.typ && p.Status == x.status && p.Severity == x.severity && p.Reason == x.reason && p.Message == x.message {
				t = p.LastTransitionTime
			}
		}
		out = append(out, servingv1.Condition{
			Type: x.typ, Status: x.status, Severity: x.severity,
			LastTransitionTime: t, Reason: x.reason, Message: x.message,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}

// unstamp reads stamped conditions back into a set, to amend them.
func unstamp(cs []servingv1.Condition) conds {
	c := conds{}
	for _, x := range cs {
		c.set(cond{typ: x.Type, status: x.Status, severity: x.Severity, reason: x.Reason, message: x.Message})
	}
	return c
}

// find returns the condition of type t, or nil.
func find(cs []servingv1.Condition, t servingv1.ConditionType) *servingv1.Condition {
	for i := range cs {
		if cs[i].Type == t {
			return &cs[i]
		}
	}
	return nil
}
