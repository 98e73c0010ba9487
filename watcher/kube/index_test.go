package kube

import (
	"maps"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	deploykube "github.com/kgate/kgate/deploy/kube"
)

// TestIndexFollowsTheInformer: an index of private Services by revision
// key takes each event as a List of the informer's objects would show
// it; a map a round took never changes after; an update that changes
// nothing keeps the object's pointer.
func TestIndexFollowsTheInformer(t *testing.T) {
	svc := func(name, uid, rv, rev string, private bool) *corev1.Service {
		o := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID(uid), ResourceVersion: rv, Labels: map[string]string{}}}
		if rev != "" {
			o.Labels[deploykube.LabelRevision] = rev
		}
		if private {
			o.Labels[deploykube.LabelServiceType] = deploykube.ServiceTypePrivate
		}
		return o
	}
	a1 := svc("a-private", "a", "1", "a-00001", true)
	a2 := svc("a-private", "a", "2", "a-00001", true)
	a2again := svc("a-private", "a", "2", "a-00001", true) // a relist's copy
	aMoved := svc("a-private", "a", "3", "a-00002", true)
	aPublic := svc("a-private", "a", "4", "a-00002", false)
	b := svc("b-private", "b", "1", "b-00001", true)
	bSameKey := svc("b-other", "b2", "1", "b-00001", true)
	plain := svc("web", "w", "1", "", false)

	x := newIndex[*corev1.Service](byRevision, isPrivate)
	steps := []struct {
		name  string
		event func()
		want  map[string]*corev1.Service
	}{
		{"added", func() { x.added(a1); x.added(b); x.added(plain) },
			map[string]*corev1.Service{"default/a-00001": a1, "default/b-00001": b}},
		{"updated", func() { x.updated(a1, a2) },
			map[string]*corev1.Service{"default/a-00001": a2, "default/b-00001": b}},
		{"a relist's copy, unchanged", func() { x.updated(a2, a2again) },
			map[string]*corev1.Service{"default/a-00001": a2, "default/b-00001": b}},
		{"its key changed", func() { x.updated(a2again, aMoved) },
			map[string]*corev1.Service{"default/a-00002": aMoved, "default/b-00001": b}},
		{"no longer private", func() { x.updated(aMoved, aPublic) },
			map[string]*corev1.Service{"default/b-00001": b}},
		{"another of b's key, deleted", func() { x.deleted(bSameKey) },
			map[string]*corev1.Service{"default/b-00001": b}},
		{"b deleted, as a tombstone", func() { x.deleted(toolscache.DeletedFinalStateUnknown{Key: "default/b-private", Obj: b}) },
			map[string]*corev1.Service{}},
		{"not a Service", func() { x.added(&corev1.ConfigMap{}) },
			map[string]*corev1.Service{}},
	}
	var taken []map[string]*corev1.Service
	var wants []map[string]*corev1.Service
	for _, step := range steps {
		step.event()
		got := x.take()
		if !maps.Equal(got, step.want) {
			t.Errorf("%s: index %v, want %v", step.name, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(step.want)))
		}
		taken, wants = append(taken, got), append(wants, step.want)
	}
	for i, got := range taken {
		if !maps.Equal(got, wants[i]) {
			t.Errorf("the map taken after %q changed since: %v", steps[i].name, slices.Sorted(maps.Keys(got)))
		}
	}
}

// TestIndexCopiesOnlyWhatWasTaken: events between two rounds change the
// index in place; the first after a round copies it once.
func TestIndexCopiesOnlyWhatWasTaken(t *testing.T) {
	x := newIndex[*corev1.Service](byKey, nil)
	x.added(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "a"}})
	before := x.take()
	x.added(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "b"}})
	afterFirst := x.objs
	x.added(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "c"}})
	if len(before) != 1 {
		t.Errorf("the map a round took holds %d objects, want 1", len(before))
	}
	if len(afterFirst) != 3 || len(x.take()) != 3 {
		t.Errorf("the second event after the round copied the map again")
	}
}
