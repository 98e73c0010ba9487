package kubemode

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	netv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kubesource "github.com/kgate/kgate/watcher/kube"
)

// TestIngressAtScale is the KIngress mode's benchmark behind
// docs/performance.md: KGATE_BENCH_INGRESSES KIngresses (say 1000), each
// with its revision's Service and EndpointSlice, created against a real
// API server with `kgate ingress` as its own process and a gateway
// connected. It prints, per KIngress, the time from its create to its host
// at the gateway and to its status Ready (p50/p99), and the process's
// memory: the figures beside the serving mode's (TestControllerAtScale).
func TestIngressAtScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("KGATE_BENCH_INGRESSES"))
	if n <= 0 {
		t.Skip("set KGATE_BENCH_INGRESSES=1000 to run the KIngress-mode benchmark")
	}
	e := newEnv(t)
	ctx := context.Background()
	kn := knativeClient(t, e)
	installKnativeIngressCRD(t, e)
	if err := e.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "knative-serving"}}); err != nil {
		t.Fatal(err)
	}
	bin, kubeconfig := buildKgate(t), writeKubeconfig(t, e)
	ctl := startMode(t, bin, kubeconfig, "ingress")
	gw := watchHosts(t, e, ctl.xds)

	name := func(i int) string { return fmt.Sprintf("bench-%05d", i) }
	created := make([]time.Time, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	start := time.Now()
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			rev := name(i) + "-00001"
			svc := &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: rev},
				// Headless: the test API server's service range holds
				// a few hundred cluster IPs, and kgate reads only the
				// Service's ports and its EndpointSlices.
				Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8012)}}},
			}
			slice := endpointSlice(rev, fmt.Sprintf("10.1.%d.%d", i/250, i%250+1))
			ing := knativeIngress(name(i), kubesource.ClassName)
			for j := range ing.Spec.Rules {
				ing.Spec.Rules[j].HTTP.Paths[0].Splits[0].ServiceName = rev
			}
			for _, o := range []client.Object{svc, slice} {
				if err := e.client.Create(ctx, o); err != nil {
					t.Errorf("creating %s: %v", o.GetName(), err)
				}
			}
			created[i] = time.Now()
			if err := kn.Create(ctx, ing); err != nil {
				t.Errorf("creating Ingress %s: %v", ing.Name, err)
			}
		})
	}
	wg.Wait()
	createdAll := time.Since(start)

	// Ready times, polled: the first list that shows an Ingress Ready.
	readyAt := make([]time.Time, n)
	e.eventually(10*time.Minute, "every KIngress Ready", func() error {
		var l netv1alpha1.IngressList
		if err := kn.List(ctx, &l, client.InNamespace("default")); err != nil {
			return err
		}
		now := time.Now()
		notReady := 0
		for i := range l.Items {
			ing := &l.Items[i]
			var k int
			if _, err := fmt.Sscanf(ing.Name, "bench-%05d", &k); err != nil || k >= n {
				continue
			}
			if !ing.IsReady() {
				notReady++
				continue
			}
			if readyAt[k].IsZero() {
				readyAt[k] = now
			}
		}
		if notReady > 0 || len(l.Items) < n {
			time.Sleep(50 * time.Millisecond)
			return fmt.Errorf("%d of %d not Ready", notReady+n-len(l.Items), n)
		}
		return nil
	})
	allReady := time.Since(start)
	var toHost, toReady []time.Duration
	for i := range n {
		host := name(i) + ".default.example.com"
		if seen, ok := gw.seen(host); ok {
			toHost = append(toHost, max(0, seen.Sub(created[i])))
		} else {
			t.Errorf("the gateway never held %s", host)
		}
		toReady = append(toReady, max(0, readyAt[i].Sub(created[i])))
	}
	slices.Sort(toHost)
	slices.Sort(toReady)
	rss, peak := ctl.memory(t)
	pct := func(d []time.Duration, p float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		return d[min(len(d)-1, int(float64(len(d))*p))].Round(time.Millisecond)
	}
	t.Logf("KIngresses: %d (with a Service and an EndpointSlice each), created in %v (16 at a time)", n, createdAll.Round(time.Millisecond))
	t.Logf("create → host in the gateway's xDS snapshot: p50 %v, p90 %v, p99 %v", pct(toHost, 0.5), pct(toHost, 0.9), pct(toHost, 0.99))
	t.Logf("create → status Ready (seen by a list every ~50 ms): p50 %v, p90 %v, p99 %v", pct(toReady, 0.5), pct(toReady, 0.9), pct(toReady, 0.99))
	t.Logf("first create → every KIngress Ready: %v", allReady.Round(time.Millisecond))
	t.Logf("kgate ingress memory: RSS %d MiB, peak %d MiB", rss>>20, peak>>20)
}
