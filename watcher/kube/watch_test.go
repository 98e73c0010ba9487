package kube

import (
	"fmt"
	"slices"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/autoscale"
	"github.com/kgate/kgate/autoscale/loop"
	deploykube "github.com/kgate/kgate/deploy/kube"
	"github.com/kgate/kgate/translator/model"
)

// revisionSlice is an EndpointSlice of a revision's private Service, as
// the EndpointSlice controller writes it, with one endpoint per address.
func revisionSlice(name, rev string, ready bool, addrs ...string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{
			deploykube.LabelRevision: rev, deploykube.LabelServiceType: deploykube.ServiceTypePrivate,
			discoveryv1.LabelServiceName: rev + "-private",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: new(deploykube.PortNameHTTP), Port: new(int32(8080))}},
	}
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{a}, Conditions: discoveryv1.EndpointConditions{Ready: new(ready)}})
	}
	return s
}

// signalled says whether ch holds a signal, and takes it.
func signalled(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestSliceChanged(t *testing.T) {
	const rev = "default/hello-00001"
	tests := []struct {
		name string
		// stored are the slices the API server holds; before were handed
		// to the scaler earlier.
		stored, before []*discoveryv1.EndpointSlice
		// event is the informer's object: a slice or a tombstone.
		event any
		// ready are the revision's ready endpoints then; round says a
		// round is asked for, readied that the revision is submitted as
		// ready to the pipeline.
		ready          []string
		round, readied bool
	}{
		{
			name:   "a revision's pod becomes ready: its endpoints, a round, and the revision ready",
			stored: []*discoveryv1.EndpointSlice{revisionSlice("a", "hello-00001", true, "10.0.0.1")},
			event:  revisionSlice("a", "hello-00001", true, "10.0.0.1"),
			ready:  []string{"10.0.0.1:8080"}, round: true, readied: true,
		},
		{
			name: "every slice of the revision counts, not only the changed one",
			stored: []*discoveryv1.EndpointSlice{revisionSlice("a", "hello-00001", true, "10.0.0.1"),
				revisionSlice("b", "hello-00001", true, "10.0.0.2")},
			event: revisionSlice("b", "hello-00001", true, "10.0.0.2"),
			ready: []string{"10.0.0.1:8080", "10.0.0.2:8080"}, round: true, readied: true,
		},
		{
			name:   "a pod not ready yet: nothing changes",
			stored: []*discoveryv1.EndpointSlice{revisionSlice("a", "hello-00001", false, "10.0.0.1")},
			event:  revisionSlice("a", "hello-00001", false, "10.0.0.1"),
		},
		{
			name:   "the same ready pods again: nothing changes",
			stored: []*discoveryv1.EndpointSlice{revisionSlice("a", "hello-00001", true, "10.0.0.1")},
			before: []*discoveryv1.EndpointSlice{revisionSlice("a", "hello-00001", true, "10.0.0.1")},
			event:  revisionSlice("a", "hello-00001", true, "10.0.0.1"),
			ready:  []string{"10.0.0.1:8080"},
		},
		{
			name:   "the last slice deleted (a tombstone): no endpoints, and a round",
			before: []*discoveryv1.EndpointSlice{revisionSlice("a", "hello-00001", true, "10.0.0.1")},
			event:  toolscache.DeletedFinalStateUnknown{Key: "default/a", Obj: revisionSlice("a", "hello-00001", true, "10.0.0.1")},
			round:  true,
		},
		{
			name: "a slice of another Service is ignored",
			event: &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-x",
				Labels: map[string]string{discoveryv1.LabelServiceName: "web"}}},
		},
		{name: "an object that is not a slice is ignored", event: "not a slice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var objs []client.Object
			for _, s := range tt.stored {
				objs = append(objs, s)
			}
			c, _ := newTestController(t, objs...)
			if tt.before != nil {
				c.scaler.SetSlices(rev, derefs(tt.before))
			}
			c.sliceChanged(t.Context(), tt.event)

			var ready []string
			for _, e := range c.scaler.Ready(rev) {
				ready = append(ready, fmt.Sprintf("%s:%d", e.Address, e.Port))
			}
			if !slices.Equal(ready, tt.ready) {
				t.Errorf("ready endpoints %v, want %v", ready, tt.ready)
			}
			if got := signalled(c.kick); got != tt.round {
				t.Errorf("a round asked for: %v, want %v", got, tt.round)
			}
			if got := signalled(c.pipe.Queued()); got != tt.readied {
				t.Errorf("a change queued in the pipeline: %v, want %v", got, tt.readied)
			}
		})
	}
}

func derefs(ss []*discoveryv1.EndpointSlice) []discoveryv1.EndpointSlice {
	out := make([]discoveryv1.EndpointSlice, len(ss))
	for i, s := range ss {
		out[i] = *s
	}
	return out
}

func TestActivatorSlicesReachTheAutoscaler(t *testing.T) {
	act := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kgate-system", Name: "kgate-activator-x",
			Labels: map[string]string{discoveryv1.LabelServiceName: "kgate-activator"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: new("http"), Port: new(int32(8012))}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.1.0.1"}}},
	}
	c, _ := newTestController(t, act)
	const rev = "default/hello-00001"
	if errs := c.loop.Configure(t.Context(), time.Now(), config.DefaultAutoscaler(), []loop.Revision{{Key: rev}}); len(errs) > 0 {
		t.Fatal(errs)
	}
	// With no activators a revision is served by its pods.
	if m := c.loop.Modes()[rev]; m != model.Serve {
		t.Fatalf("mode %q before any activator, want Serve", m)
	}
	c.sliceChanged(t.Context(), act)
	// A revision with no ready pod goes to the activators.
	if m := c.loop.Modes()[rev]; m != model.Proxy {
		t.Errorf("mode %q once an activator is ready, want Proxy", m)
	}
}

func TestDecisionAtZeroMakesTheRevisionReady(t *testing.T) {
	tests := []struct {
		replicas int32
		readied  bool
	}{
		{replicas: 0, readied: true},
		{replicas: 2, readied: false},
	}
	for _, tt := range tests {
		c, _ := newTestController(t)
		c.decided(autoscale.Decision{Revision: "default/hello-00001", Replicas: tt.replicas})
		if !signalled(c.kick) {
			t.Errorf("a decision of %d replicas asks for no round", tt.replicas)
		}
		if got := signalled(c.pipe.Queued()); got != tt.readied {
			t.Errorf("a decision of %d replicas submits the revision as ready: %v, want %v", tt.replicas, got, tt.readied)
		}
	}
}
