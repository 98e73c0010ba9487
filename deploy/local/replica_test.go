package local

import (
	"testing"
	"time"
)

// TestRestartBackoff pins the waits between restarts: the first, doubling
// up to the maximum, and the first again after a process that ran for as
// long as the maximum.
func TestRestartBackoff(t *testing.T) {
	const ms = time.Millisecond
	r := &replica{d: &Deployer{opts: Options{RestartBackoff: 50 * ms, MaxRestartBackoff: 300 * ms}}}
	b := r.restartBackoff()
	for i, step := range []struct{ ran, want time.Duration }{
		{0, 50 * ms}, {0, 100 * ms}, {299 * ms, 200 * ms}, {0, 300 * ms}, {0, 300 * ms},
		{300 * ms, 50 * ms}, {0, 100 * ms}, {time.Hour, 50 * ms},
	} {
		if got := r.nextBackoff(&b, step.ran); got != step.want {
			t.Errorf("exit %d, after running %v: wait %v, want %v", i+1, step.ran, got, step.want)
		}
	}
}
