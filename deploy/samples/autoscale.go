package samples

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// Limits of the autoscale sample's parameters: high enough for any load
// test, low enough that a typo cannot take the machine's memory.
const (
	// MaxSleep bounds ?sleep=MS: an hour.
	MaxSleep = 3_600_000
	// MaxPrime bounds ?prime=N; the sieve takes N bytes.
	MaxPrime = 100_000_000
	// MaxBloat bounds ?bloat=MB.
	MaxBloat = 1024
)

// Autoscale is Knative's autoscale-go sample: each request consumes time,
// CPU and memory as its query parameters say, all three in parallel,
// and reports what it did one line each:
//
//	?sleep=MS  sleeps MS milliseconds ("Slept for 100.12 milliseconds.")
//	?prime=N   computes the primes below N ("The largest prime less than 10 is 7.")
//	?bloat=MB  allocates and touches MB megabytes ("Allocated 5 Mb of memory.")
//
// A missing or zero parameter does nothing; a malformed, negative or too
// large one is a 400.
func Autoscale() http.Handler {
	return http.HandlerFunc(serveAutoscale)
}

func serveAutoscale(w http.ResponseWriter, r *http.Request) {
	var ms, n, mb int
	for _, p := range []struct {
		name  string
		limit int
		dst   *int
	}{
		{"sleep", MaxSleep, &ms},
		{"prime", MaxPrime, &n},
		{"bloat", MaxBloat, &mb},
	} {
		v, err := intParam(r, p.name, p.limit)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		*p.dst = v
	}

	// Each result has its own slot, so the work runs in parallel and the
	// lines still come out in a fixed order.
	var lines [3]string
	var wg sync.WaitGroup
	if ms > 0 {
		wg.Go(func() { lines[0] = sleep(r.Context(), time.Duration(ms)*time.Millisecond) })
	}
	if n > 0 {
		wg.Go(func() { lines[1] = prime(n) })
	}
	if mb > 0 {
		wg.Go(func() { lines[2] = bloat(mb) })
	}
	wg.Wait()

	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	for _, l := range lines {
		if l != "" {
			fmt.Fprintln(w, l)
		}
	}
}

// intParam reads a query parameter in [0, limit]; absent is 0.
func intParam(r *http.Request, name string, limit int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 || v > limit {
		return 0, fmt.Errorf("%s=%q: want an integer from 0 to %d", name, s, limit)
	}
	return v, nil
}

// sleep waits d, or less when the client goes away, and says how long it
// slept.
func sleep(ctx context.Context, d time.Duration) string {
	start := time.Now()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return fmt.Sprintf("Slept for %.2f milliseconds.", float64(time.Since(start))/float64(time.Millisecond))
}

// prime finds the largest prime below n.
func prime(n int) string {
	if p := largestPrimeBelow(n); p > 0 {
		return fmt.Sprintf("The largest prime less than %d is %d.", n, p)
	}
	return fmt.Sprintf("There are no primes smaller than %d.", n)
}

// largestPrimeBelow sieves the numbers below n (Eratosthenes) and returns
// the largest prime among them, 0 if there is none. The sieve is the point:
// it costs CPU and memory in proportion to n, as the sample's load should.
func largestPrimeBelow(n int) int {
	if n <= 2 {
		return 0
	}
	composite := make([]bool, n)
	for i := 2; i*i < n; i++ {
		if composite[i] {
			continue
		}
		for j := i * i; j < n; j += i {
			composite[j] = true
		}
	}
	for i := n - 1; i >= 2; i-- {
		if !composite[i] {
			return i
		}
	}
	return 0
}

// pageSize is the stride bloat writes at, so that every page is resident.
const pageSize = 4096

// bloat allocates mb megabytes and writes to every page of them, so that
// the memory is really used, not only reserved, until the reply is made.
func bloat(mb int) string {
	b := make([]byte, mb<<20)
	for i := 0; i < len(b); i += pageSize {
		b[i] = 1
	}
	runtime.KeepAlive(b)
	return fmt.Sprintf("Allocated %d Mb of memory.", mb)
}
