package translator

import "github.com/kgate/kgate/translator/model"

// Names shared with the xds server, the dev gateway and clients.
const (
	// ExternalListener serves External hosts.
	ExternalListener = "external"
	// InternalListener serves ClusterLocal hosts.
	InternalListener = "internal"
	// ListenerHeader carries the listener's name into the scope key; the
	// listener sets it (overwriting what a client sent) and every route
	// configuration removes it before the request goes upstream.
	ListenerHeader = "x-kgate-listener"
	// Zone is the locality zone of every endpoint: grpc-go rejects a
	// locality without one.
	Zone = "kgate"
)

// ListenerFor returns the listener that serves hosts of a visibility.
// Anything but External is internal: an unknown visibility must never
// expose a host publicly.
func ListenerFor(v model.Visibility) string {
	if v == model.External {
		return ExternalListener
	}
	return InternalListener
}

// RouteName is the RouteConfiguration of one Service on one listener,
// "<listener>/<namespace>/<service>".
func RouteName(listener, namespace, service string) string {
	return listener + "/" + namespace + "/" + service
}

// ScopeName is the ScopedRouteConfiguration of one host on one listener,
// "<listener>/<host>".
func ScopeName(listener, host string) string { return listener + "/" + host }

// ClusterName is a revision's Cluster and ClusterLoadAssignment: its key,
// "<namespace>/<revision>".
func ClusterName(revision string) string { return revision }

// PodsName is the ClusterLoadAssignment of a revision's ready pods,
// "<namespace>/<revision>/pods".
func PodsName(revision string) string { return revision + "/pods" }
