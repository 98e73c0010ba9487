package translator

import (
	"cmp"
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/kgate/kgate/translator/model"
)

// Endpoints returns one revision's two ClusterLoadAssignments: "<ns>/<rev>",
// the activators in Proxy mode and the pods otherwise, and "<ns>/<rev>/pods",
// always the pods (what the activator balances over).
func Endpoints(ep model.RevisionEndpoints, opts Options) Output {
	serving := ep.Pods
	if ep.Mode == model.Proxy {
		serving = ep.Activators
	}
	return Output{Endpoints: []*endpointv3.ClusterLoadAssignment{
		loadAssignment(ClusterName(ep.Revision), serving),
		loadAssignment(PodsName(ep.Revision), ep.Pods),
	}}
}

// loadAssignment puts every endpoint in one locality. An empty list gives a
// CLA without localities: the cluster exists and has no hosts.
func loadAssignment(name string, eps []model.Endpoint) *endpointv3.ClusterLoadAssignment {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: name}
	if len(eps) == 0 {
		return cla
	}
	sorted := slices.Clone(eps)
	slices.SortFunc(sorted, func(a, b model.Endpoint) int {
		return cmp.Or(cmp.Compare(a.Address, b.Address), cmp.Compare(a.Port, b.Port))
	})
	sorted = slices.Compact(sorted)
	lbs := make([]*endpointv3.LbEndpoint, 0, len(sorted))
	for _, e := range sorted {
		lbs = append(lbs, &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{
			Endpoint: &endpointv3.Endpoint{Address: socketAddress(e.Address, e.Port)},
		}})
	}
	cla.Endpoints = []*endpointv3.LocalityLbEndpoints{{
		// grpc-go NACKs a locality without an ID or without a weight.
		Locality:            &corev3.Locality{Zone: Zone},
		LoadBalancingWeight: wrapperspb.UInt32(1),
		LbEndpoints:         lbs,
	}}
	return cla
}
