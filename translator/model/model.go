// Package model is the plain data the translator reads: what the gateways
// must serve. The watcher writes Services and Revisions, deploy and the
// autoscaler write RevisionEndpoints; nothing here does I/O.
package model

import "time"

// Visibility says which listener serves a host.
type Visibility string

// Visibilities.
const (
	// External hosts are served on the external listener (8080).
	External Visibility = "external"
	// ClusterLocal hosts are served on the internal listener (8081) only.
	ClusterLocal Visibility = "cluster-local"
)

// Protocol is the protocol a revision's container speaks.
type Protocol string

// Protocols.
const (
	// HTTP1 is HTTP/1.1 (the default).
	HTTP1 Protocol = "http1"
	// H2C is cleartext HTTP/2, chosen by a port named h2c or http2.
	H2C Protocol = "h2c"
)

// Mode says where a revision's traffic goes.
type Mode string

// Modes.
const (
	// Proxy sends the revision's traffic to the activator.
	Proxy Mode = "Proxy"
	// Serve sends the revision's traffic straight to its pods.
	Serve Mode = "Serve"
)

// Config is the whole model: the input of a full translation.
type Config struct {
	Services  []Service           `json:"services,omitempty"`
	Revisions []Revision          `json:"revisions,omitempty"`
	Endpoints []RevisionEndpoints `json:"endpoints,omitempty"`
}

// Service is the networking of one Knative Route (a Knative Service's route
// has the Service's name): its hosts and how each routes to revisions.
type Service struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Created orders Services that claim the same host: the earliest keeps
	// it, the later ones are reported as DomainConflict and serve nothing.
	Created      time.Time     `json:"created"`
	VirtualHosts []VirtualHost `json:"virtualHosts,omitempty"`
}

// Key is "namespace/name".
func (s Service) Key() string { return s.Namespace + "/" + s.Name }

// VirtualHost is one host name and its routes.
type VirtualHost struct {
	// Host is a host name without port; the translator also matches host:*.
	Host       string     `json:"host"`
	Visibility Visibility `json:"visibility"`
	// Routes are tried in order; the translator orders them longest prefix
	// first, header-matching routes before plain ones.
	Routes []Route `json:"routes,omitempty"`
	// TLS says the host is served over HTTPS too: a certificate for it is
	// expected among the SDS secrets (named by the host).
	TLS bool `json:"tls,omitempty"`
	// HTTP says what a request over plain HTTP gets when the host is also
	// served over HTTPS (config-network's http-protocol); "" is Enabled.
	HTTP HTTPPolicy `json:"http,omitempty"`
}

// HTTPPolicy is what plain HTTP requests to a host served with TLS get.
type HTTPPolicy string

// HTTP policies, config-network's http-protocol values.
const (
	// HTTPEnabled serves HTTP as HTTPS (the default).
	HTTPEnabled HTTPPolicy = "Enabled"
	// HTTPRedirected answers HTTP with 301 to the https:// URL, except the
	// ACME HTTP-01 path.
	HTTPRedirected HTTPPolicy = "Redirected"
	// HTTPDisabled answers HTTP with 404, except the ACME HTTP-01 path.
	HTTPDisabled HTTPPolicy = "Disabled"
)

// Route sends requests whose path starts with PathPrefix (and that carry
// Headers) to weighted revisions.
type Route struct {
	PathPrefix string        `json:"pathPrefix"`
	Headers    []HeaderMatch `json:"headers,omitempty"`
	Splits     []Split       `json:"splits"`
	// Timeout bounds a request (the largest timeoutSeconds of the split's
	// revisions); zero means no bound.
	Timeout time.Duration `json:"timeout,omitempty"`
	// ResponseStartTimeout bounds the wait for a response to start: the
	// largest of the split's revisions' responseStartTimeoutSeconds, a
	// revision without one counting as its timeoutSeconds; zero means
	// none beyond Timeout.
	ResponseStartTimeout time.Duration `json:"responseStartTimeout,omitempty"`
	// IdleTimeout ends a stream on which nothing moved for that long: the
	// largest of the split's revisions' idleTimeoutSeconds; zero means
	// none (also when one revision of the split has none).
	IdleTimeout time.Duration `json:"idleTimeout,omitempty"`
	// HostRewrite, when set, replaces the Host of requests sent on (a
	// DomainMapping's domain routed as its Route's cluster-local host).
	HostRewrite string `json:"hostRewrite,omitempty"`
	// SetHeaders are set (overwriting) on every request the route sends
	// on, before the split's own (a KIngress path's appendHeaders).
	SetHeaders []Header `json:"setHeaders,omitempty"`
	// Retries, when set, retries a failed request (a KIngress path's
	// retries); nil is no retry.
	Retries *Retries `json:"retries,omitempty"`
}

// Retries is how a route retries a request that failed.
type Retries struct {
	// Attempts is how many times a request is retried after the first try.
	Attempts uint32 `json:"attempts"`
	// PerTryTimeout bounds each try; zero is the route's timeout.
	PerTryTimeout time.Duration `json:"perTryTimeout,omitempty"`
}

// HeaderMatch requires a request header to equal Value exactly.
type HeaderMatch struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Split is one weighted target of a route.
type Split struct {
	// Revision is the target revision's key, "namespace/name".
	Revision string `json:"revision"`
	// Percent is the share of traffic, 0..100; the splits of a route sum to 100.
	Percent uint32 `json:"percent"`
	// SetHeaders are set (overwriting) on requests sent to this split.
	SetHeaders []Header `json:"setHeaders,omitempty"`
}

// Header is a name and a value.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Revision is what the gateways need to know of a revision to reach it. In
// the KIngress mode a "revision" is a backend a KIngress split names: a
// Kubernetes Service's port, Name "<service>:<port>", whose endpoints
// follow its EndpointSlices, or, with ExternalName, a DNS name.
type Revision struct {
	Namespace string   `json:"namespace"`
	Name      string   `json:"name"`
	Protocol  Protocol `json:"protocol"`
	// ExternalName, when set, is a DNS name and port the gateways resolve
	// themselves (an ExternalName Service): the backend has no endpoints.
	ExternalName *Endpoint `json:"externalName,omitempty"`
	// Timeout is the revision's timeoutSeconds.
	Timeout time.Duration `json:"timeout,omitempty"`
	// ResponseStartTimeout is the revision's responseStartTimeoutSeconds:
	// a response must start within it; zero is none.
	ResponseStartTimeout time.Duration `json:"responseStartTimeout,omitempty"`
	// IdleTimeout is the revision's idleTimeoutSeconds: a response may not
	// stay silent longer; zero is none.
	IdleTimeout time.Duration `json:"idleTimeout,omitempty"`
	// ContainerConcurrency is the most requests one pod takes at once; 0
	// is no limit. The activator enforces it.
	ContainerConcurrency int64 `json:"containerConcurrency,omitempty"`
	// Service and Configuration are the Knative Service and Configuration
	// the revision belongs to ("" when none): the activator's metrics
	// carry them, as Knative's do.
	Service       string `json:"service,omitempty"`
	Configuration string `json:"configuration,omitempty"`
}

// Key is "namespace/name".
func (r Revision) Key() string { return r.Namespace + "/" + r.Name }

// RevisionEndpoints are where a revision's traffic can go right now.
type RevisionEndpoints struct {
	// Revision is the revision's key, "namespace/name".
	Revision string `json:"revision"`
	Mode     Mode   `json:"mode"`
	// Pods are the ready pods' addresses.
	Pods []Endpoint `json:"pods,omitempty"`
	// Activators are the activator addresses used in proxy mode.
	Activators []Endpoint `json:"activators,omitempty"`
}

// Endpoint is an IP (or host name) and port.
type Endpoint struct {
	Address string `json:"address"`
	Port    uint32 `json:"port"`
}

// Stat is one report of a revision's load by one reporter (an Envoy
// gateway, the activator, the dev gateway, a proxyless gRPC client), meant
// to arrive about once a second, as LRS reports do. Averaged, it is the
// average concurrency and the requests per second. The load-reporting
// server produces it and the autoscaler reads it: it lives here, below
// both, so that neither imports the other.
type Stat struct {
	// Concurrency is the number of requests in flight at the reporter when
	// it reported.
	Concurrency float64
	// Requests is the number of requests the reporter issued (received)
	// since its previous report: Knative counts a request when it arrives.
	Requests float64
}
