package metrics

// Stat is one report of a revision's load by one reporter (an Envoy
// gateway, the activator, the dev gateway, a proxyless gRPC client), meant
// to arrive about once a second, as LRS reports do. Averaged, it is the
// average concurrency and the requests per second.
type Stat struct {
	// Concurrency is the number of requests in flight at the reporter when
	// it reported.
	Concurrency float64
	// Requests is the number of requests the reporter issued (received)
	// since its previous report: Knative counts a request when it arrives.
	Requests float64
}

func (s Stat) plus(o Stat) Stat {
	return Stat{Concurrency: s.Concurrency + o.Concurrency, Requests: s.Requests + o.Requests}
}

func (s Stat) minus(o Stat) Stat {
	return Stat{Concurrency: s.Concurrency - o.Concurrency, Requests: s.Requests - o.Requests}
}

func (s Stat) times(f float64) Stat {
	return Stat{Concurrency: s.Concurrency * f, Requests: s.Requests * f}
}
