package activator

import (
	"net/http"
	"time"
)

// NewServer returns a server of h on addr that speaks HTTP/1.1 and
// cleartext HTTP/2 with prior knowledge on one port, as Envoy and gRPC
// clients reach the activator. It sets no read or write timeout: requests
// wait and responses stream for as long as the revision allows, and the
// handler enforces the revision's timeout.
func NewServer(addr string, h http.Handler) *http.Server {
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	return &http.Server{
		Addr:      addr,
		Handler:   h,
		Protocols: protocols,
		// Bounds what a client may take to send headers (slowloris).
		ReadHeaderTimeout: 30 * time.Second,
	}
}
