//go:build !unix

package inflight

import "errors"

// FileLimit returns the process's limit on open files, which only Unix
// systems have: elsewhere it fails, and DefaultBudget assumes
// FallbackFileLimit.
func FileLimit() (int, error) {
	return 0, errors.New("no RLIMIT_NOFILE on this system")
}
