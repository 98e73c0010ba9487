package v1

import (
	"encoding/json"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestSchemeRoundTrip registers the types, creates each kind through the
// scheme, and checks that a deep copy of a populated object is equal to it
// and shares no memory with it (changing the copy leaves the original alone).
func TestSchemeRoundTrip(t *testing.T) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	url, err := ParseURL("http://hello.default.example.com")
	if err != nil {
		t.Fatal(err)
	}
	meta := metav1.ObjectMeta{Name: "hello", Namespace: "default", Annotations: map[string]string{"a": "b"}}
	template := RevisionTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"autoscaling.knative.dev/target": "10"}},
		Spec: RevisionSpec{
			PodSpec:              corev1.PodSpec{Containers: []corev1.Container{{Image: "img", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}},
			ContainerConcurrency: ptr[int64](10), TimeoutSeconds: ptr[int64](300),
		},
	}
	traffic := []TrafficTarget{{Tag: "v1", RevisionName: "hello-00001", LatestRevision: ptr(false), Percent: ptr[int64](100), URL: url}}
	status := Status{ObservedGeneration: 1, Conditions: []Condition{{Type: ConditionReady, Status: corev1.ConditionTrue}}}
	routeStatus := RouteStatusFields{URL: url, Address: &Addressable{URL: url}, Traffic: traffic}
	objects := map[string]runtime.Object{
		KindService: &Service{ObjectMeta: meta,
			Spec:   ServiceSpec{ConfigurationSpec: ConfigurationSpec{Template: template}, RouteSpec: RouteSpec{Traffic: traffic}},
			Status: ServiceStatus{Status: status, ConfigurationStatusFields: ConfigurationStatusFields{LatestReadyRevisionName: "hello-00001"}, RouteStatusFields: routeStatus}},
		KindConfiguration: &Configuration{ObjectMeta: meta, Spec: ConfigurationSpec{Template: template},
			Status: ConfigurationStatus{Status: status}},
		KindRevision: &Revision{ObjectMeta: meta, Spec: template.Spec,
			Status: RevisionStatus{Status: status, ContainerStatuses: []ContainerStatus{{Name: "c", ImageDigest: "sha256:1"}}, ActualReplicas: ptr[int32](1)}},
		KindRoute: &Route{ObjectMeta: meta, Spec: RouteSpec{Traffic: traffic}, Status: RouteStatus{Status: status, RouteStatusFields: routeStatus}},
	}
	for kind, obj := range objects {
		for _, k := range []string{kind, kind + "List"} {
			gvk := SchemeGroupVersion.WithKind(k)
			if _, err := s.New(gvk); err != nil {
				t.Errorf("scheme.New(%v): %v", gvk, err)
			}
		}
		gvks, _, err := s.ObjectKinds(obj)
		if err != nil || len(gvks) != 1 || gvks[0] != SchemeGroupVersion.WithKind(kind) {
			t.Errorf("ObjectKinds(%s) = %v, %v", kind, gvks, err)
		}

		cp := obj.DeepCopyObject()
		if !reflect.DeepEqual(obj, cp) {
			t.Errorf("%s: deep copy differs:\n%#v\n%#v", kind, obj, cp)
		}
		before, _ := json.Marshal(obj)
		mutate(cp)
		if after, _ := json.Marshal(obj); string(before) != string(after) {
			t.Errorf("%s: changing the copy changed the original:\n%s\n%s", kind, before, after)
		}

		// The list types copy their items.
		list, _ := s.New(SchemeGroupVersion.WithKind(kind + "List"))
		items := reflect.ValueOf(list).Elem().FieldByName("Items")
		items.Set(reflect.Append(items, reflect.ValueOf(obj).Elem()))
		if lcp := list.DeepCopyObject(); !reflect.DeepEqual(list, lcp) {
			t.Errorf("%sList: deep copy differs", kind)
		}
	}
}

// mutate changes what a shallow copy would share: maps, slices, pointers.
func mutate(obj runtime.Object) {
	m := obj.(metav1.Object)
	m.GetAnnotations()["a"] = "changed"
	var traffic []TrafficTarget
	switch o := obj.(type) {
	case *Service:
		o.Spec.Template.Spec.Containers[0].Image = "changed"
		*o.Spec.Template.Spec.ContainerConcurrency = 99
		traffic = o.Spec.Traffic
		o.Status.URL.Host = "changed"
	case *Configuration:
		o.Spec.Template.Annotations["autoscaling.knative.dev/target"] = "changed"
	case *Revision:
		*o.Status.ActualReplicas = 7
		o.Status.ContainerStatuses[0].ImageDigest = "changed"
	case *Route:
		traffic = o.Spec.Traffic
		o.Status.Address.URL.Host = "changed"
	}
	if len(traffic) > 0 {
		*traffic[0].Percent = 1
		traffic[0].URL.Path = "/changed"
	}
}

func TestURLDeepCopy(t *testing.T) {
	if (*URL)(nil).DeepCopy() != nil {
		t.Error("nil URL copied to non-nil")
	}
	u, _ := ParseURL("https://user:pw@example.com/p?q=1")
	cp := u.DeepCopy()
	if cp == u || cp.String() != u.String() {
		t.Errorf("copy %p %q of %p %q", cp, cp, u, u)
	}
	cp.Host = "other"
	if u.Host != "example.com" {
		t.Errorf("changing the copy changed the original: %q", u)
	}
}
