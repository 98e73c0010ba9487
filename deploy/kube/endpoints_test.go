package kube

import (
	"slices"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kgate/kgate/translator/model"
)

// slice is an EndpointSlice of the given type and ports with endpoints.
func slice(addrType discoveryv1.AddressType, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) discoveryv1.EndpointSlice {
	return discoveryv1.EndpointSlice{AddressType: addrType, Ports: ports, Endpoints: eps}
}

func port(name string, n int32) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: new(name), Port: new(n)}
}

// ep is an endpoint; ready and terminating nil leave the condition unset.
func ep(ready, terminating *bool, addrs ...string) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: addrs, Conditions: discoveryv1.EndpointConditions{Ready: ready, Terminating: terminating}}
}

var (
	yes = new(true)
	no  = new(false)
)

func TestEndpoints(t *testing.T) {
	http := []discoveryv1.EndpointPort{port("http", 8080)}
	for _, tc := range []struct {
		name   string
		slices []discoveryv1.EndpointSlice
		want   []model.Endpoint
	}{
		{name: "none"},
		{
			name: "ready, unset and not ready",
			slices: []discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4, http,
				ep(yes, no, "10.0.0.2"),
				ep(nil, nil, "10.0.0.1"), // unknown is taken as ready
				ep(no, no, "10.0.0.3"),
			)},
			want: []model.Endpoint{{Address: "10.0.0.1", Port: 8080}, {Address: "10.0.0.2", Port: 8080}},
		},
		{
			name: "terminating is not ready, even when it passes its probe",
			slices: []discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4, http,
				ep(yes, yes, "10.0.0.4"),
				ep(no, yes, "10.0.0.5"),
				ep(yes, nil, "10.0.0.6"),
			)},
			want: []model.Endpoint{{Address: "10.0.0.6", Port: 8080}},
		},
		{
			name: "several slices, duplicates, numeric order",
			slices: []discoveryv1.EndpointSlice{
				slice(discoveryv1.AddressTypeIPv4, http, ep(yes, nil, "10.0.0.10"), ep(yes, nil, "10.0.0.9")),
				slice(discoveryv1.AddressTypeIPv4, http, ep(yes, nil, "10.0.0.10"), ep(yes, nil, "10.0.0.2", "10.0.0.2")),
			},
			want: []model.Endpoint{{Address: "10.0.0.2", Port: 8080}, {Address: "10.0.0.9", Port: 8080}, {Address: "10.0.0.10", Port: 8080}},
		},
		{
			name: "IPv4 and IPv6, canonical, IPv4 first; FQDN skipped",
			slices: []discoveryv1.EndpointSlice{
				slice(discoveryv1.AddressTypeIPv6, http, ep(yes, nil, "fd00:0:0::b"), ep(yes, nil, "fd00::a")),
				slice(discoveryv1.AddressTypeIPv4, http, ep(yes, nil, "10.0.0.1")),
				slice(discoveryv1.AddressTypeFQDN, http, ep(yes, nil, "pod.example.com")),
			},
			want: []model.Endpoint{{Address: "10.0.0.1", Port: 8080}, {Address: "fd00::a", Port: 8080}, {Address: "fd00::b", Port: 8080}},
		},
		{
			name: "the http or h2c port, else the first; none, no endpoints",
			slices: []discoveryv1.EndpointSlice{
				slice(discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("metrics", 9090), port("h2c", 8081)}, ep(yes, nil, "10.0.0.1")),
				slice(discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("other", 7070), port("more", 7071)}, ep(yes, nil, "10.0.0.2")),
				slice(discoveryv1.AddressTypeIPv4, nil, ep(yes, nil, "10.0.0.3")),
				slice(discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{{Name: new("http")}}, ep(yes, nil, "10.0.0.4")),
			},
			want: []model.Endpoint{{Address: "10.0.0.1", Port: 8081}, {Address: "10.0.0.2", Port: 7070}},
		},
		{
			name: "same address on two ports is two endpoints",
			slices: []discoveryv1.EndpointSlice{
				slice(discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("http", 8080)}, ep(yes, nil, "10.0.0.1")),
				slice(discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("http", 8081)}, ep(yes, nil, "10.0.0.1")),
			},
			want: []model.Endpoint{{Address: "10.0.0.1", Port: 8080}, {Address: "10.0.0.1", Port: 8081}},
		},
		{
			name:   "unparsable addresses are skipped",
			slices: []discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4, http, ep(yes, nil, "not-an-ip", "10.0.0.1"))},
			want:   []model.Endpoint{{Address: "10.0.0.1", Port: 8080}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Endpoints(tc.slices)
			if !slices.Equal(got, tc.want) {
				t.Errorf("Endpoints = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSliceRevision(t *testing.T) {
	s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hello-00001-private-x7k2p", Labels: map[string]string{
		LabelRevision:                "hello-00001",
		LabelServiceType:             ServiceTypePrivate,
		discoveryv1.LabelServiceName: "hello-00001-private",
	}}}
	if key, ok := SliceRevision(s); !ok || key != "default/hello-00001" {
		t.Errorf("SliceRevision = %q, %v; want default/hello-00001, true", key, ok)
	}
	delete(s.Labels, LabelServiceType)
	if key, ok := SliceRevision(s); ok {
		t.Errorf("SliceRevision of a slice not of a private Service = %q, true", key)
	}
}

func TestSplitKey(t *testing.T) {
	if ns, name, err := SplitKey("default/hello-00001"); err != nil || ns != "default" || name != "hello-00001" {
		t.Errorf("SplitKey = %q %q %v", ns, name, err)
	}
	for _, bad := range []string{"", "hello", "/hello", "default/", "a/b/c"} {
		if _, _, err := SplitKey(bad); err == nil {
			t.Errorf("SplitKey(%q) is no error", bad)
		}
	}
}
