package kubemode

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	kubesource "github.com/kgate/kgate/watcher/kube"
)

// tagTarget is a tagged traffic target.
func tagTarget(tag, revision string, percent int64) servingv1.TrafficTarget {
	t := servingv1.TrafficTarget{Tag: tag, Percent: new(percent)}
	if revision == "" {
		t.LatestRevision = new(true)
	} else {
		t.RevisionName = revision
	}
	return t
}

// helloService is a Knative Service running a sample image.
func helloService(name string, annotations map[string]string) *servingv1.Service {
	svc := &servingv1.Service{}
	svc.Namespace, svc.Name = "default", name
	svc.Spec.Template.Annotations = annotations
	svc.Spec.Template.Spec.Containers = []corev1.Container{{Image: "ghcr.io/knative/helloworld-go:latest"}}
	return svc
}

// A tag's cluster-local name works in Kubernetes mode as in Knative: each
// tag of a Route's traffic gets an ExternalName Service <tag>-<route> to the
// internal gateway, owned by the Route, and the gateway routes the tag's
// cluster-local hosts to the tag's revision; a tag that leaves the traffic
// takes its Service with it.
func TestTagClusterLocalServices(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, _ := e.startController()
	gw := e.connectGateway(c.XDSAddr().String(), "gateway-1")
	e.kubelet(ctx)

	svc := helloService("tagged", nil)
	if err := e.client.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(svc)
	e.eventually(30*time.Second, "tagged-00001 Ready", func() error {
		if err := e.client.Get(ctx, key, svc); err != nil {
			return err
		}
		if svc.Status.LatestReadyRevisionName != "tagged-00001" {
			return fmt.Errorf("latestReady %q", svc.Status.LatestReadyRevisionName)
		}
		return nil
	})
	// A second revision, tagged current, beside the first, tagged old.
	e.updateService(ctx, key, func(svc *servingv1.Service) {
		svc.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "TARGET", Value: "two"}}
		svc.Spec.Traffic = []servingv1.TrafficTarget{tagTarget("current", "", 100), tagTarget("old", "tagged-00001", 0)}
	})
	var rt servingv1.Route
	e.eventually(30*time.Second, "the tags' ExternalName Services", func() error {
		if err := e.client.Get(ctx, key, &rt); err != nil {
			return err
		}
		for _, name := range []string{"tagged", "current-tagged", "old-tagged"} {
			if err := routeService(ctx, e, name); err != nil {
				return err
			}
		}
		return nil
	})
	for _, name := range []string{"current-tagged", "old-tagged"} {
		var s corev1.Service
		if err := e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, &s); err != nil {
			t.Fatal(err)
		}
		if !metav1.IsControlledBy(&s, &rt) || s.Labels[kubesource.LabelRoute] != "tagged" {
			t.Errorf("Service %s: owners %v, labels %v; want controlled by the Route tagged and labelled with it", name, s.OwnerReferences, s.Labels)
		}
	}

	// The gateway routes each tag's cluster-local hosts to its revision.
	for tag, rev := range map[string]string{"current": "default/tagged-00002", "old": "default/tagged-00001"} {
		for _, suffix := range []string{".default", ".default.svc", ".default.svc.cluster.local"} {
			host := tag + "-tagged" + suffix
			e.eventually(10*time.Second, host+" routed to "+rev, func() error {
				vh := gw.virtualHost(host)
				if vh == nil {
					return fmt.Errorf("no virtual host %s among %v", host, gw.hosts())
				}
				if got := clustersOf(matchRoute(vh, "/", "http")); !slices.Equal(got, []string{rev}) {
					return fmt.Errorf("%s routes to %v, want %s", host, got, rev)
				}
				return nil
			})
		}
	}

	// The old tag leaves the traffic: its Service goes, the others stay.
	e.updateService(ctx, key, func(svc *servingv1.Service) {
		svc.Spec.Traffic = []servingv1.TrafficTarget{tagTarget("current", "", 100)}
	})
	e.eventually(30*time.Second, "old-tagged deleted", func() error {
		var s corev1.Service
		err := e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "old-tagged"}, &s)
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return err
		case s.DeletionTimestamp != nil:
			return nil
		}
		return fmt.Errorf("old-tagged still there")
	})
	for _, name := range []string{"tagged", "current-tagged"} {
		if err := routeService(ctx, e, name); err != nil {
			t.Errorf("after the old tag left: %v", err)
		}
	}
}

// Knative's HPA class in Kubernetes mode: the revision gets an
// autoscaling/v2 HorizontalPodAutoscaler for its Deployment with the
// metric, target and bounds of its annotations, owned by the Revision,
// which the API server stores as kgate wrote it (no write per round after
// its defaults); kgate's autoscaler stays out: with activators there to put
// in the path, the gateway sends the revision's traffic straight to its
// pods, where a KPA revision beside it goes through the activators; the
// revision is Ready once its pods are.
func TestHPAClassRevision(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Two activators, as their Service's EndpointSlice says.
	acts := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: "kgate-activator-test",
			Labels: map[string]string{discoveryv1.LabelServiceName: "kgate-activator"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: new("http"), Port: new(int32(8012))}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.9.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: new(true)}},
			{Addresses: []string{"10.9.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: new(true)}},
		},
	}
	if err := e.client.Create(ctx, acts); err != nil {
		t.Fatal(err)
	}
	c, _ := e.startController()
	gw := e.connectGateway(c.XDSAddr().String(), "gateway-1")
	e.kubelet(ctx)

	const class = "autoscaling.knative.dev/class"
	for _, svc := range []*servingv1.Service{
		helloService("mem", map[string]string{class: "hpa.autoscaling.knative.dev",
			"autoscaling.knative.dev/metric": "memory", "autoscaling.knative.dev/target": "100",
			"autoscaling.knative.dev/min-scale": "2", "autoscaling.knative.dev/max-scale": "6"}),
		helloService("cpu", map[string]string{class: "hpa.autoscaling.knative.dev", "autoscaling.knative.dev/target": "70"}),
		helloService("kpa", nil),
	} {
		if err := e.client.Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
	}

	want := map[string]struct {
		min, max int32
		metric   autoscalingv2.MetricSpec
	}{
		"mem-00001": {2, 6, autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
			Name: corev1.ResourceMemory, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: new(resource.MustParse("100Mi"))}}}},
		"cpu-00001": {1, 2147483647, autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
			Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: new(int32(70))}}}},
	}
	stored := map[string]string{} // resourceVersions
	for name, w := range want {
		var h autoscalingv2.HorizontalPodAutoscaler
		var rev servingv1.Revision
		e.eventually(30*time.Second, "the HPA of "+name, func() error {
			if err := e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, &rev); err != nil {
				return err
			}
			return e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, &h)
		})
		if !metav1.IsControlledBy(&h, &rev) {
			t.Errorf("HPA %s owners %v, want the Revision (uid %s)", name, h.OwnerReferences, rev.UID)
		}
		if ref := h.Spec.ScaleTargetRef; ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != name+"-deployment" {
			t.Errorf("HPA %s targets %+v, want the Deployment %s-deployment", name, ref, name)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas != w.min || h.Spec.MaxReplicas != w.max {
			t.Errorf("HPA %s replicas %v..%d, want %d..%d", name, h.Spec.MinReplicas, h.Spec.MaxReplicas, w.min, w.max)
		}
		if len(h.Spec.Metrics) != 1 || h.Spec.Metrics[0].Type != w.metric.Type || h.Spec.Metrics[0].Resource == nil ||
			h.Spec.Metrics[0].Resource.Name != w.metric.Resource.Name || !sameTarget(h.Spec.Metrics[0].Resource.Target, w.metric.Resource.Target) {
			t.Errorf("HPA %s metrics %+v, want %+v", name, h.Spec.Metrics, w.metric)
		}
		stored[name] = h.ResourceVersion
	}
	if err := e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "kpa-00001"}, &autoscalingv2.HorizontalPodAutoscaler{}); !apierrors.IsNotFound(err) {
		t.Errorf("the KPA revision's HPA: %v, want none", err)
	}

	for _, name := range []string{"mem", "cpu"} {
		e.eventually(30*time.Second, "Service "+name+" Ready", func() error {
			var svc servingv1.Service
			if err := e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, &svc); err != nil {
				return err
			}
			return ready(svc.Generation, svc.Status.ObservedGeneration, svc.Status.Conditions)
		})
	}
	// Straight to the pods for the HPA class; the KPA revision, at 1 pod
	// with the default burst capacity, is behind the activators.
	e.eventually(10*time.Second, "the HPA revision's endpoints are its pods", func() error {
		eps := gw.endpoints("default/mem-00001")
		if len(eps) == 0 || slices.ContainsFunc(eps, func(a string) bool { return strings.HasPrefix(a, "10.9.") }) {
			return fmt.Errorf("endpoints of default/mem-00001: %v, want its pods, no activator", eps)
		}
		kpa := gw.endpoints("default/kpa-00001")
		if len(kpa) == 0 || !slices.ContainsFunc(kpa, func(a string) bool { return strings.HasPrefix(a, "10.9.") }) {
			return fmt.Errorf("endpoints of default/kpa-00001: %v, want the activators", kpa)
		}
		return nil
	})
	var rev servingv1.Revision
	if err := e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "mem-00001"}, &rev); err != nil {
		t.Fatal(err)
	}
	if err := ready(rev.Generation, rev.Status.ObservedGeneration, rev.Status.Conditions); err != nil {
		t.Errorf("Revision mem-00001: %v", err)
	}

	// Rounds go on (the Services' statuses, the kubelet's EndpointSlices):
	// the HPAs stay as stored, the API server's defaults and all.
	time.Sleep(2 * time.Second)
	for name, rv := range stored {
		var h autoscalingv2.HorizontalPodAutoscaler
		if err := e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, &h); err != nil {
			t.Fatal(err)
		}
		if h.ResourceVersion != rv {
			t.Errorf("HPA %s rewritten (resourceVersion %s, then %s): kgate fights the API server's defaults", name, rv, h.ResourceVersion)
		}
	}
}

// sameTarget compares metric targets, quantities by value.
func sameTarget(a, b autoscalingv2.MetricTarget) bool {
	q := func(x *resource.Quantity) string {
		if x == nil {
			return ""
		}
		return fmt.Sprint(x.Value())
	}
	u := func(x *int32) int32 {
		if x == nil {
			return -1
		}
		return *x
	}
	return a.Type == b.Type && q(a.AverageValue) == q(b.AverageValue) && q(a.Value) == q(b.Value) && u(a.AverageUtilization) == u(b.AverageUtilization)
}

// updateService changes a Knative Service's spec, again on a conflict: the
// controller writes its status meanwhile.
func (e *env) updateService(ctx context.Context, key client.ObjectKey, change func(*servingv1.Service)) {
	e.t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var svc servingv1.Service
		if err := e.client.Get(ctx, key, &svc); err != nil {
			return err
		}
		change(&svc)
		return e.client.Update(ctx, &svc)
	})
	if err != nil {
		e.t.Fatalf("updating Service %s: %v", key, err)
	}
}
