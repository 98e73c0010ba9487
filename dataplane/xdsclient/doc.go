// Package xdsclient is a small xDS client for kgate's own components (the
// activator, the dev gateway): aggregated discovery over one delta ADS
// stream (Client) and load reporting over LRS (LoadReporter).
//
// A Client watches resource types. Each watch subscribes to names, or to
// every resource of its type with Wildcard, and may change its
// subscription at any time. The client decodes every response into the
// type's Go messages and hands what changed to the watch's Handler: ACK
// when the handler accepts, NACK with the handler's error otherwise, the
// handler's previous state standing. A name subscribed to one by one that
// the server says it does not have (removed before the handler ever had
// it) is handed to the handler as Absent, for a caller asking for
// resources on demand; the subscription stays. When the stream fails the client
// reopens it after a capped exponential backoff, telling the server the
// versions it holds (initial_resource_versions) so that only what changed
// meanwhile is sent again. A run of failed streams is logged once, and
// Client.Err says whether the client follows the control plane, for a
// readiness probe: it does not while it cannot receive what the server
// sends (a message past Options.MaxRecvMsgSize, 128 MiB by default) or
// before every wildcard watch has accepted a response.
//
// A LoadReporter sends the load a caller counts, per cluster, at the
// interval the LRS server asks for, and at once on ReportNow.
//
// Both identify themselves with a Node whose user agent must not start
// with "gRPC": kgate's xDS server takes such nodes for proxyless gRPC
// clients and serves them API listeners instead of gateway listeners.
package xdsclient
