package v1beta1

import (
	"encoding/json"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
)

// mapping is a populated DomainMapping: every pointer, slice and map set.
func mapping(t *testing.T) *DomainMapping {
	t.Helper()
	url, err := servingv1.ParseURL("https://hello.localtest.me")
	if err != nil {
		t.Fatal(err)
	}
	return &DomainMapping{
		ObjectMeta: metav1.ObjectMeta{Name: "hello.localtest.me", Namespace: "default", Annotations: map[string]string{"a": "b"}},
		Spec: DomainMappingSpec{
			Ref: KReference{APIVersion: servingv1.APIVersion, Kind: servingv1.KindService, Name: "hello", Namespace: "default", Address: ptr("")},
			TLS: &SecretTLS{SecretName: "hello-tls"},
		},
		Status: DomainMappingStatus{
			Status:  servingv1.Status{ObservedGeneration: 1, Conditions: []servingv1.Condition{{Type: ConditionReady, Status: corev1.ConditionTrue}}},
			URL:     url,
			Address: &servingv1.Addressable{URL: url.DeepCopy()},
		},
	}
}

// TestSchemeRoundTrip registers the types, creates them through the scheme,
// and checks that a deep copy equals the original and shares no memory
// with it.
func TestSchemeRoundTrip(t *testing.T) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{KindDomainMapping, KindDomainMapping + "List"} {
		if _, err := s.New(SchemeGroupVersion.WithKind(k)); err != nil {
			t.Errorf("scheme.New(%s): %v", k, err)
		}
	}
	dm := mapping(t)
	gvks, _, err := s.ObjectKinds(dm)
	if err != nil || len(gvks) != 1 || gvks[0] != SchemeGroupVersion.WithKind(KindDomainMapping) {
		t.Errorf("ObjectKinds = %v, %v", gvks, err)
	}
	if got := Resource("domainmappings").String(); got != "domainmappings.serving.knative.dev" {
		t.Errorf("Resource = %q", got)
	}

	cp := dm.DeepCopyObject().(*DomainMapping)
	if !reflect.DeepEqual(dm, cp) {
		t.Fatalf("deep copy differs:\n%#v\n%#v", dm, cp)
	}
	before, _ := json.Marshal(dm)
	cp.Annotations["a"] = "changed"
	*cp.Spec.Ref.Address = "changed"
	cp.Spec.TLS.SecretName = "changed"
	cp.Status.Conditions[0].Reason = "changed"
	cp.Status.URL.Host = "changed"
	cp.Status.Address.URL.Host = "changed"
	if after, _ := json.Marshal(dm); string(before) != string(after) {
		t.Errorf("changing the copy changed the original:\n%s\n%s", before, after)
	}

	list := &DomainMappingList{Items: []DomainMapping{*dm}}
	if lcp := list.DeepCopyObject(); !reflect.DeepEqual(list, lcp) {
		t.Error("list deep copy differs")
	}
}

// TestKnativeJSON checks that a DomainMapping as Knative writes it, status
// included, reads into these types and writes back the same.
func TestKnativeJSON(t *testing.T) {
	const in = `{"apiVersion":"serving.knative.dev/v1beta1","kind":"DomainMapping",` +
		`"metadata":{"name":"hello.localtest.me","namespace":"default"},` +
		`"spec":{"ref":{"kind":"Service","namespace":"default","name":"hello","apiVersion":"serving.knative.dev/v1"},"tls":{"secretName":"hello-tls"}},` +
		`"status":{"observedGeneration":1,"conditions":[` +
		`{"type":"CertificateProvisioned","status":"True","lastTransitionTime":"2026-01-02T03:04:05Z","reason":"CertificateExternallyProvided","message":"TLS certificate was provided externally"},` +
		`{"type":"DomainClaimed","status":"True","lastTransitionTime":"2026-01-02T03:04:05Z"},` +
		`{"type":"Ready","status":"False","lastTransitionTime":"2026-01-02T03:04:05Z","reason":"DomainAlreadyClaimed","message":"The domain name is already in use by another DomainMapping"}],` +
		`"url":"https://hello.localtest.me","address":{"url":"https://hello.localtest.me"}}}`
	var dm DomainMapping
	if err := json.Unmarshal([]byte(in), &dm); err != nil {
		t.Fatal(err)
	}
	if dm.Spec.Ref.Kind != servingv1.KindService || dm.Spec.TLS.SecretName != "hello-tls" || dm.Status.URL.Host != "hello.localtest.me" {
		t.Errorf("decoded %+v", dm)
	}
	out, err := json.Marshal(&dm)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	_ = json.Unmarshal([]byte(in), &a)
	_ = json.Unmarshal(out, &b)
	// creationTimestamp: null is metav1's; the rest must match.
	delete(b.(map[string]any)["metadata"].(map[string]any), "creationTimestamp")
	if !reflect.DeepEqual(a, b) {
		t.Errorf("round trip changed it:\n%s\n%s", in, out)
	}
}

func ptr[T any](v T) *T { return &v }
