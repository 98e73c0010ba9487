package kube

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	networkingv1alpha1 "github.com/kgate/kgate/api/networking/v1alpha1"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/api/serving/v1beta1"
	deploykube "github.com/kgate/kgate/deploy/kube"
	"github.com/kgate/kgate/watcher"
)

// watch registers the informers and what each change does. Every change
// of a watched kind asks for a round; EndpointSlices also update the ready
// pods (and the activators) at once, before any round, because the
// autoscaler routes on them.
func (c *Controller) watch(ctx context.Context) error {
	kinds := []client.Object{
		&servingv1.Service{}, &servingv1.Configuration{}, &servingv1.Route{}, &servingv1.Revision{},
		&v1beta1.DomainMapping{}, &networkingv1alpha1.ClusterDomainClaim{},
		&appsv1.Deployment{}, &corev1.Service{}, &corev1.ConfigMap{},
		&corev1.Namespace{},                      // namespace-wildcard-cert-selector (namespaces.go)
		&autoscalingv2.HorizontalPodAutoscaler{}, // the HPA class (hpa.go)
	}
	round := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.trigger() },
		UpdateFunc: func(any, any) { c.trigger() },
		DeleteFunc: func(any) { c.trigger() },
	}
	c.idx = newIndexes()
	for _, obj := range kinds {
		inf, err := c.mgr.GetCache().GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("watching %T: %w", obj, err)
		}
		h := round
		if idx, echo := c.idx.of(obj); idx != nil {
			h = handler(c.changed, echo, idx...)
		}
		reg, err := inf.AddEventHandler(h)
		if err != nil {
			return fmt.Errorf("watching %T: %w", obj, err)
		}
		c.idx.synced = append(c.idx.synced, reg.HasSynced)
	}
	c.watchCertificates(ctx, round)
	c.watchChallenges(ctx, round)
	inf, err := c.mgr.GetCache().GetInformer(ctx, &discoveryv1.EndpointSlice{})
	if err != nil {
		return fmt.Errorf("watching EndpointSlices: %w", err)
	}
	slices := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.sliceChanged(ctx, obj) },
		UpdateFunc: func(_, obj any) { c.sliceChanged(ctx, obj) },
		DeleteFunc: func(obj any) { c.sliceChanged(ctx, obj) },
	}
	if _, err := inf.AddEventHandler(slices); err != nil {
		return fmt.Errorf("watching EndpointSlices: %w", err)
	}
	return nil
}

// sliceChanged re-reads the EndpointSlices of the Service a changed slice
// belongs to: a revision's private Service (its ready pods) or the
// activator Service (the activators).
func (c *Controller) sliceChanged(ctx context.Context, obj any) {
	if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	if s.Namespace == c.opts.SystemNamespace && s.Labels[discoveryv1.LabelServiceName] == c.opts.ActivatorService {
		c.activatorsChanged(ctx)
		return
	}
	rev, ok := deploykube.SliceRevision(s)
	if !ok {
		return
	}
	var list discoveryv1.EndpointSliceList
	if err := c.client.List(ctx, &list, client.InNamespace(s.Namespace),
		client.MatchingLabels{deploykube.LabelRevision: s.Labels[deploykube.LabelRevision], deploykube.LabelServiceType: deploykube.ServiceTypePrivate}); err != nil {
		c.log.Error("reading a revision's EndpointSlices", "revision", rev, "error", err)
		return
	}
	if c.scaler.SetSlices(rev, list.Items) {
		c.loop.EndpointsChanged(rev)
		if len(c.scaler.Ready(rev)) > 0 {
			c.pipe.Submit(watcher.Change{Ready: []string{rev}})
		}
		c.trigger()
	}
}

// activatorsChanged hands the activators' ready addresses to the loop.
func (c *Controller) activatorsChanged(ctx context.Context) {
	var list discoveryv1.EndpointSliceList
	if err := c.client.List(ctx, &list, client.InNamespace(c.opts.SystemNamespace),
		client.MatchingLabels{discoveryv1.LabelServiceName: c.opts.ActivatorService}); err != nil {
		c.log.Error("reading the activators' EndpointSlices", "error", err)
		return
	}
	c.loop.SetActivators(ctx, deploykube.Endpoints(list.Items))
}
