package kube

import (
	"maps"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	networkingv1alpha1 "github.com/kgate/kgate/api/networking/v1alpha1"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/api/serving/v1beta1"
)

// index holds one kind's cached objects by the key a round reads them by,
// kept up to date by the informer's events rather than listed again each
// round: at 10,000 Services, listing and keying every object of every kind
// was a tenth of the controller's CPU while Services were created. The
// objects are the informer's own, which nothing changes (every write
// starts from a copy), so an unchanged object is the same pointer round
// after round, which is how the reconciler and publish tell what changed.
//
// A round takes the map (take) and only reads it; the next event copies
// it before changing it, so a round's map never changes under it, and
// rounds while nothing happens copy nothing.
type index[P client.Object] struct {
	key  func(client.Object) string
	want func(client.Object) bool // nil: every object

	mu     sync.Mutex
	objs   map[string]P
	shared bool // objs was taken: copy before changing
}

func newIndex[P client.Object](key func(client.Object) string, want func(client.Object) bool) *index[P] {
	return &index[P]{key: key, want: want, objs: map[string]P{}}
}

// take is the index as it stands, for a round to read and not change.
func (x *index[P]) take() map[string]P {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.shared = true
	return x.objs
}

// own makes objs the index's own to change. x.mu is held.
func (x *index[P]) own() {
	if x.shared {
		x.objs, x.shared = maps.Clone(x.objs), false
	}
}

// added takes an object the informer added.
func (x *index[P]) added(obj any) {
	o, ok := obj.(P)
	if !ok || (x.want != nil && !x.want(o)) {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.own()
	x.objs[x.key(o)] = o
}

// updated takes an object the informer replaced. An object whose
// resourceVersion did not change (a resync, or a relist after the watch
// broke) keeps its old pointer: nothing in it is new.
func (x *index[P]) updated(oldObj, newObj any) {
	o, ok := newObj.(P)
	if !ok {
		return
	}
	old, hadOld := oldObj.(P)
	wanted := x.want == nil || x.want(o)
	x.mu.Lock()
	defer x.mu.Unlock()
	key := x.key(o)
	if wanted {
		if have, ok := x.objs[key]; ok && have.GetUID() == o.GetUID() && have.GetResourceVersion() == o.GetResourceVersion() {
			return
		}
	}
	x.own()
	if hadOld {
		// Its key or its wanting may have changed with it.
		if oldKey := x.key(old); oldKey != key || !wanted {
			x.drop(oldKey, old)
		}
	}
	if wanted {
		x.objs[key] = o
	} else {
		x.drop(key, o)
	}
}

// deleted takes an object the informer deleted, or lost track of.
func (x *index[P]) deleted(obj any) {
	if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	o, ok := obj.(P)
	if !ok {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.own()
	x.drop(x.key(o), o)
}

// drop removes key when it holds o (by UID): another object of the same
// key stays. x.mu is held and objs owned.
func (x *index[P]) drop(key string, o P) {
	if have, ok := x.objs[key]; ok && have.GetUID() == o.GetUID() {
		delete(x.objs, key)
	}
}

// eventTaker takes an informer's events: an index.
type eventTaker interface {
	added(any)
	updated(any, any)
	deleted(any)
}

// handler updates the indexes with an informer's events, then asks for a
// round (after, so that the round reads what the event brought): with
// then(true) when the reconciler may read what changed, then(false) when
// echo says the update changed only what publish compares (a status kgate
// wrote, mostly: see Controller.round). echo nil: every event matters.
func handler(then func(relevant bool), echo func(oldObj, newObj any) bool, indexes ...eventTaker) toolscache.ResourceEventHandlerFuncs {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			for _, x := range indexes {
				x.added(obj)
			}
			then(true)
		},
		UpdateFunc: func(oldObj, newObj any) {
			for _, x := range indexes {
				x.updated(oldObj, newObj)
			}
			then(echo == nil || !echo(oldObj, newObj))
		},
		DeleteFunc: func(obj any) {
			for _, x := range indexes {
				x.deleted(obj)
			}
			then(true)
		},
	}
}

// statusOnly is an echo (handler) for a kind whose spec is what spec
// returns: an update that leaves the declaration as it was
// (sameDeclaration) changed only its status, which publish compares and
// the reconciler does not read.
func statusOnly[P client.Object](spec func(P) any) func(oldObj, newObj any) bool {
	return func(oldObj, newObj any) bool {
		a, okA := oldObj.(P)
		b, okB := newObj.(P)
		return okA && okB && sameDeclaration(a, b, spec)
	}
}

// derivedServiceOnly is the echo of Kubernetes Services: a revision's
// private Service and a Route's ExternalName Services are publish's
// alone; any other Service (the gateway's, whose address makes the
// default domain) matters to the reconciler.
func derivedServiceOnly(oldObj, newObj any) bool {
	a, okA := oldObj.(*corev1.Service)
	b, okB := newObj.(*corev1.Service)
	return okA && okB && (isPrivate(a) || isRouteService(a)) && (isPrivate(b) || isRouteService(b))
}

// indexes are the objects a round reads (snapshot), by kind.
type indexes struct {
	services       *index[*servingv1.Service]
	configurations *index[*servingv1.Configuration]
	routes         *index[*servingv1.Route]
	revisions      *index[*servingv1.Revision]
	mappings       *index[*v1beta1.DomainMapping]
	claims         *index[*networkingv1alpha1.ClusterDomainClaim] // by domain
	deployments    *index[*appsv1.Deployment]                     // by revision key
	private        *index[*corev1.Service]                        // by revision key
	placeholders   *index[*corev1.Service]                        // the Routes' and their tags'
	// synced say whether each informer's handler has taken the objects
	// the informer started with.
	synced []toolscache.InformerSynced
}

func newIndexes() *indexes {
	return &indexes{
		services:       newIndex[*servingv1.Service](byKey, nil),
		configurations: newIndex[*servingv1.Configuration](byKey, nil),
		routes:         newIndex[*servingv1.Route](byKey, nil),
		revisions:      newIndex[*servingv1.Revision](byKey, nil),
		mappings:       newIndex[*v1beta1.DomainMapping](byKey, nil),
		claims:         newIndex[*networkingv1alpha1.ClusterDomainClaim](client.Object.GetName, nil),
		deployments:    newIndex[*appsv1.Deployment](byRevision, hasRevision),
		private:        newIndex[*corev1.Service](byRevision, isPrivate),
		placeholders:   newIndex[*corev1.Service](byKey, isRouteService),
	}
}

// of are the indexes that take the events of obj's kind, and what tells
// an update that matters only to publish (handler's echo; nil: none).
func (x *indexes) of(obj client.Object) ([]eventTaker, func(oldObj, newObj any) bool) {
	switch obj.(type) {
	case *servingv1.Service:
		return []eventTaker{x.services}, statusOnly(func(o *servingv1.Service) any { return &o.Spec })
	case *servingv1.Configuration:
		return []eventTaker{x.configurations}, statusOnly(func(o *servingv1.Configuration) any { return &o.Spec })
	case *servingv1.Route:
		return []eventTaker{x.routes}, statusOnly(func(o *servingv1.Route) any { return &o.Spec })
	case *servingv1.Revision:
		return []eventTaker{x.revisions}, statusOnly(func(o *servingv1.Revision) any { return &o.Spec })
	case *v1beta1.DomainMapping:
		return []eventTaker{x.mappings}, statusOnly(func(o *v1beta1.DomainMapping) any { return &o.Spec })
	case *networkingv1alpha1.ClusterDomainClaim:
		return []eventTaker{x.claims}, nil
	case *appsv1.Deployment:
		return []eventTaker{x.deployments}, nil // its status is the revision's readiness
	case *corev1.Service:
		return []eventTaker{x.private, x.placeholders}, derivedServiceOnly
	}
	return nil, nil
}
