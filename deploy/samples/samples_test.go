package samples

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kgate/kgate/internal/testrun"
)

// get serves one request to h and returns the status and body.
func get(t *testing.T, h http.Handler, target string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec.Code, rec.Body.String()
}

func TestHelloworld(t *testing.T) {
	for _, tc := range []struct{ target, want string }{
		{"", "Hello World!\n"},
		{"Knative", "Hello Knative!\n"},
	} {
		env := func(k string) string {
			if k == "TARGET" {
				return tc.target
			}
			return ""
		}
		h, err := Handler(NameHelloworld, env)
		if err != nil {
			t.Fatal(err)
		}
		if code, body := get(t, h, "/any/path"); code != http.StatusOK || body != tc.want {
			t.Errorf("TARGET=%q: got %d %q, want 200 %q", tc.target, code, body, tc.want)
		}
	}
}

func TestAutoscale(t *testing.T) {
	h := Autoscale()
	tests := []struct {
		query    string
		wantCode int
		want     []string // the body's lines; a "~" prefix only checks the start
	}{
		{"", 200, nil},
		{"?prime=10", 200, []string{"The largest prime less than 10 is 7."}},
		{"?prime=10000", 200, []string{"The largest prime less than 10000 is 9973."}},
		{"?prime=2", 200, []string{"There are no primes smaller than 2."}},
		{"?bloat=5", 200, []string{"Allocated 5 Mb of memory."}},
		{"?sleep=20", 200, []string{"~Slept for "}},
		{"?sleep=20&prime=100&bloat=1", 200, []string{"~Slept for ", "The largest prime less than 100 is 97.", "Allocated 1 Mb of memory."}},
		{"?sleep=0&prime=0", 200, nil},
		{"?sleep=x", 400, []string{`sleep="x": want an integer from 0 to 3600000`}},
		{"?prime=-1", 400, []string{`prime="-1": want an integer from 0 to 100000000`}},
		{"?bloat=1025", 400, []string{`bloat="1025": want an integer from 0 to 1024`}},
	}
	for _, tc := range tests {
		code, body := get(t, h, "/"+tc.query)
		lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
		if body == "" {
			lines = nil
		}
		ok := code == tc.wantCode && len(lines) == len(tc.want)
		for i := 0; ok && i < len(lines); i++ {
			if prefix, found := strings.CutPrefix(tc.want[i], "~"); found {
				ok = strings.HasPrefix(lines[i], prefix)
			} else {
				ok = lines[i] == tc.want[i]
			}
		}
		if !ok {
			t.Errorf("%s: got %d %q, want %d %q", tc.query, code, body, tc.wantCode, tc.want)
		}
	}
}

func TestAutoscaleSleepsInParallel(t *testing.T) {
	start := time.Now()
	code, body := get(t, Autoscale(), "/?sleep=200&prime=1000000&bloat=10")
	if code != 200 || !strings.HasPrefix(body, "Slept for 2") {
		t.Fatalf("got %d %q", code, body)
	}
	// The sleep is at least as long as asked, and the other work overlaps it.
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("answered after %s, before the 200 ms sleep", d)
	}
}

func TestLargestPrimeBelow(t *testing.T) {
	for n, want := range map[int]int{0: 0, 1: 0, 2: 0, 3: 2, 4: 3, 8: 7, 12: 11, 98: 97, 7920: 7919, 7919: 7907} {
		if got := largestPrimeBelow(n); got != want {
			t.Errorf("largestPrimeBelow(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestHandlerUnknown(t *testing.T) {
	_, err := Handler("nope", func(string) string { return "" })
	if err == nil || err.Error() != `no sample "nope": the samples are autoscale, helloworld` {
		t.Fatalf("got %v", err)
	}
}

func TestAddress(t *testing.T) {
	for port, want := range map[string]string{
		"":             "127.0.0.1:8080",
		"9000":         "127.0.0.1:9000",
		":9000":        ":9000",
		"0.0.0.0:9000": "0.0.0.0:9000",
	} {
		if got := Address(port); got != want {
			t.Errorf("Address(%q) = %q, want %q", port, got, want)
		}
	}
}

// TestServeDrains stops a server while a slow request is in flight: the
// request completes, new connections are refused, and Serve returns nil.
func TestServeDrains(t *testing.T) {
	lis := testrun.Listen(t)
	ctx, cancel := context.WithCancel(t.Context())
	arrived := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		Autoscale().ServeHTTP(w, r)
	})
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, lis, h, 10*time.Second) }()

	url := "http://" + lis.Addr().String()
	answered := make(chan string, 1)
	go func() {
		resp, err := http.Get(url + "/?sleep=300")
		if err != nil {
			answered <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answered <- string(b)
	}()
	<-arrived
	cancel()

	if body := <-answered; !strings.HasPrefix(body, "Slept for 3") {
		t.Errorf("the request in flight got %q", body)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := net.DialTimeout("tcp", lis.Addr().String(), time.Second); err == nil {
		t.Error("the listener still accepts connections after draining")
	}
}
