package kube

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	netv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"
	"knative.dev/pkg/apis"

	"github.com/kgate/kgate/watcher/kingress"
)

// A KIngress's status, as Knative's ingress implementations set it: Ready
// once its routes are served by every gateway that counts, with the
// gateways' Services as load balancers; a status that does not change is
// not rewritten.
func TestIngressStatus(t *testing.T) {
	lb := [2]netv1alpha1.LoadBalancerIngressStatus{
		{DomainInternal: "kgate-gateway.kgate-system.svc.cluster.local"},
		{DomainInternal: "kgate-gateway-internal.kgate-system.svc.cluster.local"},
	}
	tests := []struct {
		name                 string
		out                  kingress.Outcome
		inModel, hold        bool
		ready, lbReady, netw corev1.ConditionStatus
		reason               string
	}{
		{name: "served by every gateway", out: kingress.Outcome{Configured: true}, inModel: true,
			ready: "True", lbReady: "True", netw: "True"},
		{name: "a gateway has not applied it", out: kingress.Outcome{Configured: true}, inModel: true, hold: true,
			ready: "Unknown", lbReady: "Unknown", netw: "True"},
		{name: "cannot be served", out: kingress.Outcome{Reason: "ServiceNotFound", Message: `service "default/nothing" does not exist`},
			ready: "False", lbReady: "False", netw: "Unknown", reason: "ServiceNotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ing := &netv1alpha1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hello", Generation: 3}}
			st := ingressStatus(ing, tt.out, tt.inModel, tt.hold, lb)
			if st.ObservedGeneration != 3 {
				t.Errorf("observedGeneration %d, want 3", st.ObservedGeneration)
			}
			for typ, want := range map[apis.ConditionType]corev1.ConditionStatus{
				netv1alpha1.IngressConditionReady: tt.ready, netv1alpha1.IngressConditionLoadBalancerReady: tt.lbReady,
				netv1alpha1.IngressConditionNetworkConfigured: tt.netw,
			} {
				if c := st.GetCondition(typ); c == nil || c.Status != want {
					t.Errorf("%s %+v, want %s", typ, c, want)
				}
			}
			if c := st.GetCondition(netv1alpha1.IngressConditionReady); tt.reason != "" && (c.Reason != tt.reason || c.Message != tt.out.Message) {
				t.Errorf("Ready %s %q, want the translation's reason and message", c.Reason, c.Message)
			}
			if tt.lbReady == "True" {
				if st.PublicLoadBalancer == nil || len(st.PublicLoadBalancer.Ingress) != 1 || st.PublicLoadBalancer.Ingress[0] != lb[0] ||
					st.PrivateLoadBalancer == nil || len(st.PrivateLoadBalancer.Ingress) != 1 || st.PrivateLoadBalancer.Ingress[0] != lb[1] {
					t.Errorf("load balancers %+v %+v, want the gateways' Services", st.PublicLoadBalancer, st.PrivateLoadBalancer)
				}
			}
			// The next round, a moment later, changes nothing: no write.
			ing.Status = st
			time.Sleep(10 * time.Millisecond)
			if again := ingressStatus(ing, tt.out, tt.inModel, tt.hold, lb); !equality.Semantic.DeepEqual(again, st) {
				t.Errorf("an unchanged Ingress's status changed:\n%+v\nwas\n%+v", again, st)
			}
		})
	}
}
