// Package grpcpeer holds the independent peer test of kgate's xDS output:
// grpc-go's own xDS client (google.golang.org/grpc/xds), an implementation
// kgate does not control, resolves xds:///<host> against a real xds.Server
// and xds.Engine on loopback and sends real RPCs to real gRPC backends.
//
// It proves what unit tests comparing protos cannot: that a proxyless gRPC
// client accepts every resource kgate publishes (no NACK), honours the
// weighted splits, and follows split and endpoint changes quickly without
// failing a single RPC.
//
// The package has no non-test code.
package grpcpeer
