// Package translator turns the model into Envoy resources. It is pure: no
// I/O, no clock, no globals; the same model always gives the same output.
//
// Resource layout (names are the contract with xds/, the dev gateway and
// proxyless gRPC clients):
//
//   - Listeners "external" (port 8080) and "internal" (8081): HTTP connection
//     manager with scoped routes (SRDS over ADS). An early header mutation sets
//     x-kgate-listener to the listener's name; the scope key is
//     [x-kgate-listener, host part of :authority]. Scopes are keyed by listener
//     because Envoy delivers every ScopedRouteConfiguration to every
//     SRDS-based connection manager.
//   - ScopedRouteConfiguration "<listener>/<host>" with key [listener, host]
//     pointing at RouteConfiguration "<listener>/<namespace>/<service>".
//   - RouteConfiguration "<listener>/<namespace>/<service>": one virtual host
//     per host, domains [host, host:*]. One Service change re-sends only its
//     own route configuration and scopes, whatever the number of Services.
//   - API listener "<host>" (proxyless gRPC, xds:///<host>): RDS to the
//     route configuration holding that host.
//   - Cluster "<namespace>/<revision>" (EDS over ADS); its
//     ClusterLoadAssignment holds the pods (Serve) or the activators (Proxy).
//     A revision with an ExternalName (a KIngress backend that is an
//     ExternalName Service) is a LOGICAL_DNS cluster of the same name whose
//     inline load_assignment is that DNS name and port: no EDS.
//   - ClusterLoadAssignment "<namespace>/<revision>/pods": always the ready
//     pods, for the activator.
//
// Choices a reader of the Envoy config should know:
//
//   - Routes always use weighted_clusters, also for a single 100 % split (the
//     per-split Knative-Serving-* headers live on the cluster weight); 0 %
//     splits are left out, and named instead by a last route that never
//     matches (runtime_fraction 0 %), so that clients hold their clusters
//     before traffic moves to them. The route timeout is always explicit: the
//     revision's timeoutSeconds, or 0s (disabled) instead of Envoy's 15 s.
//     A route's own headers (a KIngress path's appendHeaders) are set on
//     every weighted cluster ahead of the split's, which win on a conflict.
//     No retry policy unless the route has Retries (a KIngress path's):
//     then retry_on "5xx", num_retries its attempts, per_try_timeout when
//     set (with no attempt, no retry_policy, which grpc-go would reject,
//     and the per-try timeout bounds the route instead). Otherwise a 503
//     from the application reaches the client.
//   - The gateway listeners are hardened as Envoy advises for an edge
//     (Limits: buffers, header size and count, header and idle timeouts,
//     HTTP/2 streams and windows, path normalization, underscores in
//     header names rejected, use_remote_address). A route's idle_timeout
//     is its revisions' idleTimeoutSeconds; without one, a route whose
//     timeout is longer than the stream idle timeout gets an idle_timeout
//     equal to its timeout, so a response may start as late as
//     timeoutSeconds allows. A responseStartTimeoutSeconds shorter than
//     both is the retry policy's per_try_idle_timeout (no retry_on: it
//     retries nothing), Envoy's closest to a first-byte timeout (see
//     docs/timeouts.md). No request_timeout: the route timeout is
//     Knative's bound.
//   - Revision clusters balance with LEAST_REQUEST, lift Envoy's 1024
//     request/connection circuit breakers (admission is the autoscaler's and
//     the activator's job) and close idle upstream connections after 4 s,
//     before common application servers (5 s) close them under a request.
//   - Every endpoint sits in one locality, zone "kgate", weight 1, which
//     grpc-go requires.
//   - Host conflicts: the earliest Service (Created, then key) claiming a
//     host owns it; a Service that lost any host is not translated at all
//     (see HostIndex).
package translator

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/kgate/kgate/translator/model"
)

// Options are the deployment facts the translation depends on.
type Options struct {
	// ExternalAddress and ExternalPort are where the external listener binds
	// (default 0.0.0.0:8080).
	ExternalAddress string
	ExternalPort    uint32
	// InternalAddress and InternalPort are where the internal listener binds
	// (default 0.0.0.0:8081).
	InternalAddress string
	InternalPort    uint32
	// ExternalTLSPort and InternalTLSPort, when not 0, add the HTTPS
	// listeners "external-tls" and "internal-tls" (usually 8443 and 8444;
	// see TLSListener), on ExternalTLSAddress and InternalTLSAddress, which
	// default to the plaintext listeners' addresses.
	ExternalTLSPort, InternalTLSPort       uint32
	ExternalTLSAddress, InternalTLSAddress string
	// HTTPSRedirectPort is the port of the https:// URL plain HTTP is
	// redirected to (http-protocol Redirected): what clients reach the
	// HTTPS listener on, 0 or 443 for the default port.
	HTTPSRedirectPort uint32
	// LoadReporting asks clients to report per-cluster load over LRS to the
	// control plane (lrs_server: self on every revision cluster).
	LoadReporting bool
	// XFFNumTrustedHops is how many proxies in front of the gateways (a
	// cloud load balancer, say) append to X-Forwarded-For
	// (xff_num_trusted_hops): Envoy then takes the client's address that
	// many entries from the right instead of trusting what the client sent.
	// 0, the default, trusts no entry: the peer's address is the client's.
	XFFNumTrustedHops uint32
	// AccessLog is the gateway listeners' access log to Envoy's standard
	// output: on, in text, by default (see AccessLog).
	AccessLog AccessLog
	// Limits bound what one client of the gateway listeners may hold;
	// zero fields take the defaults (see Limits).
	Limits Limits
	// Tracing, when enabled, has the gateway listeners trace requests to
	// an OpenTelemetry collector, which Listeners emits as a cluster.
	Tracing Tracing
}

// Output is a set of Envoy resources, each list sorted by name.
type Output struct {
	// Listeners are the gateway listeners (Envoy, dev gateway).
	Listeners []*listenerv3.Listener
	// APIListeners are for proxyless gRPC clients, one per host.
	APIListeners []*listenerv3.Listener
	ScopedRoutes []*routev3.ScopedRouteConfiguration
	Routes       []*routev3.RouteConfiguration
	Clusters     []*clusterv3.Cluster
	Endpoints    []*endpointv3.ClusterLoadAssignment
	// Secrets are SDS secrets: the hosts' certificates (see Secret); the
	// translation of a model holds none.
	Secrets []*tlsv3.Secret
	// Conflicts are the Services left out because another claimed a host first.
	Conflicts []Conflict
}

// Conflict reports a Service that lost a host to an earlier one.
type Conflict struct {
	// Service is the losing Service's key, "namespace/name".
	Service string
	// Host is the contested host.
	Host string
	// Owner is the key of the Service that keeps the host.
	Owner string
}

// Translate translates the whole model: the gateway listeners and every
// Service (those in conflict left out and reported), Revision and
// RevisionEndpoints. It is the composition of Listeners, Service, Revision
// and Endpoints, with host conflicts resolved as HostIndex does.
func Translate(cfg model.Config, opts Options) Output {
	return translate(cfg, opts)
}
