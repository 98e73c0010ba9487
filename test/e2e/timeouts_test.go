package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kgate/kgate/internal/pacer"
)

// pacerEnv, set to "1", makes this test binary the pacer application
// instead of running the tests: the timeouts test maps an image to the
// test binary itself and sets it in the container's env, which spares
// building an application for the suite.
const pacerEnv = "KGATE_E2E_PACER"

func init() {
	if os.Getenv(pacerEnv) == "1" {
		if err := servePacer(); err != nil {
			fmt.Fprintln(os.Stderr, "pacer:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// servePacer serves the pacer application (internal/pacer) on $PORT. It
// runs until kgate stops it.
func servePacer() error {
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		return err
	}
	return http.Serve(ln, http.HandlerFunc(pacer.ServeHTTP))
}

// The three revision timeouts on both paths of kgate local: straight to
// the pods (target-burst-capacity 0, Serve) and through the activator
// (target-burst-capacity -1, Proxy), with an application answering after
// 3 s or pausing 3 s in the middle of its response (docs/timeouts.md).
func TestRevisionTimeouts(t *testing.T) {
	svc := func(name, tbc, timeouts string) string {
		return strings.NewReplacer("NAME", name, "TBC", tbc, "TIMEOUTS", timeouts, "ENV", pacerEnv).Replace(`apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: NAME
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/target-burst-capacity: "TBC"
        autoscaling.knative.dev/min-scale: "1"
    spec:
      TIMEOUTS
      containers:
        - image: kgate.dev/e2e/pacer
          env:
            - name: ENV
              value: "1"
`)
	}
	timeouts := map[string]string{
		"start":   "responseStartTimeoutSeconds: 2",
		"idle":    "idleTimeoutSeconds: 2",
		"timeout": "timeoutSeconds: 2",
	}
	paths := map[string]string{"direct": "0", "activator": "-1"}
	manifests := map[string]string{}
	for kind, spec := range timeouts {
		for path, tbc := range paths {
			name := kind + "-" + path
			manifests[name+".yaml"] = svc(name, tbc, spec)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	k := startKgate(t, manifests, "--image", "kgate.dev/e2e/pacer="+exe)
	for name := range manifests {
		name = strings.TrimSuffix(name, ".yaml")
		k.ready(name, host(name), "ab", 60*time.Second)
	}
	k.eventually("the routing modes settle", 30*time.Second, func() error {
		got := k.revisions()
		for kind := range timeouts {
			for path, want := range map[string]string{"direct": "Serve", "activator": "Proxy"} {
				if rev := kind + "-" + path + "-00001"; got[rev].Mode != want {
					return fmt.Errorf("%s: mode %q, want %s", rev, got[rev].Mode, want)
				}
			}
		}
		return nil
	})

	cases := []struct {
		name, service, path string
		status              int
		body                string
		cut                 bool
		// activator is what the activator answers itself, reached
		// without the gateway (whose own timers fire first in front of
		// it): the 504's body, or "" for the same answer as the gateway.
		activator string
	}{
		{"responseStartTimeoutSeconds 2, an answer after 3 s: 504", "start", "/?delay=3s", 504, "", false,
			"did not start responding within the revision's response start timeout (2s)"},
		{"idleTimeoutSeconds 2, a 3 s pause in the response: cut", "idle", "/?pause=3s", 200, "a", true, ""},
		{"timeoutSeconds 2, an answer after 3 s: 504", "timeout", "/?delay=3s", 504, "", false,
			"did not start responding within the revision's timeout (2s)"},
		{"timeoutSeconds 2, a response still under way at 2 s: cut", "timeout", "/?pause=3s", 200, "a", true, ""},
	}
	activator := k.flag("--activator-address")
	t.Run("group", func(t *testing.T) {
		for _, tc := range cases {
			for _, path := range []string{"direct", "activator", "activator alone"} {
				t.Run(path+"/"+tc.name, func(t *testing.T) {
					t.Parallel()
					var got timedResult
					if path == "activator alone" {
						// As the gateway sends it, the revision named.
						got = k.timed(t, activator, host(tc.service+"-activator"), tc.path, http.Header{
							"Knative-Serving-Namespace": {"default"}, "Knative-Serving-Revision": {tc.service + "-activator-00001"},
						})
					} else {
						got = k.timed(t, k.http, host(tc.service+"-"+path), tc.path, nil)
					}
					t.Logf("%s: %v", path, got)
					body := tc.body
					if path == "activator alone" && tc.activator != "" {
						body = tc.activator
					}
					if got.status != tc.status || got.cut != tc.cut || !strings.Contains(got.body, body) {
						t.Errorf("got %v, want %d %q cut=%v", got, tc.status, body, tc.cut)
					}
					if got.took < 1900*time.Millisecond || got.took > 2900*time.Millisecond {
						t.Errorf("ended after %v, want about 2s", got.took)
					}
				})
			}
		}
	})
}

// flag returns the value kgate local was given for name.
func (k *kgate) flag(name string) string {
	k.t.Helper()
	for i, a := range k.args {
		if a == name && i+1 < len(k.args) {
			return k.args[i+1]
		}
	}
	k.t.Fatalf("kgate local has no %s", name)
	return ""
}

// timedResult is what a client saw and when: a status and body, or a
// response cut after its headers.
type timedResult struct {
	status int
	body   string
	cut    bool
	took   time.Duration
}

func (r timedResult) String() string {
	return fmt.Sprintf("%d %q cut=%v after %v", r.status, r.body, r.cut, r.took.Round(10*time.Millisecond))
}

// timed sends a GET for host+path with header to addr and reads the whole
// response.
func (k *kgate) timed(t *testing.T, addr, host, path string, header http.Header) timedResult {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for name, values := range header {
		req.Header[name] = values
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", host, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	r := timedResult{status: resp.StatusCode, body: string(body), took: time.Since(start)}
	if err != nil {
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("GET %s%s: reading the body: %v", host, path, err)
		}
		r.cut = true
	}
	return r
}
