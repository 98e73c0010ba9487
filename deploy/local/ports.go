package local

import (
	"errors"
	"fmt"
	"net"
	"sync"
)

// ports hands out free loopback ports, one per running replica: in
// Knative every pod has the containerPort to itself, locally each process
// needs its own.
type ports struct {
	mu    sync.Mutex
	taken map[int]bool
}

func newPorts() *ports { return &ports{taken: map[int]bool{}} }

// take returns a port that is free now and not handed out already. The
// process binds it a moment later; should something else take it meanwhile,
// the process fails to listen and is restarted on another port.
func (p *ports) take() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range 10 {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("finding a free port: %w", err)
		}
		port := lis.Addr().(*net.TCPAddr).Port
		lis.Close()
		if !p.taken[port] {
			p.taken[port] = true
			return port, nil
		}
	}
	return 0, errors.New("finding a free port: the system keeps offering ports already handed out")
}

// release makes port available again.
func (p *ports) release(port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.taken, port)
}
