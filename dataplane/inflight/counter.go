// Package inflight counts and bounds what one kgate process has in flight.
//
// Counter counts the requests in flight to each upstream address. In
// `kgate local` the dev gateway and the activator share one, so that the
// deployer can tell when nothing is in flight to a replica leaving the
// endpoints any more, and only then stop it.
//
// Budget derives, from the process's file limit, how many connections and
// requests the dev gateway and the activator may hold at once: in `kgate
// local` they share one process, and so one RLIMIT_NOFILE, with the admin
// API, the xDS server, the replicas' probes and pipes and the logs. A
// flood is shed with 503s (or waits in the kernel's accept queue) before
// the process runs out of descriptors, so that one busy revision cannot
// take the rest down. See Budget for the numbers and why.
package inflight

import "sync"

// Counter counts requests in flight per upstream address ("host:port").
// Its methods are safe for concurrent use. The zero value is ready to use;
// a nil *Counter counts nothing (Begin returns a no-op, Count returns 0),
// so that components may take one optionally.
type Counter struct {
	mu sync.Mutex
	// n holds the addresses with requests in flight only: an address whose
	// count drops to zero is forgotten, so that replicas coming and going
	// for days do not grow it.
	n map[string]int
}

// Begin counts one request to addr in flight until done is called. done
// may be called more than once; only the first call counts.
func (c *Counter) Begin(addr string) (done func()) {
	if c == nil {
		return func() {}
	}
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[addr]++
	c.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { c.end(addr) }) }
}

func (c *Counter) end(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[addr] <= 1 {
		delete(c.n, addr)
		return
	}
	c.n[addr]--
}

// Count returns how many requests to addr are in flight now.
func (c *Counter) Count(addr string) int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[addr]
}
