package activator

import (
	"errors"
	"fmt"
	"net/http"
)

// Why a request was not proxied, or not to the end.
var (
	errQueueFull       = errors.New("request queue full")
	errWaitTimeout     = errors.New("no pod had room before the revision's timeout")
	errRevisionDeleted = errors.New("revision deleted")
	// errResponseTimeout cancels a proxied request whose pod did not start
	// responding before the revision's timeout.
	errResponseTimeout = errors.New("pod did not start responding before the revision's timeout")
	// errRequestTimeout cuts a response still under way at the revision's
	// timeoutSeconds.
	errRequestTimeout = errors.New("response not over within the revision's timeout")
	// errIdleTimeout cuts a response that stayed silent for the
	// revision's idleTimeoutSeconds.
	errIdleTimeout = errors.New("response silent for the revision's idle timeout")
)

// RejectedHeader is set on the answers the activator writes itself, so
// that a 503 or 504 of the activator is told apart from the application's.
const RejectedHeader = "X-Kgate-Activator-Rejected"

// reject answers a request the activator cannot proxy and returns the
// status. The body says what happened in words a user reading curl output
// can act on.
func reject(w http.ResponseWriter, status int, format string, args ...any) int {
	w.Header().Set(RejectedHeader, "true")
	http.Error(w, "activator: "+fmt.Sprintf(format, args...), status)
	return status
}

// shed answers 503 to a request the activator will not hold, and closes an
// HTTP/1 client's connection after it: under a flood, the connection goes
// back to the gateway (and its descriptors with it) rather than bringing
// the next request of the flood. An HTTP/2 connection is left open: it
// carries other requests, and the stream refused is all it holds.
func shed(w http.ResponseWriter, r *http.Request, format string, args ...any) int {
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
	return reject(w, http.StatusServiceUnavailable, format, args...)
}
