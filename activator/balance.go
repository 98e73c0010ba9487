package activator

import "math/rand/v2"

// pod is one endpoint of a revision and its breaker: how many requests the
// activator has on it. Its fields are guarded by the revision's mutex.
type pod struct {
	// addr is "host:port", what the proxy dials.
	addr string
	// inFlight counts the requests holding a slot on this pod.
	inFlight int
	// ready is false once the endpoints dropped the pod: it takes no new
	// request and is forgotten when its last one completes.
	ready bool
}

// hasRoom reports whether the pod can take one more request under
// containerConcurrency cc (0 means no per-pod limit).
func (p *pod) hasRoom(cc int) bool {
	return cc == 0 || p.inFlight < cc
}

// leastOfTwo is the policy for containerConcurrency 0: of two distinct pods
// drawn at random, the one with fewer requests in flight. Two random draws
// spread load almost as well as scanning every pod, at constant cost.
func leastOfTwo(pods []*pod) *pod {
	switch len(pods) {
	case 0:
		return nil
	case 1:
		return pods[0]
	}
	i := rand.IntN(len(pods))
	j := rand.IntN(len(pods) - 1)
	if j >= i {
		j++ // draw j from every index but i
	}
	a, b := pods[i], pods[j]
	if b.inFlight < a.inFlight || (b.inFlight == a.inFlight && rand.IntN(2) == 0) {
		return b
	}
	return a
}

// firstFree is the policy for containerConcurrency 1..3: the first pod in
// address order with room. Packing requests onto the same pods leaves the
// others idle, which the autoscaler then scales down.
func firstFree(pods []*pod, cc int) *pod {
	for _, p := range pods {
		if p.hasRoom(cc) {
			return p
		}
	}
	return nil
}

// roundRobin is the policy for containerConcurrency above 3: starting at
// index next, the first pod with room. It returns the pod and where the
// next search starts, just past the pod chosen.
func roundRobin(pods []*pod, cc, next int) (*pod, int) {
	if next >= len(pods) {
		next = 0 // the pod list shrank since the last pick
	}
	for i := range pods {
		k := (next + i) % len(pods)
		if pods[k].hasRoom(cc) {
			return pods[k], k + 1
		}
	}
	return nil, next
}
