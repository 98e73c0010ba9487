// Package activator is the activator's data path: an http.Handler that
// holds requests for revisions in proxy mode (also at zero pods) and
// balances them over the revision's ready pods with Knative's breaker
// semantics.
//
// A request names its revision with the Knative-Serving-Namespace and
// Knative-Serving-Revision headers, which the gateway sets on every split.
// It is then:
//
//   - admitted at once to a pod with a free slot, chosen by the revision's
//     policy: power of two choices by in-flight count when
//     containerConcurrency is 0 (no per-pod limit), the first pod with room
//     in address order when it is 1..3, round robin skipping full pods
//     above 3 — the same choices as Knative's activator;
//   - otherwise held in the revision's first-in first-out line (10000 deep
//     by default; 503 when full) until a slot frees or a pod appears;
//   - refused at once with 503 beyond the activator's ceilings (see
//     below);
//   - answered 504 when no slot came, or the pod did not start responding,
//     within the revision's timeoutSeconds, responseStartTimeoutSeconds or
//     idleTimeoutSeconds, whichever is shortest, counted from arrival; a
//     response under way is cut at timeoutSeconds from arrival, or once
//     silent for idleTimeoutSeconds (timeouts.go, docs/timeouts.md);
//   - proxied with httputil.ReverseProxy: HTTP/1.1, WebSocket upgrades and
//     streaming bodies, and HTTP/2 (h2c) with trailers, hence gRPC. Pods
//     are spoken to in HTTP/2 when the revision's protocol is h2c.
//
// Each revision has one line and one mutex: a pod's breaker (its in-flight
// count against containerConcurrency) and the line change together, so the
// revision's capacity is exactly containerConcurrency × ready pods, a
// request never lands on a full pod, and a freed slot goes to the oldest
// waiter. Knative stacks a revision semaphore over per-pod semaphores and
// re-queues when they race; one lock makes that race impossible.
//
// Every request held — waiting for a pod or proxied to one — holds file
// descriptors: the client's connection, and the pod's once proxied. In
// `kgate local` the gateway, the activator, the admin API and the probes
// share one process and one file limit, so the activator bounds what it
// holds, from that limit by default (inflight.Budget): at most
// Options.MaxHeld requests across revisions (an eighth of the file limit
// less its reserve of a tenth plus 128: 2,234 at a limit of 20,000, 99 at
// 1,024), and at most Options.MaxHeldPerRevision of one revision (half of
// that), so that one busy revision cannot starve the others. Beyond
// either, and beyond a full line, a request is answered 503 at once with
// "Connection: close" for an HTTP/1 client, so that a flood gives its
// connections back, and counted in RevisionStats.Rejected.
// Options.Inflight, when set, counts the requests proxied to each pod
// until their responses end, which `kgate local` reads to stop a replica
// only once nothing is in flight to it.
//
// Wiring (what the rest of kgate calls; Connect does the first two over
// one gRPC connection to the control plane, with dataplane/xdsclient):
//
//   - The xDS client calls SetRevision for each revision cluster (protocol,
//     containerConcurrency, the three timeouts), SetEndpoints with the ready
//     pods of each "<ns>/<rev>/pods" ClusterLoadAssignment, and
//     DeleteRevision when the cluster goes away. A pod dropped from the
//     endpoints takes no new request; its in-flight ones complete.
//   - The LRS reporter reads Stats every interval the server asks for
//     (every second), reporting each revision as cluster "<ns>/<rev>/pods",
//     and reports at once when Options.OnPoke says that a request is
//     waiting for a revision with no pod, so scale-from-zero does not wait
//     for the next tick.
//   - cmd serves the handler with NewServer and, on SIGTERM, calls the
//     server's Shutdown and then Drain (see Drain).
package activator
