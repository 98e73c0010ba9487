// Package lrs receives the data plane's load reports (LRS,
// envoy.service.load_stats.v3) and turns them into what the autoscaler
// consumes: per revision, the requests in flight and the requests issued.
//
// Every stream is one reporter: an Envoy gateway, the dev gateway, a
// proxyless gRPC client or the activator. The server answers a stream's
// first request with send_all_clusters and the reporting interval; the
// reporter then sends a report about every interval. A report's cluster
// name says what it measures:
//
//   - "<ns>/<rev>", the revision cluster gateways and proxyless clients
//     route to: all of the revision's requests that reporter sees, whether
//     they go to the pods (Serve) or to the activator (Proxy).
//   - "<ns>/<rev>/pods", the activator's upstream: the requests it holds or
//     proxies for the revision.
//
// In Proxy mode both sides see the same requests, so Collect does not add
// the two up: per revision it takes the larger of the gateways' sum and
// the activators' sum. The gateways' sum is complete in either mode; the
// activators' counts when the gateways have not reported yet — the
// activator reports a held request at once, up to an interval before a
// gateway does, and that is what brings a revision up from zero. Either
// side's in-flight > 0 also signals demand at once (Options.OnDemand).
//   - Any other name (Envoy's own clusters, garbage) is ignored.
//
// A cluster's load is summed over its localities. A locality's totals
// already include its endpoints, so endpoint stats are read only where
// they say more than the locality does (a reporter that fills in endpoints
// alone).
//
// # Silent reporters
//
// In flight is a gauge: each report says how many requests are in flight
// now. The server keeps, per stream and revision, the latest report's
// value and when it arrived. A reporter that misses reports keeps its last
// value until MaxAge (3 intervals by default) has passed since it last
// reported; after that its contribution is dropped. A report one interval
// late is ordinary (timer jitter, a GC pause, a busy gateway), and reading
// it as zero would make the revision's concurrency dip and invite a scale
// down. Keeping it forever would leave a revision scaled up on the word of
// a reporter that vanished without closing its stream (a partition, a
// dead host whose connection has not timed out yet). Three intervals ride
// over a report or two going missing and bound a phantom's life to a few
// seconds, short against the 6 s panic window. A stream that closes is
// dropped at once: its reporter is gone, not late. grpc-go leaves idle
// clusters out of its reports, which is harmless here: the report that
// saw the last request end said zero.
//
// Issued requests are a count of what happened, not a gauge: they are
// added to the revision as they arrive and handed out once, by the next
// Collect, so neither aging nor a closed stream loses or repeats them.
// They are issued rather than completed requests because Knative counts a
// request when it arrives.
package lrs
