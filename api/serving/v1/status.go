package v1

import (
	"encoding/json"
	"net/url"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Status is Knative's duck-typed status: observedGeneration, conditions and
// annotations.
type Status struct {
	ObservedGeneration int64             `json:"observedGeneration,omitempty"`
	Conditions         []Condition       `json:"conditions,omitempty"`
	Annotations        map[string]string `json:"annotations,omitempty"`
}

// ConditionType names a condition ("Ready", "RoutesReady", ...).
type ConditionType string

// Condition types used by the serving objects.
const (
	ConditionReady               ConditionType = "Ready"
	ConditionConfigurationsReady ConditionType = "ConfigurationsReady"
	ConditionRoutesReady         ConditionType = "RoutesReady"
	ConditionAllTrafficAssigned  ConditionType = "AllTrafficAssigned"
	ConditionIngressReady        ConditionType = "IngressReady"
	ConditionResourcesAvailable  ConditionType = "ResourcesAvailable"
	ConditionContainerHealthy    ConditionType = "ContainerHealthy"
	ConditionActive              ConditionType = "Active"
)

// ConditionSeverity is "" (Error) for conditions that decide readiness, or
// Warning/Info for informational ones.
type ConditionSeverity string

// Condition severities.
const (
	ConditionSeverityError   ConditionSeverity = ""
	ConditionSeverityWarning ConditionSeverity = "Warning"
	ConditionSeverityInfo    ConditionSeverity = "Info"
)

// Condition is one aspect of an object's state, shaped as Knative's
// knative.dev/pkg/apis.Condition.
type Condition struct {
	Type               ConditionType          `json:"type"`
	Status             corev1.ConditionStatus `json:"status"`
	Severity           ConditionSeverity      `json:"severity,omitempty"`
	LastTransitionTime metav1.Time            `json:"lastTransitionTime,omitempty"`
	Reason             string                 `json:"reason,omitempty"`
	Message            string                 `json:"message,omitempty"`
}

// URL is a net/url.URL that marshals to and from its string form, as
// Knative's apis.URL does. Its schema is a string and its deep copy is
// hand-written (url_deepcopy.go).
//
// +kubebuilder:validation:Type=string
// +kubebuilder:object:generate=false
type URL url.URL

// ParseURL parses s into a URL.
func ParseURL(s string) (*URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	return (*URL)(u), nil
}

// String returns the URL's text.
func (u *URL) String() string {
	if u == nil {
		return ""
	}
	return (*url.URL)(u).String()
}

// MarshalJSON writes the URL as a JSON string.
func (u URL) MarshalJSON() ([]byte, error) {
	return json.Marshal((&u).String())
}

// UnmarshalJSON reads a URL from a JSON string.
func (u *URL) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	p, err := url.Parse(s)
	if err != nil {
		return err
	}
	*u = URL(*p)
	return nil
}
