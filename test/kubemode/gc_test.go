package kubemode

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
)

// On a real API server, a revision config-gc collects is deleted with its
// Deployment and private Service once its Route no longer sends it traffic
// (retain times 0s, min-non-active-revisions 0), while the routed one
// stays, labelled active as Knative's labeler labels it.
func TestReplacedRevisionIsCollected(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gc := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: "config-gc"},
		Data: map[string]string{"min-non-active-revisions": "0", "retain-since-create-time": "0s",
			"retain-since-last-active-time": "0s"},
	}
	if err := e.client.Create(ctx, gc); err != nil {
		t.Fatal(err)
	}
	c, _ := e.startController()
	e.connectGateway(c.XDSAddr().String(), "gateway-1") // a Route is Ready once a gateway serves it
	e.kubelet(ctx)
	e.apply(seed(t, "000-case1-hello.yaml"))

	key := client.ObjectKey{Namespace: "default", Name: "hello"}
	servedBy := func(rev string) func() error {
		return func() error {
			var svc servingv1.Service
			if err := e.client.Get(ctx, key, &svc); err != nil {
				return err
			}
			if svc.Status.LatestReadyRevisionName != rev {
				return fmt.Errorf("latestReady %q", svc.Status.LatestReadyRevisionName)
			}
			return ready(svc.Generation, svc.Status.ObservedGeneration, svc.Status.Conditions)
		}
	}
	e.eventually(30*time.Second, "hello-00001 serves", servedBy("hello-00001"))
	e.updateService(ctx, key, func(svc *servingv1.Service) {
		svc.Spec.Template.Spec.Containers[0].Env[0].Value = "Kubernetes"
	})
	e.eventually(30*time.Second, "hello-00002 serves", servedBy("hello-00002"))

	gone := func(o client.Object, name string) error {
		err := e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, o)
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return err
		}
		return fmt.Errorf("%T %s still there", o, name)
	}
	e.eventually(30*time.Second, "hello-00001, its Deployment and private Service deleted", func() error {
		if err := gone(&servingv1.Revision{}, "hello-00001"); err != nil {
			return err
		}
		if err := gone(&appsv1.Deployment{}, "hello-00001-deployment"); err != nil {
			return err
		}
		return gone(&corev1.Service{}, "hello-00001-private")
	})
	e.eventually(10*time.Second, "hello-00002 labelled active", func() error {
		var rev servingv1.Revision
		if err := e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "hello-00002"}, &rev); err != nil {
			return err
		}
		if got := rev.Labels["serving.knative.dev/routingState"]; got != "active" {
			return fmt.Errorf("routingState %q", got)
		}
		if rev.Annotations["serving.knative.dev/routingStateModified"] == "" {
			return fmt.Errorf("no routingStateModified in %v", rev.Annotations)
		}
		return nil
	})
	if err := servedBy("hello-00002")(); err != nil {
		t.Errorf("after the collection: %v", err)
	}
}
