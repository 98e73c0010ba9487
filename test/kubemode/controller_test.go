package kubemode

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/test/kube"
)

func seed(t testing.TB, name string) string {
	return filepath.Join(kube.RepoRoot(t), "api", "manifest", "testdata", "seeds", name)
}

// ready says whether an object's Ready condition is True and its status
// observes its generation.
func ready(gen, observed int64, conds []servingv1.Condition) error {
	if observed != gen {
		return fmt.Errorf("observedGeneration %d, generation %d", observed, gen)
	}
	for _, c := range conds {
		if c.Type == servingv1.ConditionReady {
			if c.Status != corev1.ConditionTrue {
				return fmt.Errorf("Ready %s: %s: %s", c.Status, c.Reason, c.Message)
			}
			return nil
		}
	}
	return fmt.Errorf("no Ready condition")
}

// The seeds' hello world, applied verbatim: the controller derives the
// Configuration, Route, Revision, Deployment and private Service; with
// the pods ready the gateway gets the host and the pods, and every object
// is Ready as Knative shows it. A restarted controller re-serves the same
// config before anything changes and makes no new revision.
func TestHelloWorldEndToEnd(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, stop := e.startController()
	gw := e.connectGateway(c.XDSAddr().String(), "gateway-1")
	e.kubelet(ctx)
	e.apply(seed(t, "000-case1-hello.yaml"))

	key := client.ObjectKey{Namespace: "default", Name: "hello"}
	var svc servingv1.Service
	e.eventually(30*time.Second, "Service hello Ready", func() error {
		if err := e.client.Get(ctx, key, &svc); err != nil {
			return err
		}
		return ready(svc.Generation, svc.Status.ObservedGeneration, svc.Status.Conditions)
	})
	if got := svc.Status.URL.String(); got != "http://hello.default.example.com" {
		t.Errorf("Service url %q, want http://hello.default.example.com", got)
	}
	if svc.Status.LatestCreatedRevisionName != "hello-00001" || svc.Status.LatestReadyRevisionName != "hello-00001" {
		t.Errorf("Service latest created/ready %q/%q, want hello-00001", svc.Status.LatestCreatedRevisionName, svc.Status.LatestReadyRevisionName)
	}
	if tr := svc.Status.Traffic; len(tr) != 1 || tr[0].RevisionName != "hello-00001" || tr[0].Percent == nil || *tr[0].Percent != 100 ||
		tr[0].LatestRevision == nil || !*tr[0].LatestRevision {
		t.Errorf("Service traffic %+v, want 100%% to hello-00001 as the latest revision", tr)
	}
	if svc.Status.Address == nil || svc.Status.Address.URL.String() != "http://hello.default.svc.cluster.local" {
		t.Errorf("Service address %+v, want http://hello.default.svc.cluster.local", svc.Status.Address)
	}

	var cfg servingv1.Configuration
	var rt servingv1.Route
	var rev servingv1.Revision
	e.eventually(10*time.Second, "the derived objects Ready", func() error {
		if err := e.client.Get(ctx, key, &cfg); err != nil {
			return err
		}
		if err := ready(cfg.Generation, cfg.Status.ObservedGeneration, cfg.Status.Conditions); err != nil {
			return fmt.Errorf("Configuration: %w", err)
		}
		if err := e.client.Get(ctx, key, &rt); err != nil {
			return err
		}
		if err := ready(rt.Generation, rt.Status.ObservedGeneration, rt.Status.Conditions); err != nil {
			return fmt.Errorf("Route: %w", err)
		}
		if err := e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "hello-00001"}, &rev); err != nil {
			return err
		}
		if err := ready(rev.Generation, rev.Status.ObservedGeneration, rev.Status.Conditions); err != nil {
			return fmt.Errorf("Revision: %w", err)
		}
		if rev.Status.ActualReplicas == nil || *rev.Status.ActualReplicas != 1 {
			return fmt.Errorf("Revision actualReplicas %v, want 1", rev.Status.ActualReplicas)
		}
		return nil
	})
	for what, refs := range map[string][]string{
		"Configuration": ownerKinds(cfg.OwnerReferences), "Route": ownerKinds(rt.OwnerReferences), "Revision": ownerKinds(rev.OwnerReferences),
	} {
		want := map[string]string{"Configuration": "Service/hello", "Route": "Service/hello", "Revision": "Configuration/hello"}[what]
		if !slices.Equal(refs, []string{want}) {
			t.Errorf("%s owners %v, want %s", what, refs, want)
		}
	}
	if rev.Labels["serving.knative.dev/service"] != "hello" || rev.Labels["serving.knative.dev/configuration"] != "hello" ||
		rev.Labels["serving.knative.dev/configurationGeneration"] != "1" {
		t.Errorf("Revision labels %v", rev.Labels)
	}

	var dep appsv1.Deployment
	if err := e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "hello-00001-deployment"}, &dep); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, v := range dep.Spec.Template.Spec.Containers[0].Env {
		env[v.Name] = v.Value
	}
	for k, v := range map[string]string{"PORT": "8080", "K_SERVICE": "hello", "K_CONFIGURATION": "hello", "K_REVISION": "hello-00001", "TARGET": "World"} {
		if env[k] != v {
			t.Errorf("Deployment env %s=%q, want %q", k, env[k], v)
		}
	}
	e.eventually(10*time.Second, "hello's cluster-local name resolves to the internal gateway", func() error { return routeService(ctx, e, "hello") })
	var priv corev1.Service
	if err := e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "hello-00001-private"}, &priv); err != nil {
		t.Errorf("private Service: %v", err)
	}

	e.eventually(10*time.Second, "the gateway has hello's host and pod", func() error {
		if h := gw.hosts(); !slices.Contains(h, "hello.default.example.com") {
			return fmt.Errorf("hosts %v", h)
		}
		if eps := gw.endpoints("default/hello-00001"); len(eps) != 1 || !strings.HasPrefix(eps[0], "10.0.") || !strings.HasSuffix(eps[0], ".1:8080") {
			return fmt.Errorf("endpoints of default/hello-00001: %v", eps)
		}
		return nil
	})

	// A restart: the new leader serves the same routes at once, and makes
	// no new revision.
	before := gw.hosts()
	stop()
	c2, _ := e.startController()
	gw2 := e.connectGateway(c2.XDSAddr().String(), "gateway-2")
	e.eventually(10*time.Second, "the restarted controller serves the same hosts", func() error {
		if h := gw2.hosts(); !slices.Equal(h, before) {
			return fmt.Errorf("hosts %v, want %v", h, before)
		}
		return nil
	})
	time.Sleep(time.Second) // a few rounds
	var revs servingv1.RevisionList
	if err := e.client.List(ctx, &revs); err != nil {
		t.Fatal(err)
	}
	if len(revs.Items) != 1 || revs.Items[0].Name != "hello-00001" {
		t.Errorf("after the restart: revisions %v, want hello-00001 alone", names(revs.Items))
	}
	if err := e.client.Get(ctx, key, &svc); err != nil {
		t.Fatal(err)
	}
	if err := ready(svc.Generation, svc.Status.ObservedGeneration, svc.Status.Conditions); err != nil {
		t.Errorf("after the restart: Service %v", err)
	}

	// A new template after the restart is revision 2.
	svc.Spec.Template.Spec.Containers[0].Env[0].Value = "Kubernetes"
	if err := e.client.Update(ctx, &svc); err != nil {
		t.Fatal(err)
	}
	e.eventually(30*time.Second, "hello-00002 serves", func() error {
		if err := e.client.Get(ctx, key, &svc); err != nil {
			return err
		}
		if svc.Status.LatestReadyRevisionName != "hello-00002" {
			return fmt.Errorf("latestReady %q", svc.Status.LatestReadyRevisionName)
		}
		return ready(svc.Generation, svc.Status.ObservedGeneration, svc.Status.Conditions)
	})
}

// A scale decision reaches the Deployment's replicas: min-scale 2 (seed
// 004's v3 has minScale 1, maxScale 5) makes 2 replicas.
func TestScaleDecisionSetsReplicas(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.startController()
	e.kubelet(ctx)
	svc := &servingv1.Service{}
	svc.Namespace, svc.Name = "default", "scaled"
	svc.Spec.Template.Annotations = map[string]string{"autoscaling.knative.dev/min-scale": "2"}
	svc.Spec.Template.Spec.Containers = []corev1.Container{{Image: "ghcr.io/knative/helloworld-go"}}
	if err := e.client.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	e.eventually(30*time.Second, "the Deployment runs 2 replicas", func() error {
		var d appsv1.Deployment
		if err := e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "scaled-00001-deployment"}, &d); err != nil {
			return err
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
			return fmt.Errorf("replicas %v", d.Spec.Replicas)
		}
		return nil
	})
	e.eventually(10*time.Second, "the Revision reports 2 desired and actual", func() error {
		var rev servingv1.Revision
		if err := e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "scaled-00001"}, &rev); err != nil {
			return err
		}
		if rev.Status.DesiredReplicas == nil || *rev.Status.DesiredReplicas != 2 || rev.Status.ActualReplicas == nil || *rev.Status.ActualReplicas != 2 {
			return fmt.Errorf("desired %v actual %v", rev.Status.DesiredReplicas, rev.Status.ActualReplicas)
		}
		return nil
	})
}

// Every v1 seed YAML, applied verbatim in order, ends Ready, with the
// revisions and traffic the tutorials show.
func TestSeedsApplyVerbatim(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, _ := e.startController()
	e.connectGateway(c.XDSAddr().String(), "gateway-1")
	e.kubelet(ctx)
	for _, f := range []string{
		"000-case1-hello.yaml", "000-case2-hello-target.yaml", "000-case3-hello-target-utilization-repaired.yaml",
		"000-case4-hello-traffic.yaml", "002-helloworld-go-repaired.yaml",
		"004-hello.yaml", "004-hello-knative-v2.yaml", "004-hello-knative-v3.yaml",
	} {
		objs := e.apply(seed(t, f))
		for _, o := range objs {
			if o.GetObjectKind().GroupVersionKind().Kind != servingv1.KindService && !isService(o) {
				continue
			}
			key := client.ObjectKeyFromObject(o)
			e.eventually(30*time.Second, f+": Service "+key.Name+" Ready", func() error {
				var svc servingv1.Service
				if err := e.client.Get(ctx, key, &svc); err != nil {
					return err
				}
				return ready(svc.Generation, svc.Status.ObservedGeneration, svc.Status.Conditions)
			})
		}
	}
	var svc servingv1.Service
	if err := e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "hello"}, &svc); err != nil {
		t.Fatal(err)
	}
	if svc.Status.LatestReadyRevisionName != "hello-knative-v3" {
		t.Errorf("hello latestReady %q, want hello-knative-v3", svc.Status.LatestReadyRevisionName)
	}
	var split []string
	for _, tr := range svc.Status.Traffic {
		split = append(split, fmt.Sprintf("%s=%d tag=%s", tr.RevisionName, *tr.Percent, tr.Tag))
	}
	t.Logf("hello traffic: %s", strings.Join(split, ", "))
}

func isService(o client.Object) bool { _, ok := o.(*servingv1.Service); return ok }

func ownerKinds(refs []metav1.OwnerReference) []string {
	var out []string
	for _, r := range refs {
		out = append(out, r.Kind+"/"+r.Name)
	}
	return out
}

func names(revs []servingv1.Revision) []string {
	var out []string
	for _, r := range revs {
		out = append(out, r.Name)
	}
	return out
}

// routeService is the check of a Route's ExternalName Service.
func routeService(ctx context.Context, e *env, name string) error {
	var s corev1.Service
	if err := e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, &s); err != nil {
		return err
	}
	if s.Spec.Type != corev1.ServiceTypeExternalName || s.Spec.ExternalName != "kgate-gateway-internal.kgate-system.svc.cluster.local" {
		return fmt.Errorf("Service %s: type %s externalName %q", name, s.Spec.Type, s.Spec.ExternalName)
	}
	return nil
}
