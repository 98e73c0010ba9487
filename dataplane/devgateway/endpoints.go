package devgateway

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
)

// host is one upstream endpoint. It outlives the assignment it came in:
// an update that keeps the address keeps the host, and with it the count
// of requests on it, which least-request balancing reads.
type host struct {
	addr     string
	inFlight atomic.Int64
}

// endpointSet is a compiled ClusterLoadAssignment: the hosts a cluster
// balances over. It never changes once built.
type endpointSet struct {
	hosts []*host
}

// compileAssignment reads the hosts Envoy would send requests to: those
// not marked unhealthy, draining or timed out, in the highest priority
// (lowest number) that has any. prev supplies the hosts to keep.
func compileAssignment(cla *endpointv3.ClusterLoadAssignment, prev *endpointSet) (*endpointSet, error) {
	if err := onlyFields(cla, "cluster_name", "endpoints", "policy"); err != nil {
		return nil, err
	}
	if err := onlyFields(cla.GetPolicy(), "overprovisioning_factor", "weighted_priority_health"); err != nil {
		return nil, err
	}
	known := map[string]*host{}
	if prev != nil {
		for _, h := range prev.hosts {
			known[h.addr] = h
		}
	}
	byPriority := map[uint32][]*host{}
	for _, locality := range cla.GetEndpoints() {
		// Locality weights matter only to locality-weighted balancing,
		// which the gateway does not implement; they are read and ignored.
		if err := onlyFields(locality, "locality", "lb_endpoints", "load_balancing_weight", "priority", "metadata"); err != nil {
			return nil, err
		}
		for _, lb := range locality.GetLbEndpoints() {
			addr, healthy, err := endpointAddress(lb)
			if err != nil {
				return nil, err
			}
			if !healthy {
				continue
			}
			h, ok := known[addr]
			if !ok {
				h = &host{addr: addr}
				known[addr] = h
			}
			byPriority[locality.GetPriority()] = append(byPriority[locality.GetPriority()], h)
		}
	}
	set := &endpointSet{}
	best := uint32(0)
	for p, hosts := range byPriority {
		if set.hosts == nil || p < best {
			set.hosts, best = hosts, p
		}
	}
	return set, nil
}

// endpointAddress reads an endpoint's "host:port" and whether Envoy would
// send it requests.
func endpointAddress(lb *endpointv3.LbEndpoint) (addr string, healthy bool, err error) {
	// Endpoint weights are ignored: balancing treats hosts alike.
	if err := onlyFields(lb, "endpoint", "health_status", "metadata", "load_balancing_weight"); err != nil {
		return "", false, err
	}
	ep := lb.GetEndpoint()
	if ep == nil {
		return "", false, errors.New("an lb endpoint has no endpoint")
	}
	if err := onlyFields(ep, "address", "hostname", "health_check_config"); err != nil {
		return "", false, err
	}
	sa := ep.GetAddress().GetSocketAddress()
	if err := onlyFields(sa, "address", "port_value", "protocol"); err != nil {
		return "", false, err
	}
	if sa == nil || sa.GetAddress() == "" || sa.GetProtocol() != corev3.SocketAddress_TCP {
		return "", false, errors.New("an endpoint has no TCP socket address")
	}
	port, ok := sa.GetPortSpecifier().(*corev3.SocketAddress_PortValue)
	if !ok {
		return "", false, fmt.Errorf("endpoint %s has no port number", sa.GetAddress())
	}
	switch lb.GetHealthStatus() {
	case corev3.HealthStatus_UNHEALTHY, corev3.HealthStatus_DRAINING, corev3.HealthStatus_TIMEOUT:
		healthy = false
	default:
		healthy = true
	}
	return net.JoinHostPort(sa.GetAddress(), strconv.FormatUint(uint64(port.PortValue), 10)), healthy, nil
}
