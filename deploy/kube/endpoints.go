package kube

import (
	"cmp"
	"net/netip"
	"slices"

	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/kgate/kgate/translator/model"
)

// Endpoints are the ready addresses of a revision's EndpointSlices, each
// with its slice's serving port (the one named http, h2c or http2, else the
// first): deduplicated across slices, as an address may be in two slices
// while the EndpointSlice controller moves it, and sorted, IPv4 before
// IPv6, so that equal sets compare equal. An endpoint is ready when its
// ready condition is true or unset (the API's "unknown, assume ready") and
// it is not terminating: a terminating pod must get no new requests even
// while it still passes its probe. FQDN slices, slices without a port and
// unparsable addresses are skipped. nil when none is ready.
func Endpoints(endpointSlices []discoveryv1.EndpointSlice) []model.Endpoint {
	type key struct {
		addr netip.Addr
		port uint32
	}
	seen := map[key]bool{}
	var keys []key
	for i := range endpointSlices {
		s := &endpointSlices[i]
		if s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		port, ok := slicePort(s)
		if !ok {
			continue
		}
		for j := range s.Endpoints {
			e := &s.Endpoints[j]
			if !ready(e.Conditions) {
				continue
			}
			for _, a := range e.Addresses {
				addr, err := netip.ParseAddr(a)
				if err != nil {
					continue
				}
				k := key{addr.Unmap(), port}
				if !seen[k] {
					seen[k] = true
					keys = append(keys, k)
				}
			}
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := a.addr.Compare(b.addr); c != 0 {
			return c
		}
		return cmp.Compare(a.port, b.port)
	})
	eps := make([]model.Endpoint, len(keys))
	for i, k := range keys {
		eps[i] = model.Endpoint{Address: k.addr.String(), Port: k.port}
	}
	return eps
}

// ready: ready true or unset, and not terminating.
func ready(c discoveryv1.EndpointConditions) bool {
	return (c.Ready == nil || *c.Ready) && (c.Terminating == nil || !*c.Terminating)
}

// slicePort is the slice's serving port: the one named http, h2c or http2
// (the private Service's port names, Knative's included), else the first.
// A port without a number means "all ports" and is of no use to EDS.
func slicePort(s *discoveryv1.EndpointSlice) (uint32, bool) {
	var chosen *discoveryv1.EndpointPort
	for i := range s.Ports {
		p := &s.Ports[i]
		if p.Name == nil {
			continue
		}
		if n := *p.Name; n == PortNameHTTP || n == PortNameH2C || n == "http2" {
			chosen = p
			break
		}
	}
	if chosen == nil && len(s.Ports) != 0 {
		chosen = &s.Ports[0]
	}
	if chosen == nil || chosen.Port == nil || *chosen.Port <= 0 {
		return 0, false
	}
	return uint32(*chosen.Port), true
}

// SliceRevision is the key ("namespace/name") of the revision an
// EndpointSlice of a private Service belongs to, from the revision label
// the EndpointSlice controller copies from the Service; ok is false for
// other slices. The controller's informer uses it to route slices to
// Scaler.SetSlices.
func SliceRevision(s *discoveryv1.EndpointSlice) (key string, ok bool) {
	if s.Labels[LabelServiceType] != ServiceTypePrivate {
		return "", false
	}
	rev := s.Labels[LabelRevision]
	if rev == "" || s.Namespace == "" {
		return "", false
	}
	return s.Namespace + "/" + rev, true
}
