package activator

import (
	"context"
	"fmt"
	"sync"
)

// Drain waits until every request the handler took has been answered —
// those waiting for a pod too, and upgraded connections (WebSocket) until
// they close — or ctx ends; then it closes the idle pod connections. It
// refuses nothing meanwhile: the gateway may send requests until it learns
// that this activator is going.
//
// On SIGTERM, cmd fails the activator's readiness, gives the gateway time
// to notice, then calls the server's Shutdown (no new connections; waits
// for requests on open ones) and Drain, which also covers the hijacked
// connections that Shutdown does not track.
func (a *Activator) Drain(ctx context.Context) error {
	defer a.transports.closeIdle()
	if n, err := a.active.wait(ctx); err != nil {
		return fmt.Errorf("activator: drain: %d requests still in flight: %w", n, err)
	}
	return nil
}

// activeRequests counts the requests being handled, so that Drain can wait
// for them.
type activeRequests struct {
	mu sync.Mutex
	n  int
	// idle is closed when n drops to zero; nil while nobody waits.
	idle chan struct{}
}

func (c *activeRequests) add() {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
}

func (c *activeRequests) done() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n--
	if c.n == 0 && c.idle != nil {
		close(c.idle)
		c.idle = nil
	}
}

// wait returns when no request is active, or ctx's error with how many
// still are.
func (c *activeRequests) wait(ctx context.Context) (int, error) {
	c.mu.Lock()
	if c.n == 0 {
		c.mu.Unlock()
		return 0, nil
	}
	if c.idle == nil {
		c.idle = make(chan struct{})
	}
	idle := c.idle
	c.mu.Unlock()

	select {
	case <-idle:
		return 0, nil
	case <-ctx.Done():
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.n, ctx.Err()
	}
}
