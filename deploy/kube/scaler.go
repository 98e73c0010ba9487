package kube

import (
	"context"
	"fmt"
	"slices"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kgate/kgate/deploy"
	"github.com/kgate/kgate/translator/model"
)

// Scaler is the deploy.Deployer of Kubernetes mode. Scale sets a revision's
// Deployment's replicas through its scale subresource, which touches
// nothing else in the Deployment and is what the autoscaler alone owns.
// Ready reports the ready endpoints of the revision's private Service's
// EndpointSlices, as last given to SetSlices by the controller, which
// watches them. A Scaler is safe for concurrent use.
type Scaler struct {
	client client.Client

	mu    sync.RWMutex
	ready map[string][]model.Endpoint // by revision key; absent when none
}

var _ deploy.Deployer = (*Scaler)(nil)

// NewScaler returns a Scaler that scales through c. Subresource calls of a
// controller-runtime client go to the API server (never to its cache), so
// the manager's client will do; its scheme must know appsv1 and
// autoscalingv1, as client-go's does.
func NewScaler(c client.Client) *Scaler {
	return &Scaler{client: c, ready: map[string][]model.Endpoint{}}
}

// Scale sets the replicas of the revision ("namespace/name") by updating
// its Deployment's scale subresource. It reads the scale first and writes
// only when the replicas differ, so that repeating a decision costs no
// write (and no event for the Deployment's watchers), and retries when the
// Deployment changed between the read and the write. A revision without a
// Deployment is an error that names it: the controller creates Deployments,
// Scale does not.
func (s *Scaler) Scale(ctx context.Context, key string, replicas int32) error {
	if replicas < 0 {
		return fmt.Errorf("scaling %s: replicas %d is negative", key, replicas)
	}
	ns, name, err := SplitKey(key)
	if err != nil {
		return fmt.Errorf("scaling: %w", err)
	}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: DeploymentName(name)}}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var scale autoscalingv1.Scale
		if err := s.client.SubResource("scale").Get(ctx, d, &scale); err != nil {
			return err
		}
		if scale.Spec.Replicas == replicas {
			return nil
		}
		scale.Spec.Replicas = replicas
		return s.client.SubResource("scale").Update(ctx, d, client.WithSubResourceBody(&scale))
	})
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		return fmt.Errorf("scaling %s to %d: deployment %s/%s does not exist: %w", key, replicas, ns, d.Name, err)
	default:
		return fmt.Errorf("scaling %s to %d: deployment %s/%s: %w", key, replicas, ns, d.Name, err)
	}
}

// Ready returns the ready endpoints last set for the revision, sorted; nil
// when none. The slice is the caller's.
func (s *Scaler) Ready(key string) []model.Endpoint {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.ready[key])
}

// SetSlices records the revision's EndpointSlices, all of them (those of
// its private Service), and reports whether its ready endpoints changed;
// the controller calls it from its EndpointSlice informer with the
// revision's current slices, and, when changed, tells the autoscaler and
// the xDS engine. No slices forgets the revision.
func (s *Scaler) SetSlices(key string, endpointSlices []discoveryv1.EndpointSlice) (changed bool) {
	eps := Endpoints(endpointSlices)
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.ready[key]
	if len(eps) == 0 {
		delete(s.ready, key)
		return had
	}
	if had && slices.Equal(old, eps) {
		return false
	}
	s.ready[key] = eps
	return true
}
