package kube

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/watcher/knative"
)

// addAnnotation adds one annotation.
func addAnnotation(k, v string) opt {
	return func(o client.Object) {
		a := o.GetAnnotations()
		if a == nil {
			a = map[string]string{}
		}
		a[k] = v
		o.SetAnnotations(a)
	}
}

// A gradual rollout's state is its Route's serving.knative.dev/rollout
// annotation: the API server keeps it for a restarted controller to resume
// from. A Service's Route carries it with the rest of its metadata; a Route
// no Service owns gets that one annotation written besides its status, and
// loses it when no rollout applies any more.
func TestPublishRolloutAnnotation(t *testing.T) {
	const state = `{"configurations":[{"configurationName":"hello","percent":100,"revisions":[{"revisionName":"hello-00001","percent":66},{"revisionName":"hello-00002","percent":34}],"stepParams":{}}]}`
	rollout := addAnnotation(knative.AnnotationRollout, state)
	tests := []struct {
		name          string
		cache         []client.Object
		result        *servingv1.Route
		queued, calls []string
		want          string // the annotation the API server holds then
	}{{
		name:   "a Service's Route",
		cache:  []client.Object{ksvc("hello"), kroute("hello", ownedBy(servingv1.KindService, "hello"), status(corev1.ConditionTrue, 0))},
		result: kroute("hello", rollout, status(corev1.ConditionTrue, 0)),
		queued: []string{"Route/default/hello"},
		calls:  []string{"update Route default/hello", "update status Route default/hello"},
		want:   state,
	}, {
		name:   "a standalone Route: the annotation, then the status",
		cache:  []client.Object{kroute("hello", addAnnotation("team", "a"), status(corev1.ConditionTrue, 0))},
		result: kroute("hello", addAnnotation("team", "a"), rollout, status(corev1.ConditionUnknown, 0)),
		queued: []string{"Route/default/hello"},
		calls:  []string{"update Route default/hello", "update status Route default/hello"},
		want:   state,
	}, {
		name:   "a standalone Route that holds it already gets its status only",
		cache:  []client.Object{kroute("hello", rollout, status(corev1.ConditionTrue, 0))},
		result: kroute("hello", rollout, status(corev1.ConditionUnknown, 0)),
		queued: []string{"Route/default/hello"},
		calls:  []string{"update status Route default/hello"},
		want:   state,
	}, {
		name:   "a standalone Route with no rollout any more loses the annotation",
		cache:  []client.Object{kroute("hello", rollout, status(corev1.ConditionTrue, 0))},
		result: kroute("hello", status(corev1.ConditionTrue, 0)),
		queued: []string{"Route/default/hello"},
		calls:  []string{"update Route default/hello", "update status Route default/hello"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, calls := newTestController(t, tt.cache...)
			c.publish(snap(t, c), &knative.Result{Routes: []*servingv1.Route{tt.result}})
			if got := queued(c); !slices.Equal(got, tt.queued) {
				t.Errorf("queued writes:\n got %q\nwant %q", got, tt.queued)
			}
			flush(t, c)
			if got := calls.take(); !slices.Equal(got, tt.calls) {
				t.Errorf("API calls:\n got %q\nwant %q", got, tt.calls)
			}
			rt := get(t, c, &servingv1.Route{}, "hello")
			if got := rt.Annotations[knative.AnnotationRollout]; got != tt.want {
				t.Errorf("the Route's %s annotation %q, want %q", knative.AnnotationRollout, got, tt.want)
			}
			if tt.want != "" && rt.Annotations["team"] != tt.result.Annotations["team"] {
				t.Errorf("the Route's other annotations %v, want them kept", rt.Annotations)
			}
		})
	}
}
