package devgateway

import (
	"fmt"
	"sync/atomic"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
)

// defaultChoices is how many hosts Envoy's LEAST_REQUEST compares.
const defaultChoices = 2

// cluster is a compiled Cluster. Its configuration never changes once
// built; what must outlive an update of the same cluster (connections,
// the round-robin turn, load counts) it takes over from its predecessor
// in adopt.
type cluster struct {
	name string
	// edsName is the ClusterLoadAssignment to fetch, for an EDS cluster;
	// static holds the hosts of a STATIC one.
	edsName string
	static  *endpointSet
	policy  clusterv3.Cluster_LbPolicy
	choices int
	upCfg   upstreamConfig

	// Set by adopt.
	up   *upstream
	turn *atomic.Uint64
	load *loadCounter
}

func compileCluster(c *clusterv3.Cluster) (*cluster, error) {
	// circuit_breakers are read and not enforced (see the package doc);
	// lrs_server is read and ignored: like Envoy, the gateway reports
	// whatever cluster the LRS server asks for; so is
	// per_connection_buffer_limit_bytes: Go's transport buffers little.
	if err := onlyFields(c, "name", "alt_stat_name", "type", "eds_cluster_config", "load_assignment", "connect_timeout",
		"lb_policy", "least_request_lb_config", "circuit_breakers", "typed_extension_protocol_options",
		"metadata", "lrs_server", "per_connection_buffer_limit_bytes",
		// DNS clusters: the refresh settings are read and ignored, as the
		// gateway resolves the name for each new connection (see
		// resolvingDial).
		"dns_lookup_family", "dns_refresh_rate", "respect_dns_ttl"); err != nil {
		return nil, err
	}
	cl := &cluster{name: c.GetName(), policy: c.GetLbPolicy(), choices: defaultChoices}
	switch c.GetType() {
	case clusterv3.Cluster_EDS:
		eds := c.GetEdsClusterConfig()
		if err := onlyFields(eds, "eds_config", "service_name"); err != nil {
			return nil, err
		}
		cl.edsName = eds.GetServiceName()
		if cl.edsName == "" {
			cl.edsName = c.GetName()
		}
	case clusterv3.Cluster_STATIC:
		set, err := compileAssignment(c.GetLoadAssignment(), nil)
		if err != nil {
			return nil, fmt.Errorf("load assignment: %w", err)
		}
		cl.static = set
	case clusterv3.Cluster_LOGICAL_DNS:
		// One endpoint, a DNS name (or IP) and port, as Envoy requires;
		// connections go to the first address the name resolves to.
		set, err := compileAssignment(c.GetLoadAssignment(), nil)
		if err != nil {
			return nil, fmt.Errorf("load assignment: %w", err)
		}
		if n := countEndpoints(c.GetLoadAssignment()); n != 1 {
			return nil, fmt.Errorf("a LOGICAL_DNS cluster has exactly one endpoint, not %d", n)
		}
		cl.static = set
	default:
		return nil, fmt.Errorf("cluster type %s is not supported by the dev gateway", c.GetType())
	}
	switch c.GetLbPolicy() {
	case clusterv3.Cluster_ROUND_ROBIN, clusterv3.Cluster_RANDOM:
	case clusterv3.Cluster_LEAST_REQUEST:
		lr := c.GetLeastRequestLbConfig()
		if err := onlyFields(lr, "choice_count"); err != nil {
			return nil, err
		}
		if n := lr.GetChoiceCount(); n != nil {
			cl.choices = max(int(n.GetValue()), 1)
		}
	default:
		return nil, fmt.Errorf("lb_policy %s is not supported by the dev gateway", c.GetLbPolicy())
	}
	var err error
	if cl.upCfg, err = compileUpstreamConfig(c); err != nil {
		return nil, err
	}
	if c.GetType() == clusterv3.Cluster_LOGICAL_DNS {
		cl.upCfg.resolve = true
		cl.upCfg.dnsFamily = c.GetDnsLookupFamily()
	}
	return cl, nil
}

// countEndpoints counts the lb endpoints of an assignment, whatever their
// health.
func countEndpoints(cla *endpointv3.ClusterLoadAssignment) int {
	n := 0
	for _, l := range cla.GetEndpoints() {
		n += len(l.GetLbEndpoints())
	}
	return n
}

// adopt takes over what prev, the cluster's previous version (nil if
// none), leaves behind: its connections when they suit the new
// configuration, its balancing turn and its load counts, so that a
// cluster update is invisible to requests and to load reports. It
// returns the upstream prev no longer shares, nil if none.
func (c *cluster) adopt(prev *cluster) (retired *upstream) {
	if prev == nil {
		c.up, c.turn, c.load = newUpstream(c.upCfg), new(atomic.Uint64), new(loadCounter)
		return nil
	}
	c.turn, c.load = prev.turn, prev.load
	if prev.upCfg == c.upCfg {
		c.up = prev.up
		return nil
	}
	c.up = newUpstream(c.upCfg)
	return prev.up
}

// pick chooses a host among hosts as the cluster's lb_policy says; nil
// when there is none.
func (c *cluster) pick(hosts []*host) *host {
	switch c.policy {
	case clusterv3.Cluster_LEAST_REQUEST:
		return leastRequest(hosts, c.choices)
	case clusterv3.Cluster_RANDOM:
		return randomHost(hosts)
	}
	return roundRobin(hosts, c.turn)
}
