// Package knative is the pure core of the watcher pipeline: Knative's
// object graph in memory (Service → Configuration + Route, Configuration →
// Revisions, Route → hosts and weighted routes), driven by an injected
// clock, turning declared objects into the model and every status in one
// pass. It keeps what Knative keeps in etcd: generations, the revision
// history (so that revisionName: hello-00001 still resolves after the
// template changed), the last valid version of every object (an invalid
// edit keeps the old version serving and is reported not Ready), and the
// last resolved traffic of every Route (a Route whose new traffic cannot be
// resolved keeps serving the old).
//
// Statuses follow Knative's condition sets: Service (ConfigurationsReady,
// RoutesReady, Ready), Configuration (Ready), Route (AllTrafficAssigned,
// IngressReady, Ready) and Revision (ResourcesAvailable, ContainerHealthy,
// Active, Ready). A lastTransitionTime changes only when its condition does
// (status, reason or message). IngressReady is decided in the pass: False,
// DomainConflict, for a Route that lost a host to an earlier one (it is
// left out of the model); Unknown, IngressNotConfigured, while the
// gateways do not serve it yet (Input.Waiting); else True once the Route is
// in the model. An invalid newest version shows as Ready False, reason
// InvalidSpec, with Knative's validation messages and field paths.
//
// Routing choices kgate makes where Knative has a switch: tag-header-based
// routing (Knative-Serving-Tag: <tag> on the main hosts selects the tagged
// revision) is always on; every split sets Knative-Serving-Revision and
// Knative-Serving-Namespace.
package knative
