package devgateway

import (
	"math/rand/v2"
	"sync/atomic"
)

// leastRequest is Envoy's LEAST_REQUEST with equal weights: of choices
// hosts drawn at random, the one with the fewest requests in flight.
func leastRequest(hosts []*host, choices int) *host {
	if len(hosts) == 0 {
		return nil
	}
	best := hosts[rand.IntN(len(hosts))]
	for range choices - 1 {
		if h := hosts[rand.IntN(len(hosts))]; h.inFlight.Load() < best.inFlight.Load() {
			best = h
		}
	}
	return best
}

// roundRobin takes the hosts in turn. The turn is the cluster's, so it
// carries over endpoint updates; an update that shrinks the list only
// shifts where the turn falls.
func roundRobin(hosts []*host, turn *atomic.Uint64) *host {
	if len(hosts) == 0 {
		return nil
	}
	return hosts[(turn.Add(1)-1)%uint64(len(hosts))]
}

// randomHost is Envoy's RANDOM.
func randomHost(hosts []*host) *host {
	if len(hosts) == 0 {
		return nil
	}
	return hosts[rand.IntN(len(hosts))]
}
