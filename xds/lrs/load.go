package lrs

import endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

// maxCount bounds a count the server believes: about four billion requests
// in flight at one reporter, or issued in one interval, is beyond any real
// load, while a uint64 that wrapped below zero in a reporter is far above
// it. Keeping sums under it also keeps them from overflowing.
const maxCount = 1 << 32

// load is what one report says of one revision.
type load struct {
	// inFlight is the number of requests in flight when the report was
	// made.
	inFlight uint64
	// issued is the number of requests issued since the previous report.
	issued uint64
}

// plus returns l and o added up; ok is false when o or the sum passes
// maxCount. l must be within it.
func (l load) plus(o load) (sum load, ok bool) {
	if o.inFlight > maxCount || o.issued > maxCount {
		return load{}, false
	}
	sum = load{inFlight: l.inFlight + o.inFlight, issued: l.issued + o.issued}
	return sum, sum.inFlight <= maxCount && sum.issued <= maxCount
}

// loadOf sums a cluster's load over its localities; ok is false when a
// count is implausible (see maxCount).
func loadOf(cs *endpointv3.ClusterStats) (total load, ok bool) {
	for _, loc := range cs.GetUpstreamLocalityStats() {
		var endpoints load
		for _, ep := range loc.GetUpstreamEndpointStats() {
			e := load{inFlight: ep.GetTotalRequestsInProgress(), issued: ep.GetTotalIssuedRequests()}
			if endpoints, ok = endpoints.plus(e); !ok {
				return load{}, false
			}
		}
		// The locality's totals include its endpoints: adding both would
		// count every request twice. The larger reads a reporter that
		// fills in only one of them.
		l := load{
			inFlight: max(loc.GetTotalRequestsInProgress(), endpoints.inFlight),
			issued:   max(loc.GetTotalIssuedRequests(), endpoints.issued),
		}
		if total, ok = total.plus(l); !ok {
			return load{}, false
		}
	}
	return total, true
}
