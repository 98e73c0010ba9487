package devgateway

import "net"

// applyListeners applies an LDS update. A listener whose address changed
// (or that is new) gets a new socket; every new socket is bound before
// any is served, so that one that cannot be refuses the update whole, as
// Envoy refuses a listener it cannot bind. A listener keeping its address
// keeps its socket; with the same server limits it keeps its connections
// too and takes the new connection manager at once, with other limits it
// hands the socket to a new server and drains its connections, as it does
// when TLS comes or goes. A listener replaced or removed drains in the
// background. A TLS listener's prefetched certificates are asked for once
// it serves; once no listener serves TLS, no certificate is held.
func (g *Gateway) applyListeners(cfgs []*listenerConfig, removed []string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	fresh := map[string]*listener{}
	for _, cfg := range cfgs {
		old := g.listeners[cfg.name]
		want := g.listenAt(cfg.name, cfg.address)
		if old != nil && keepsSocket(old, cfg.address, want) {
			if old.limits != cfg.cm.server || old.secure != (cfg.tls != nil) {
				fresh[cfg.name] = old.handOver(cfg)
			}
			continue
		}
		l, err := bind(cfg, want, g.proxy, g.conns)
		if err != nil {
			for _, l := range fresh {
				l.abandon()
			}
			return err
		}
		fresh[cfg.name] = l
	}
	for _, cfg := range cfgs {
		old := g.listeners[cfg.name]
		l, rebound := fresh[cfg.name]
		if !rebound {
			old.cm.Store(cfg.cm)
			old.tls.Store(cfg.tls)
			old.configured = cfg.address
			g.log.Debug("listener updated", "listener", cfg.name)
			continue
		}
		g.listeners[cfg.name] = l
		l.start()
		g.log.Info("listener serving", "listener", cfg.name, "address", l.addr(), "configured", cfg.address)
		if old != nil {
			g.stopInBackground(old)
		}
	}
	for _, name := range removed {
		if old, ok := g.listeners[name]; ok {
			delete(g.listeners, name)
			g.stopInBackground(old)
		}
	}
	secure := false
	for _, cfg := range cfgs {
		if cfg.tls != nil {
			g.certs.prefetch(cfg.tls.prefetch)
		}
	}
	for _, l := range g.listeners {
		secure = secure || l.secure
	}
	if !secure {
		// The certificate selectors are gone, and their subscriptions
		// with them, as in Envoy.
		g.certs.forget()
	}
	return nil
}

// keepsSocket reports whether a listener bound as old serves a config
// with the address configured, which binds at want: when the configured
// address is the same, or when it moved but still binds where old is
// (a fixed address, not an ephemeral port, which a new socket would not
// get again).
func keepsSocket(old *listener, configured, want string) bool {
	if old.configured == configured {
		return true
	}
	_, port, err := net.SplitHostPort(want)
	return err == nil && port != "0" && want == old.requested
}

func (g *Gateway) stopInBackground(l *listener) {
	g.log.Info("listener draining", "listener", l.name, "address", l.addr(), "grace", g.drain)
	g.draining.Go(func() { l.stop(g.drain) })
}

// stopAll drains every listener, and those already draining, then closes
// the idle upstream connections.
func (g *Gateway) stopAll() {
	g.mu.Lock()
	for name, l := range g.listeners {
		delete(g.listeners, name)
		g.stopInBackground(l)
	}
	g.mu.Unlock()
	g.draining.Wait()
	g.tables.mu.RLock()
	defer g.tables.mu.RUnlock()
	for _, c := range g.tables.clusters {
		c.up.retire()
	}
}
