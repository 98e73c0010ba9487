package kube

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kgate/kgate/api/config"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/api/serving/v1beta1"
	deploykube "github.com/kgate/kgate/deploy/kube"
	"github.com/kgate/kgate/watcher/knative"
)

// publish queues the writes that make the API server hold res: derived
// objects created or updated, statuses written, Deployments and private
// Services created, and what lost its owner deleted. Only differences
// are written; a write that fails is retried by a later round.
func (c *Controller) publish(s *snapshot, res *knative.Result) {
	c.settledMu.Lock()
	c.st.marksBound = marksBound(s)
	c.settledMu.Unlock()
	// In the serving loop a round queues a second's share of writes at
	// most (a tenth of WriteBacklog): at 10,000 Services one publish
	// after a burst queued 11,000 writes in 850 ms, and new Services
	// waited for that round. A publish that stops short asks for the next
	// round, which goes on; writes are level-based, so nothing is lost.
	c.st.publishLimit = 0
	if c.deferWrites && c.opts.WriteBacklog > 0 {
		c.st.publishLimit = c.writes.backlog() + max(1, c.opts.WriteBacklog/10)
		defer func() {
			if c.publishFull() {
				c.writes.whenBelow(c.opts.WriteBacklog, c.trigger)
			}
		}()
	}
	for _, want := range res.Services {
		if c.publishFull() {
			return
		}
		key := want.Namespace + "/" + want.Name
		if have := s.services[key]; have != nil {
			if !c.settled("Service/"+key, want, have) &&
				(!derivedStatusesWritten(s, key, knative.HasKey(res.Routes, key), knative.HasKey(res.Configurations, key)) ||
					!revisionsWritten(s, want)) {
				continue // a later round, once its Route, Configuration and revisions have a status
			}
			putStatus(c, "Service/"+key, want, have, func(o *servingv1.Service) {
				o.Status = *want.Status.DeepCopy()
				o.Status.ObservedGeneration = o.Generation
			})
		}
	}
	for _, want := range res.Configurations {
		if c.publishFull() {
			return
		}
		key := want.Namespace + "/" + want.Name
		have := s.configurations[key]
		svc := s.services[key]
		switch {
		case svc != nil && (have == nil || isDerived(have.OwnerReferences)):
			fresh := func() *servingv1.Configuration {
				return &servingv1.Configuration{ObjectMeta: metav1.ObjectMeta{Namespace: want.Namespace, Name: want.Name}}
			}
			putDerived(c, "Configuration/"+key, want, svc, have, have != nil, fresh, func(o *servingv1.Configuration) bool {
				changed := !equality.Semantic.DeepEqual(o.Spec, want.Spec)
				o.Spec = *want.Spec.DeepCopy()
				return setMeta(&o.ObjectMeta, want.ObjectMeta) || changed
			}, func(o *servingv1.Configuration) {
				o.Status = *want.Status.DeepCopy()
				o.Status.ObservedGeneration = o.Generation
			})
		case have != nil:
			putStatus(c, "Configuration/"+key, want, have, func(o *servingv1.Configuration) {
				o.Status = *want.Status.DeepCopy()
				o.Status.ObservedGeneration = o.Generation
			})
		}
	}
	for _, want := range res.Routes {
		if c.publishFull() {
			return
		}
		key := want.Namespace + "/" + want.Name
		have := s.routes[key]
		svc := s.services[key]
		switch {
		case svc != nil && (have == nil || isDerived(have.OwnerReferences)):
			fresh := func() *servingv1.Route {
				return &servingv1.Route{ObjectMeta: metav1.ObjectMeta{Namespace: want.Namespace, Name: want.Name}}
			}
			putDerived(c, "Route/"+key, want, svc, have, have != nil, fresh, func(o *servingv1.Route) bool {
				changed := !equality.Semantic.DeepEqual(o.Spec, want.Spec)
				o.Spec = *want.Spec.DeepCopy()
				return setMeta(&o.ObjectMeta, want.ObjectMeta) || changed
			}, func(o *servingv1.Route) {
				o.Status = *want.Status.DeepCopy()
				o.Status.ObservedGeneration = o.Generation
			})
		case have != nil:
			// A Route no Service owns is the user's: its status, and the one
			// annotation that records its gradual rollout, so that a
			// restarted controller resumes it (knative.AnnotationRollout).
			putDerived(c, "Route/"+key, want, nil, have, true, nil, func(o *servingv1.Route) bool {
				return setAnnotation(&o.ObjectMeta, knative.AnnotationRollout, want.Annotations[knative.AnnotationRollout])
			}, func(o *servingv1.Route) {
				o.Status = *want.Status.DeepCopy()
				o.Status.ObservedGeneration = o.Generation
			})
		}
	}
	for _, want := range res.DomainMappings {
		if c.publishFull() {
			return
		}
		key := want.Namespace + "/" + want.Name
		if have := s.mappings[key]; have != nil {
			putStatus(c, "DomainMapping/"+key, want, have, func(o *v1beta1.DomainMapping) {
				o.Status = *want.Status.DeepCopy()
				o.Status.ObservedGeneration = o.Generation
			})
		}
	}
	c.publishRevisions(s, res)
	c.publishHPAs(s, res)
	c.publishPlaceholders(s, res)
	c.prune(s)
}

// publishFull says whether this publish has queued its share of writes
// (publish).
func (c *Controller) publishFull() bool {
	return c.st.publishLimit > 0 && c.writes.backlog() >= c.st.publishLimit
}

// derivedStatusesWritten says whether the cache holds a status for a
// Service's derived Route and Configuration (key): a Service is never
// written with a URL or Ready while its Route has no status at all. It
// does not wait for their every later status: those writes queue ahead of
// the Service's (one queue, first in first out), and waiting for each to
// land put every Service's write behind the whole queue at 10,000.
// Objects the Service does not derive (someone else's, of its name) do
// not count.
func derivedStatusesWritten(s *snapshot, key string, derivesRoute, derivesConfig bool) bool {
	if derivesRoute {
		if have := s.routes[key]; have == nil || (isDerived(have.OwnerReferences) && len(have.Status.Conditions) == 0) {
			return false
		}
	}
	if derivesConfig {
		if have := s.configurations[key]; have == nil || (isDerived(have.OwnerReferences) && len(have.Status.Conditions) == 0) {
			return false
		}
	}
	return true
}

// revisionsWritten says whether the revisions a Service's status names
// are in the cache, and its latest ready one written Ready: a Service is
// never Ready while `kubectl get revision` finds no such revision, or
// finds it not Ready. Their writes queue ahead of the Service's.
func revisionsWritten(s *snapshot, want *servingv1.Service) bool {
	if name := want.Status.LatestCreatedRevisionName; name != "" && s.revisions[want.Namespace+"/"+name] == nil {
		return false
	}
	if name := want.Status.LatestReadyRevisionName; name != "" {
		rev := s.revisions[want.Namespace+"/"+name]
		if rev == nil || !isTrue(rev.Status.Conditions, servingv1.ConditionReady) {
			return false
		}
	}
	return true
}

// LabelRoute names the Route a Route's ExternalName Service belongs to.
const LabelRoute = "serving.knative.dev/route"

// publishPlaceholders gives every Route that serves a Kubernetes Service of
// its name, an ExternalName to the internal gateway, as Knative does: the
// cluster-local address <route>.<namespace>.svc.cluster.local then
// resolves, and the internal listener routes it by its Host. Each tag of
// its traffic gets one too (tags.go), and loses it with the tag.
func (c *Controller) publishPlaceholders(s *snapshot, res *knative.Result) {
	target := c.opts.InternalGatewayService + "." + c.opts.SystemNamespace + ".svc.cluster.local"
	byRoute := routeServicesByRoute(s)
	for _, want := range res.Routes {
		if c.publishFull() {
			return
		}
		rkey := want.Namespace + "/" + want.Name
		rt := s.routes[rkey]
		if rt == nil || want.Status.Address == nil {
			continue // not written yet, or not served
		}
		names := routeServiceNames(res.Config.Network, want)
		c.pruneTagServices(s, rt, names, byRoute[rkey])
		for _, name := range names {
			key := want.Namespace + "/" + name
			have := s.placeholders[key]
			if ref, ok := controllerOf(ownerRefs(have), servingv1.KindRoute); have != nil && (!ok || ref.UID != rt.UID) {
				// Another Route's (a Route named like this tag's Service),
				// or someone else's with the label: never overwritten.
				c.clashOnce(key, rkey)
				continue
			}
			if have != nil && have.Spec.ExternalName == target {
				continue
			}
			if have == nil {
				if live := c.liveService(key); live != nil {
					// Ours, created since this round's snapshot was read,
					// is left to the next; someone else's, without the
					// label, would fail to create on every round.
					if ref, ok := controllerOf(live.OwnerReferences, servingv1.KindRoute); !ok || ref.UID != rt.UID {
						c.clashOnce(key, rkey)
					}
					continue
				}
			}
			o := &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{
					Namespace: want.Namespace, Name: name, Labels: map[string]string{LabelRoute: want.Name},
					OwnerReferences: []metav1.OwnerReference{controllerRef(rt, servingv1.KindRoute)},
				},
				Spec: corev1.ServiceSpec{
					Type: corev1.ServiceTypeExternalName, ExternalName: target,
					Ports: []corev1.ServicePort{{Name: "http", Port: 80}},
				},
			}
			if have == nil {
				c.writes.put("RouteService/"+key, func(ctx context.Context) error { return ignoreExists(c.client.Create(ctx, o)) })
				continue
			}
			upd := have.DeepCopy()
			upd.Spec.ExternalName = target
			c.writes.put("RouteService/"+key, func(ctx context.Context) error {
				if err := c.client.Update(ctx, upd); err != nil {
					return fmt.Errorf("updating Service %s of Route %s: %w", key, rkey, err)
				}
				return nil
			})
		}
	}
}

// liveService is the Kubernetes Service of key ("namespace/name"),
// labelled or not, as the cache holds it now (nil: none), which may be
// newer than the round's snapshot; without an informer cache (a test's
// fake client) it asks the client.
func (c *Controller) liveService(key string) *corev1.Service {
	if items, ok := c.informerStore(&corev1.Service{}); ok {
		o, exists, err := items.GetByKey(key)
		if svc, ok := o.(*corev1.Service); err == nil && exists && ok {
			return svc
		}
		return nil
	}
	ns, name, _ := strings.Cut(key, "/")
	var svc corev1.Service
	if err := c.client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &svc); err != nil {
		return nil
	}
	return &svc
}

// clashOnce logs, once per Service, that a Route's cluster-local Service
// name is held by a Service the Route does not control: that name does
// not resolve to the Route (Knative marks such a Route NotOwned).
func (c *Controller) clashOnce(service, route string) {
	if c.clashes == nil {
		c.clashes = map[string]bool{}
	}
	if c.clashes[service] {
		return
	}
	c.clashes[service] = true
	c.log.Warn("a Route's cluster-local Service name is taken by a Service it does not control; left alone",
		"service", service, "route", route)
}

func ownerRefs(o *corev1.Service) []metav1.OwnerReference {
	if o == nil {
		return nil
	}
	return o.OwnerReferences
}

// putStatus queues a status write when set changes the object's status.
// want is the object of the Result it comes from: see settled.
func putStatus[T client.Object](c *Controller, key string, want any, have T, set func(T)) {
	if c.settled(key, want, have) {
		return
	}
	o := have.DeepCopyObject().(T)
	set(o)
	c.settle(key, want, have) // written, or to be
	if equality.Semantic.DeepEqual(o, have) {
		return
	}
	c.writes.put(key, c.unsettleOnError(key, func(ctx context.Context) error { return c.client.Status().Update(ctx, o) }))
}

// putDerived queues the writes of an object a Service derives: created
// (owned by the Service) and its status written, or its
// metadata and spec updated and then its status, observing the generation
// that update produced. setSpec says whether it changed anything. fresh
// makes the object to create, only when one is created: most rounds find
// most objects settled. want is the object of the Result it comes from:
// see settled.
func putDerived[T client.Object](c *Controller, key string, want any, svc *servingv1.Service, have T, exists bool, fresh func() T, setSpec func(T) bool, setStatus func(T)) {
	if !exists {
		// Creates wait for the client's rate limit like any write: the
		// same want is not prepared and queued again meanwhile.
		if c.settled(key, want, have) {
			return
		}
		o := fresh()
		setSpec(o)
		o.SetOwnerReferences([]metav1.OwnerReference{controllerRef(svc, servingv1.KindService)})
		c.settle(key, want, have)
		c.writes.put(key, c.unsettleOnError(key, func(ctx context.Context) error {
			if err := c.client.Create(ctx, o); err != nil {
				return ignoreExists(err) // someone's, or ours already: a later round compares it
			}
			// The API server drops a created object's status: its own
			// write, at once, so the Service's can follow.
			setStatus(o)
			return c.client.Status().Update(ctx, o)
		}))
		return
	}
	if c.settled(key, want, have) {
		return
	}
	o := have.DeepCopyObject().(T)
	specChanged := setSpec(o)
	withStatus := o.DeepCopyObject().(T)
	setStatus(withStatus)
	c.settle(key, want, have) // written, or to be
	if !specChanged && equality.Semantic.DeepEqual(withStatus, have) {
		return
	}
	c.writes.put(key, c.unsettleOnError(key, func(ctx context.Context) error {
		if !specChanged {
			return c.client.Status().Update(ctx, withStatus)
		}
		if err := c.client.Update(ctx, o); err != nil {
			return err
		}
		setStatus(o) // observes the generation the update produced
		return c.client.Status().Update(ctx, o)
	}))
}

// settledMark is a write found needless: the Result's object and the
// cache's it was compared with, and what else went into it.
type settledMark struct {
	want, have any
	runtime    runtimeMark
}

// runtimeMark is what a Revision's status takes besides its Result's
// (knative.Runtime).
type runtimeMark struct {
	actual, desired int32
	decided         bool
	mode            string
}

func markOf(rt knative.Runtime) runtimeMark {
	m := runtimeMark{actual: rt.Actual, mode: rt.Mode}
	if rt.Desired != nil {
		m.desired, m.decided = *rt.Desired, true
	}
	return m
}

// settled says whether the write of key was found needless, or queued,
// for these very objects: a Result carries over the objects it did not
// recompute (knative.Result.Changed), and the cache replaces an object
// when it changes, so the same pair compares the same, and a round over
// 10,000 unchanged Services compares none of them. A write queued stands
// for its pair until it fails (unsettleOnError) or its object changes in
// the cache: rounds while 10,000 writes wait for the client's rate limit
// do not compare the waiting ones again, nor queue them twice.
// A write whose want is not a Result's object (nil) is always compared.
func (c *Controller) settled(key string, want, have any, rt ...runtimeMark) bool {
	c.settledMu.Lock()
	defer c.settledMu.Unlock()
	m, ok := c.st.settled[key]
	return ok && want != nil && m.want == want && m.have == have && (len(rt) == 0 || m.runtime == rt[0])
}

// unsettleOnError is write, which forgets the mark of key when it fails:
// the next round compares and writes again.
func (c *Controller) unsettleOnError(key string, write func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		err := write(ctx)
		if err != nil {
			c.unsettle(key)
		}
		return err
	}
}

// unsettle forgets the mark of key.
func (c *Controller) unsettle(key string) {
	c.settledMu.Lock()
	delete(c.st.settled, key)
	c.settledMu.Unlock()
}

// marksBound is how many write marks (settled) the objects of s can hold,
// twice over, and some: one for each Service, Configuration, Route and
// DomainMapping, and three for each revision (its status, Deployment and
// private Service). Past it, most marks are of objects gone, and settle
// starts over. A bound of 4 per revision cleared every mark, over and
// over, while 10,000 Services' creates waited in the write queue: each
// round then compared and queued everything again, for seconds.
func marksBound(s *snapshot) int {
	return 2*(len(s.services)+len(s.configurations)+len(s.routes)+len(s.mappings)+3*len(s.revisions)) + 4096
}

// settle marks the write of key needless for want and have (settled).
func (c *Controller) settle(key string, want, have any, rt ...runtimeMark) {
	if want == nil {
		return
	}
	c.settledMu.Lock()
	defer c.settledMu.Unlock()
	if len(c.st.settled) > c.st.marksBound {
		clear(c.st.settled) // keys of objects gone since: start over
	}
	m := settledMark{want: want, have: have}
	if len(rt) > 0 {
		m.runtime = rt[0]
	}
	c.st.settled[key] = m
}

// setMeta makes o carry want's labels and annotations (those kgate
// derives), and says whether that changed anything.
func setMeta(o *metav1.ObjectMeta, want metav1.ObjectMeta) bool {
	changed := !maps.Equal(o.Labels, want.Labels) || !maps.Equal(o.Annotations, want.Annotations)
	o.Labels, o.Annotations = maps.Clone(want.Labels), maps.Clone(want.Annotations)
	return changed
}

// setAnnotation makes o carry the annotation k with value v ("": not at
// all), and says whether that changed anything.
func setAnnotation(o *metav1.ObjectMeta, k, v string) bool {
	if have, ok := o.Annotations[k]; have == v && (ok || v == "") {
		return false
	}
	if v == "" {
		delete(o.Annotations, k)
		return true
	}
	if o.Annotations == nil {
		o.Annotations = map[string]string{}
	}
	o.Annotations[k] = v
	return true
}

// publishRevisions creates the revisions the reconciler made, writes their
// status (with the autoscaler's replicas and routing mode), and gives each
// its Deployment and private Service.
func (c *Controller) publishRevisions(s *snapshot, res *knative.Result) {
	decisions, modes := c.loop.Decisions(), c.loop.Modes()
	for _, want := range res.Revisions {
		if c.publishFull() {
			return
		}
		key := want.Namespace + "/" + want.Name
		have := s.revisions[key]
		if have == nil {
			cfg := s.configurations[want.Namespace+"/"+want.Labels[knative.LabelConfiguration]]
			if cfg == nil {
				continue // its Configuration is being written: next round
			}
			if c.settled("Revision/"+key, want, have) {
				continue // its create is queued
			}
			c.settle("Revision/"+key, want, have)
			o := &servingv1.Revision{
				ObjectMeta: metav1.ObjectMeta{
					Namespace: want.Namespace, Name: want.Name,
					Labels: maps.Clone(want.Labels), Annotations: maps.Clone(want.Annotations),
					OwnerReferences: []metav1.OwnerReference{controllerRef(cfg, servingv1.KindConfiguration)},
				},
				Spec: *want.Spec.DeepCopy(),
			}
			c.writes.put("Revision/"+key, c.unsettleOnError("Revision/"+key, func(ctx context.Context) error { return ignoreExists(c.client.Create(ctx, o)) }))
			continue
		}
		dep := s.deployments[key]
		rt := knative.Runtime{}
		if dep != nil {
			rt.Actual = dep.Status.ReadyReplicas
		}
		if d, ok := decisions[key]; ok {
			rt.Desired, rt.Mode = &d.Replicas, string(modes[key])
		} else {
			hpaRuntime(s, key, &rt)
		}
		if mark := markOf(rt); !c.settled("Revision/"+key, want, have, mark) {
			st := knative.WithRuntime(want.Status, rt, have.Status.Conditions, time.Now().Truncate(time.Second))
			st.ObservedGeneration = have.Generation
			c.settle("Revision/"+key, want, have, mark) // written, or to be
			c.putRevisionStatus(key, have, st)
		}
		// A create stands until the object shows in the cache; then the
		// mark goes, so that one deleted later is created again. It is the
		// revision's (by UID), not the revision object's: a status written
		// meanwhile must not queue the create again, to fail as a
		// duplicate once the first has landed.
		if dep != nil {
			c.unsettle("Deployment/" + key)
		} else if !c.settled("Deployment/"+key, have.UID, dep) {
			d := deploykube.Deployment(have, c.opts.Deployment)
			if n, ok := c.scales.desired(key); ok {
				d.Spec.Replicas = &n
			}
			c.settle("Deployment/"+key, have.UID, dep)
			c.writes.put("Deployment/"+key, c.unsettleOnError("Deployment/"+key, func(ctx context.Context) error { return ignoreExists(c.client.Create(ctx, d)) }))
		}
		if p := s.private[key]; p != nil {
			c.unsettle("PrivateService/" + key)
		} else if !c.settled("PrivateService/"+key, have.UID, p) {
			svc := deploykube.PrivateService(have)
			c.settle("PrivateService/"+key, have.UID, p)
			c.writes.put("PrivateService/"+key, c.unsettleOnError("PrivateService/"+key, func(ctx context.Context) error { return ignoreExists(c.client.Create(ctx, svc)) }))
		}
	}
}

// putRevisionStatus queues the write of a Revision's status st when it
// differs from have's.
func (c *Controller) putRevisionStatus(key string, have *servingv1.Revision, st servingv1.RevisionStatus) {
	if equality.Semantic.DeepEqual(have.Status, st) {
		return
	}
	o := have.DeepCopy()
	o.Status = *st.DeepCopy()
	c.writes.put("Revision/"+key, c.unsettleOnError("Revision/"+key, func(ctx context.Context) error { return c.client.Status().Update(ctx, o) }))
}

// prune deletes what kgate derived and whose owner is gone. Kubernetes'
// garbage collector does the same from the owner references; doing it
// here too makes a deleted Service's routes and pods go at once, and
// clusters without a garbage collector (a bare API server) clean up.
func (c *Controller) prune(s *snapshot) {
	for key, o := range s.configurations {
		if ref, ok := controllerOf(o.OwnerReferences, servingv1.KindService); ok && s.services[o.Namespace+"/"+ref.Name] == nil {
			c.deleteLater("Configuration/"+key, o)
		}
	}
	for key, o := range s.routes {
		if ref, ok := controllerOf(o.OwnerReferences, servingv1.KindService); ok && s.services[o.Namespace+"/"+ref.Name] == nil {
			c.deleteLater("Route/"+key, o)
		}
	}
	for key, o := range s.revisions {
		if ref, ok := controllerOf(o.OwnerReferences, servingv1.KindConfiguration); ok && s.configurations[o.Namespace+"/"+ref.Name] == nil {
			c.deleteLater("Revision/"+key, o)
		}
	}
	for key, o := range s.deployments {
		if _, ok := controllerOf(o.OwnerReferences, servingv1.KindRevision); ok && s.revisions[key] == nil {
			c.deleteLater("Deployment/"+key, o)
		}
	}
	for key, o := range s.placeholders {
		if ref, ok := controllerOf(o.OwnerReferences, servingv1.KindRoute); ok && s.routes[o.Namespace+"/"+ref.Name] == nil {
			c.deleteLater("RouteService/"+key, o)
		}
	}
	for key, o := range s.private {
		if _, ok := controllerOf(o.OwnerReferences, servingv1.KindRevision); ok && s.revisions[key] == nil {
			c.deleteLater("PrivateService/"+key, o)
		}
	}
}

func (c *Controller) deleteLater(key string, o client.Object) {
	uid := o.GetUID()
	c.writes.put(key, func(ctx context.Context) error {
		err := c.client.Delete(ctx, o, client.Preconditions{UID: &uid}, client.PropagationPolicy(metav1.DeletePropagationBackground))
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
}

func controllerOf(refs []metav1.OwnerReference, kind string) (metav1.OwnerReference, bool) {
	for _, r := range refs {
		if r.Controller != nil && *r.Controller && r.Kind == kind && r.APIVersion == servingv1.APIVersion {
			return r, true
		}
	}
	return metav1.OwnerReference{}, false
}

func controllerRef(owner client.Object, kind string) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: servingv1.APIVersion, Kind: kind, Name: owner.GetName(), UID: owner.GetUID(),
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}
}

func ignoreExists(err error) error {
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// Helpers for the round.

func sortedValues[T any](m map[string]T) []T {
	out := make([]T, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[k])
	}
	return out
}

func equalDomains(a, b config.Domain) bool {
	return maps.EqualFunc(a.Domains, b.Domains, func(x, y map[string]string) bool { return maps.Equal(x, y) })
}

func domainNames(d config.Domain) string {
	return strings.Join(slices.Sorted(maps.Keys(d.Domains)), ",")
}
