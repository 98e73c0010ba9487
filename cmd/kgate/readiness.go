package main

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
)

// readiness gathers the readiness of the parts of kgate local, for the
// admin API's /readyz: a part that cannot follow the control plane (a
// response too large, a config it cannot decode) says so there, not only
// in its log.
type readiness struct {
	mu     sync.Mutex
	checks map[string]func() error
}

// set registers the check of a part, replacing any before.
func (r *readiness) set(part string, check func() error) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.checks == nil {
		r.checks = map[string]func() error{}
	}
	r.checks[part] = check
}

// err joins the parts' errors, nil when every part is ready.
func (r *readiness) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, part := range slices.Sorted(maps.Keys(r.checks)) {
		if err := r.checks[part](); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", part, err))
		}
	}
	return errors.Join(errs...)
}

// ServeHTTP answers 200 when every part is ready, else 503 with why.
func (r *readiness) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	if err := r.err(); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}
