package kube

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	kubetest "github.com/kgate/kgate/test/kube"
	"github.com/kgate/kgate/translator/model"
)

// scaleAndCheck scales the revision and reads the Deployment's
// spec.replicas back.
func scaleAndCheck(ctx context.Context, t *testing.T, c client.Client, s *Scaler, key string, replicas int32) {
	t.Helper()
	if err := s.Scale(ctx, key, replicas); err != nil {
		t.Fatalf("Scale(%s, %d): %v", key, replicas, err)
	}
	ns, name, _ := SplitKey(key)
	var d appsv1.Deployment
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: DeploymentName(name)}, &d); err != nil {
		t.Fatal(err)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != replicas {
		t.Fatalf("after Scale(%s, %d): spec.replicas = %v", key, replicas, d.Spec.Replicas)
	}
}

// testScaler runs Scaler.Scale against c, where the hello revision's
// Deployment was created: scale up, the same again (no write), to zero, a
// missing Deployment and bad arguments.
func testScaler(ctx context.Context, t *testing.T, c client.Client) {
	s := NewScaler(c)
	scaleAndCheck(ctx, t, c, s, "default/hello-00001", 3)

	var before appsv1.Deployment
	if err := c.Get(ctx, types.NamespacedName{Namespace: "default", Name: "hello-00001-deployment"}, &before); err != nil {
		t.Fatal(err)
	}
	scaleAndCheck(ctx, t, c, s, "default/hello-00001", 3)
	var after appsv1.Deployment
	if err := c.Get(ctx, types.NamespacedName{Namespace: "default", Name: "hello-00001-deployment"}, &after); err != nil {
		t.Fatal(err)
	}
	if before.ResourceVersion != after.ResourceVersion {
		t.Errorf("scaling to the replicas it has wrote the Deployment: resourceVersion %s -> %s", before.ResourceVersion, after.ResourceVersion)
	}

	scaleAndCheck(ctx, t, c, s, "default/hello-00001", 0)

	err := s.Scale(ctx, "default/missing-00001", 1)
	if err == nil || !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), "default/missing-00001-deployment") {
		t.Errorf("Scale of a revision without a Deployment = %v; want a not-found error naming default/missing-00001-deployment", err)
	}
	if err := s.Scale(ctx, "default/hello-00001", -1); err == nil {
		t.Error("Scale to -1 is no error")
	}
	if err := s.Scale(ctx, "hello-00001", 1); err == nil {
		t.Error("Scale of a key without a namespace is no error")
	}
}

// TestScalerFake runs the Scaler against controller-runtime's fake client,
// which implements the scale subresource of Deployments: no apiserver
// needed.
func TestScalerFake(t *testing.T) {
	rev := readRevision(t, "testdata/in/hello.yaml")
	c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(Deployment(rev, Options{})).Build()
	testScaler(t.Context(), t, c)
}

// TestScalerKube runs the Scaler against a real kube-apiserver, after
// creating there the Deployment and private Service the builders make
// (which the apiserver's validation thereby checks). There is no kubelet:
// no pods run, only spec.replicas changes.
func TestScalerKube(t *testing.T) {
	kubetest.Require(t)
	cluster := kubetest.Start(t)
	ca, err := os.ReadFile(cluster.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &rest.Config{Host: cluster.URL, BearerToken: cluster.Token, TLSClientConfig: rest.TLSClientConfig{CAData: ca}}
	c, err := client.New(cfg, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	// The apiserver makes the default namespace shortly after it is ready.
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace default: %v", err)
	}
	for _, in := range []string{"hello", "h2c", "two-containers", "probes-without-ports", "volumes", "service-account", "resources", "annotations", "long-name"} {
		rev := readRevision(t, "testdata/in/"+in+".yaml")
		if rev.Namespace != "default" {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: rev.Namespace}}
			if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatalf("creating namespace %s: %v", rev.Namespace, err)
			}
		}
		for _, obj := range []client.Object{Deployment(rev, Options{}), PrivateService(rev)} {
			if err := c.Create(ctx, obj); err != nil {
				t.Fatalf("%s: creating %T %s: %v", in, obj, obj.GetName(), err)
			}
		}
	}
	testScaler(ctx, t, c)
}

func TestScalerSlices(t *testing.T) {
	s := NewScaler(nil)
	http := []discoveryv1.EndpointPort{port("http", 8080)}
	a := slice(discoveryv1.AddressTypeIPv4, http, ep(yes, nil, "10.0.0.2"), ep(no, nil, "10.0.0.3"))
	b := slice(discoveryv1.AddressTypeIPv4, http, ep(yes, nil, "10.0.0.1"))

	if got := s.Ready("default/hello-00001"); got != nil {
		t.Errorf("Ready before any slice = %v", got)
	}
	if !s.SetSlices("default/hello-00001", []discoveryv1.EndpointSlice{a, b}) {
		t.Error("first ready endpoints: not changed")
	}
	want := []model.Endpoint{{Address: "10.0.0.1", Port: 8080}, {Address: "10.0.0.2", Port: 8080}}
	got := s.Ready("default/hello-00001")
	if !slices.Equal(got, want) {
		t.Errorf("Ready = %v, want %v", got, want)
	}
	got[0].Address = "mutated"
	if got := s.Ready("default/hello-00001"); !slices.Equal(got, want) {
		t.Errorf("Ready after the caller changed its copy = %v", got)
	}
	// The same ready set in another order, or with other not-ready pods,
	// is no change.
	c := slice(discoveryv1.AddressTypeIPv4, http, ep(no, nil, "10.0.0.9"))
	if s.SetSlices("default/hello-00001", []discoveryv1.EndpointSlice{b, c, a}) {
		t.Error("same ready endpoints: changed")
	}
	if s.Ready("default/other-00001") != nil {
		t.Error("another revision has endpoints")
	}
	if !s.SetSlices("default/hello-00001", []discoveryv1.EndpointSlice{b}) {
		t.Error("one pod fewer: not changed")
	}
	if !s.SetSlices("default/hello-00001", nil) {
		t.Error("no slices: not changed")
	}
	if got := s.Ready("default/hello-00001"); got != nil {
		t.Errorf("Ready after no slices = %v", got)
	}
	if s.SetSlices("default/hello-00001", []discoveryv1.EndpointSlice{c}) {
		t.Error("none ready to none ready: changed")
	}
	if len(s.ready) != 0 {
		t.Errorf("revisions without ready endpoints are kept: %v", s.ready)
	}
}

// TestScalerConcurrent runs SetSlices and Ready together, for the race
// detector.
func TestScalerConcurrent(t *testing.T) {
	s := NewScaler(nil)
	http := []discoveryv1.EndpointPort{port("http", 8080)}
	var wg sync.WaitGroup
	for w := range 4 {
		key := fmt.Sprintf("default/rev-%d", w%2)
		wg.Go(func() {
			for i := range 200 {
				s.SetSlices(key, []discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4, http, ep(yes, nil, fmt.Sprintf("10.0.%d.%d", w, i%5)))})
				for _, e := range s.Ready(key) {
					if e.Port != 8080 {
						t.Errorf("Ready(%s) has %v", key, e)
					}
				}
			}
		})
	}
	wg.Wait()
}
