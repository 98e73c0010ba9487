// Package knconformance runs Knative's own ingress conformance suite
// (knative.dev/networking/test/conformance/ingress, at the version go.mod
// pins) against kgate's KIngress mode: a real kube-apiserver (test/kube)
// with Knative's Ingress CRD, the controller in process with
// Options.Ingress, and the dev gateway as the data plane, connected over
// mutual TLS with the gateways' certificate.
//
// There is no kubelet: the test plays it and the endpoints controller. The
// backends the suite creates as Pods run as local processes built from the
// module's own test images, each on its own loopback port, and their
// Services get the Endpoints and EndpointSlices that point there. The
// suite reaches the gateway as it reaches a kind cluster's:
// --ingressendpoint=127.0.0.1 and the NodePorts of Service kgate-gateway,
// which are where the dev gateway's external listeners bind.
//
// The package is apart because the suite registers its flags on the
// global flag set. The test is behind the build tag knconformance until
// go.mod requires the suite's modules; run.sh runs it without changing
// go.mod. docs/kingress-conformance.md lists the cases, what passes, and
// why the others are skipped.
package knconformance
