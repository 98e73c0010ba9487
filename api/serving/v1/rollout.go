package v1

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kgate/kgate/api/fielderr"
)

// Annotations of a Service or Route that set how long a new latest
// revision takes to receive all of a traffic target's share (gradual
// rollout), overriding config-network's rollout-duration. Knative reads the
// kebab-case key first and the older camelCase one after it.
const (
	AnnotationRolloutDuration      = "serving.knative.dev/rollout-duration"
	AnnotationRolloutDurationCamel = "serving.knative.dev/rolloutDuration"
)

// rolloutDuration returns the rollout-duration annotation that applies (its
// key and value), as Knative picks it: the kebab-case key when present.
func rolloutDuration(ann map[string]string) (key, value string, ok bool) {
	for _, k := range []string{AnnotationRolloutDuration, AnnotationRolloutDurationCamel} {
		if v, ok := ann[k]; ok {
			return k, v, true
		}
	}
	return "", "", false
}

// RolloutDuration is the rollout duration an object's annotations set; 0
// when they set none (config-network's rollout-duration then applies) or
// one that does not validate.
func RolloutDuration(ann map[string]string) time.Duration {
	_, v, ok := rolloutDuration(ann)
	if !ok || v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d.Round(time.Second) != d {
		return 0
	}
	return d
}

// validateRolloutDuration is Knative's check of the annotation: a Go
// duration, in whole seconds, not negative.
func validateRolloutDuration(ann map[string]string, p *field.Path) field.ErrorList {
	k, v, ok := rolloutDuration(ann)
	if !ok || v == "" {
		return nil
	}
	at := p.Key(k)
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		return field.ErrorList{fielderr.Invalid(at, v, "a duration such as 30s, 5m or 1h")}
	case d.Round(time.Second) != d:
		return field.ErrorList{fielderr.Generic(at, v, fmt.Sprintf("rollout-duration=%s is not at second precision", v))}
	case d < 0:
		return field.ErrorList{fielderr.Generic(at, v, fmt.Sprintf("rollout-duration=%s must be positive", v))}
	}
	return nil
}
