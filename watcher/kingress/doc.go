// Package kingress is the pure core of kgate's KIngress mode: it turns
// Knative's KIngress objects (networking.internal.knative.dev/v1alpha1
// Ingress, as Knative Serving's route controller writes them) and the
// Kubernetes Services and EndpointSlices they name into kgate's model, the
// way Knative's ingress implementations (net-kourier) serve them. It does
// no I/O, reads no clock and keeps no state: Translate is a function of one
// consistent read of the cluster. The controller around it (informers,
// status writes, xDS) lives elsewhere.
//
// API:
//
//	Ours(ing, class, defaultClass)  is this Ingress of kgate's class?
//	Translate(Input) Result         the model, TLS Secrets and outcomes
//
// An Ingress is ours when its annotation networking.knative.dev/ingress.class
// (or the older networking.knative.dev/ingress-class) names Input.Class, or,
// without either annotation, when config-network's ingress-class
// (Input.DefaultClass) does. Ingresses of another class are never in the
// Result: the controller must not touch them.
//
// Every Ingress of ours becomes one model.Service (key namespace/name,
// Created its creationTimestamp), each host of each rule one VirtualHost.
// Each split names a backend, a model.Revision "<service>:<port>" in the
// split's namespace, whose endpoints are the ready addresses of the
// Service's EndpointSlices (Mode Serve), or, for an ExternalName Service, a
// DNS name the gateways resolve. docs/kingress.md maps every field.
//
// Outcome reports, for every Ingress of ours, whether it is served
// (NetworkConfigured): False with ReasonInvalidSpec (Knative's own
// validation fails), ReasonServiceNotFound or ReasonPortNotFound (a split
// names a Service or port that does not exist; as net-kourier, the Ingress
// is then left out of the model until it does), ReasonUnsupported (a header
// match without an exact value), or ReasonDomainConflict (an earlier
// Ingress holds one of its hosts; it stays in the model and the
// translator's host index, which orders claimants the same way, leaves it
// out of the gateways).
package kingress
