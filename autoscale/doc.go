// Package autoscale decides, for every revision, how many pods it should
// run and whether its traffic goes to the activator (Proxy) or straight to
// its pods (Serve), with the semantics of Knative's KPA.
//
// It is pure: no I/O, no goroutines, no clock. A loop elsewhere feeds it
// load reports and ready-pod counts and ticks it every TickInterval with
// the current time; tests tick it with a fake one.
//
// The pieces, each after the Knative code whose behaviour it matches:
//
//   - metrics: one-second buckets averaged over the stable and panic
//     windows (pkg/autoscaler/aggregation, metrics/collector.go).
//   - Settings: config-autoscaler and the revision's annotations resolved
//     into one revision's parameters (kpa/resources/decider.go,
//     resources/target.go, resources/metric.go).
//   - decider: load to desired pods and excess burst capacity, with panic
//     mode, rate limits, activation scale and scale-down delay
//     (pkg/autoscaler/scaling/autoscaler.go).
//   - lifecycle: bounds, initial scale, the Active/Inactive state,
//     scale to zero and the Proxy/Serve mode (kpa/scaler.go, kpa.go).
//   - Revision ties metrics, decider and lifecycle together for one
//     revision; Autoscaler holds many, keyed by revision.
//
// Where kgate differs from Knative, on purpose:
//
//   - Load comes from data-plane reports (LRS), not from scraping pods.
//     While pods are ready, a tick records a zero report, standing in for
//     Knative's scrape of idle pods, so that silence from the data plane
//     reads as no load rather than as missing data.
//   - The activator is taken to be in the path once the decision says
//     Proxy; Knative probes it before the last pod goes. The caller must
//     apply a Proxy decision before it applies the scale to zero that
//     follows it at a later tick.
//   - Record asks for a poke when the decider has not decided yet as well
//     as at zero, so that a revision created at initial-scale 0 starts on
//     its first request rather than at the next tick.
//   - A changed scale-down-delay takes effect at once, with a fresh
//     window; Knative keeps the window the decider was created with.
//   - Knative keeps each revision's state in its PodAutoscaler's status
//     across restarts; kgate keeps none, so after a restart the caller
//     resumes revisions at the scale their pods run at (Resume).
package autoscale
