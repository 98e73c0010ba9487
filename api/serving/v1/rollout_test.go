package v1

import (
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kgate/kgate/api/fielderr"
)

// The rollout-duration annotation, on a Service or a Route, is checked as
// Knative's webhook does; the error names the annotation.
func TestRolloutDurationAnnotation(t *testing.T) {
	const key = "metadata.annotations[serving.knative.dev/rollout-duration]"
	tests := []struct {
		name  string
		ann   map[string]string
		want  []string
		value time.Duration // what RolloutDuration reads
	}{
		{name: "absent"},
		{name: "empty", ann: map[string]string{AnnotationRolloutDuration: ""}},
		{name: "whole seconds", ann: map[string]string{AnnotationRolloutDuration: "4s"}, value: 4 * time.Second},
		{name: "minutes", ann: map[string]string{AnnotationRolloutDuration: "2m"}, value: 2 * time.Minute},
		{name: "zero", ann: map[string]string{AnnotationRolloutDuration: "0s"}},
		{name: "the older camelCase key", ann: map[string]string{AnnotationRolloutDurationCamel: "10s"}, value: 10 * time.Second},
		{name: "kebab-case wins", ann: map[string]string{AnnotationRolloutDuration: "5s", AnnotationRolloutDurationCamel: "10s"}, value: 5 * time.Second},
		{name: "not a duration", ann: map[string]string{AnnotationRolloutDuration: "ten"},
			want: []string{"invalid value: ten: " + key + "\na duration such as 30s, 5m or 1h"}},
		{name: "a bare number is no duration", ann: map[string]string{AnnotationRolloutDuration: "120"},
			want: []string{"invalid value: 120: " + key + "\na duration such as 30s, 5m or 1h"}},
		{name: "below a second", ann: map[string]string{AnnotationRolloutDuration: "1500ms"},
			want: []string{"rollout-duration=1500ms is not at second precision: " + key}},
		{name: "negative", ann: map[string]string{AnnotationRolloutDuration: "-5s"},
			want: []string{"rollout-duration=-5s must be positive: " + key}},
		{name: "camelCase key named in the error", ann: map[string]string{AnnotationRolloutDurationCamel: "soon"},
			want: []string{"invalid value: soon: metadata.annotations[serving.knative.dev/rolloutDuration]\na duration such as 30s, 5m or 1h"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := service(func(s *Service) { s.Annotations = tt.ann })
			if got := fielderr.Messages(ValidateService(svc)); len(got)+len(tt.want) > 0 && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Service: got %q, want %q", got, tt.want)
			}
			rt := &Route{ObjectMeta: metav1.ObjectMeta{Name: "hello", Annotations: tt.ann}, Spec: RouteSpec{
				Traffic: []TrafficTarget{{RevisionName: "hello-00001", Percent: ptr[int64](100)}},
			}}
			if got := fielderr.Messages(ValidateRoute(rt)); len(got)+len(tt.want) > 0 && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Route: got %q, want %q", got, tt.want)
			}
			if got := RolloutDuration(tt.ann); got != tt.value {
				t.Errorf("RolloutDuration: %v, want %v", got, tt.value)
			}
		})
	}
}
