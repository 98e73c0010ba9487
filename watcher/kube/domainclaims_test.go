package kube

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	networkingv1alpha1 "github.com/kgate/kgate/api/networking/v1alpha1"
	"github.com/kgate/kgate/watcher/knative"
)

// kgate creates the claims its mappings hold, deletes its own once none
// does, and never touches an administrator's.
func TestPublishDomainClaims(t *testing.T) {
	claim := func(domain, ns string, ours bool) *networkingv1alpha1.ClusterDomainClaim {
		o := &networkingv1alpha1.ClusterDomainClaim{ObjectMeta: metav1.ObjectMeta{Name: domain, UID: "uid-" + "domain"}, Spec: networkingv1alpha1.ClusterDomainClaimSpec{Namespace: ns}}
		if ours {
			o.Labels = map[string]string{LabelManagedBy: managedBy}
		}
		return o
	}
	tests := []struct {
		name   string
		have   []*networkingv1alpha1.ClusterDomainClaim
		wanted []knative.DomainClaim
		writes []string
	}{
		{name: "a new claim is created", wanted: []knative.DomainClaim{{Domain: "a.example.org", Namespace: "x"}},
			writes: []string{"ClusterDomainClaim/a.example.org"}},
		{name: "an existing claim is left alone", have: []*networkingv1alpha1.ClusterDomainClaim{claim("a.example.org", "x", true)},
			wanted: []knative.DomainClaim{{Domain: "a.example.org", Namespace: "x"}}},
		{name: "kgate's claim no mapping holds goes", have: []*networkingv1alpha1.ClusterDomainClaim{claim("a.example.org", "x", true)},
			writes: []string{"ClusterDomainClaim/a.example.org"}},
		{name: "an administrator's claim stays", have: []*networkingv1alpha1.ClusterDomainClaim{claim("a.example.org", "x", false)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newTestController(t)
			s := &snapshot{claims: map[string]*networkingv1alpha1.ClusterDomainClaim{}}
			for _, o := range tt.have {
				s.claims[o.Name] = o
			}
			c.publishDomainClaims(s, &knative.Result{DomainClaims: tt.wanted})
			if got := queued(c); !slices.Equal(got, tt.writes) {
				t.Errorf("writes %v, want %v", got, tt.writes)
			}
			flush(t, c)
		})
	}
}
