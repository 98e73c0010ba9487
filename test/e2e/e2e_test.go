// Package e2e drives the real kgate binary as a user does: `kgate local`
// on a folder of the seeds' manifests, requests through its external
// listener, `kgate get` to watch revisions scale, and Ctrl-C at the end
// (every test checks that no process outlives it).
package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fastAutoscaler shortens Knative's windows so that scaling shows within
// seconds: a 6 s stable window (Knative's minimum) and a 2 s grace period
// before scale to zero.
const fastAutoscaler = `apiVersion: v1
kind: ConfigMap
metadata:
  name: config-autoscaler
  namespace: knative-serving
data:
  stable-window: "6s"
  scale-to-zero-grace-period: "2s"
`

func example(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(repoFile(t, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func host(name string) string { return name + ".default.127.0.0.1.nip.io" }

// load sends requests from workers in parallel until ctx ends and counts
// the answers by body and the failures.
type load struct {
	mu       sync.Mutex
	bodies   map[string]int
	failures []string
	total    atomic.Int64
	// wait returns once every worker has stopped.
	wait func()
}

func runLoad(ctx context.Context, k *kgate, workers int, hostname, path string) *load {
	l := &load{bodies: map[string]int{}}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				code, body, err := k.request(context.WithoutCancel(ctx), hostname, path)
				l.total.Add(1)
				l.mu.Lock()
				if err != nil || code != http.StatusOK {
					l.failures = append(l.failures, fmt.Sprintf("%d %q %v", code, body, err))
				} else {
					l.bodies[body]++
				}
				l.mu.Unlock()
			}
		}()
	}
	l.wait = wg.Wait
	return l
}

func TestHelloWorld(t *testing.T) {
	k := startKgate(t, map[string]string{"hello.yaml": example(t, "examples/hello.yaml")})
	k.ready("hello", host("hello"), "Hello World!", 60*time.Second)

	// The Host header with a port, as curl sends it for :8080.
	_, port, _ := strings.Cut(k.http, ":")
	if code, body, err := k.request(context.Background(), host("hello")+":"+port, "/"); err != nil || code != 200 || body != "Hello World!" {
		t.Errorf("with the port in Host: %d %q %v", code, body, err)
	}
	// Cluster-local names answer on the internal listener only.
	k2 := *k
	k2.http = k.internal
	if code, body, err := k2.request(context.Background(), "hello.default.svc.cluster.local", "/"); err != nil || code != 200 || body != "Hello World!" {
		t.Errorf("cluster-local on the internal listener: %d %q %v", code, body, err)
	}
	if code, _, _ := k.request(context.Background(), "hello.default.svc.cluster.local", "/"); code != http.StatusNotFound {
		t.Errorf("cluster-local on the external listener: %d, want 404", code)
	}
	if code, _, _ := k.request(context.Background(), host("nobody"), "/"); code != http.StatusNotFound {
		t.Errorf("an unknown host: %d, want 404", code)
	}
	if out := k.table("ksvc"); !strings.Contains(out, "http://hello.default.127.0.0.1.nip.io") {
		t.Errorf("kgate get ksvc:\n%s", out)
	}

	// An invalid edit is reported on the object while the last good
	// version keeps serving.
	k.write("hello.yaml", strings.Replace(example(t, "examples/hello.yaml"), "containerPort: 8080", "containerPort: 99999", 1))
	k.eventually("the invalid edit shows on the Service", 10*time.Second, func() error {
		svc, err := k.get("ksvc", "hello")
		if err != nil {
			return err
		}
		if condition(svc, "Ready") != "False" {
			return fmt.Errorf("Ready is %q", condition(svc, "Ready"))
		}
		return nil
	})
	if code, body, err := k.request(context.Background(), host("hello"), "/"); err != nil || code != 200 || body != "Hello World!" {
		t.Errorf("after an invalid edit the last good version serves: %d %q %v", code, body, err)
	}
}

// Seed 004: hello, then a named revision taking 50 % beside hello-00001,
// then min 1 / max 5 pods at target 1.
func TestSeed004RevisionsSplitAndBounds(t *testing.T) {
	k := startKgate(t, map[string]string{"autoscaler.yaml": fastAutoscaler, "hello.yaml": example(t, "examples/seed004/hello.yaml")})
	k.ready("hello", host("hello"), "Hello Knative!", 60*time.Second)

	k.write("hello.yaml", example(t, "examples/seed004/hello-knative-v2.yaml"))
	k.eventually("hello-knative-v2 serves", 60*time.Second, func() error {
		_, body, err := k.request(context.Background(), host("hello"), "/")
		if err != nil || body != "Hello Knative V2!" {
			return fmt.Errorf("%q %v", body, err)
		}
		return nil
	})
	counts := map[string]int{}
	for range 1000 {
		code, body, err := k.request(context.Background(), host("hello"), "/")
		if err != nil || code != 200 {
			t.Fatalf("request failed: %d %q %v", code, body, err)
		}
		counts[body]++
	}
	t.Logf("50/50 split over 1,000 requests: %v", counts)
	for _, body := range []string{"Hello Knative!", "Hello Knative V2!"} {
		if n := counts[body]; n < 400 || n > 600 {
			t.Errorf("%q got %d of 1,000, want 500 ± 100", body, n)
		}
	}
	if out := k.table("revisions"); !strings.Contains(out, "hello-knative-v2") || !strings.Contains(out, "hello-00001") {
		t.Errorf("kgate get revisions:\n%s", out)
	}

	k.write("hello.yaml", example(t, "examples/seed004/hello-knative-v3.yaml"))
	k.ready("hello", host("hello"), "Hello Knative V3!", 60*time.Second)
	// Target 1 under 50 concurrent requests wants 50 pods; max-scale caps 5.
	ctx, stop := context.WithTimeout(context.Background(), 30*time.Second)
	l := runLoad(ctx, k, 50, host("hello"), "/")
	k.eventually("hello-knative-v3 runs 5 pods", 30*time.Second, func() error {
		if s := k.revisions()["hello-knative-v3"]; s.Actual != 5 {
			return fmt.Errorf("%+v", s)
		}
		return nil
	})
	stop()
	l.wait()
	if s := k.revisions()["hello-knative-v3"]; s.Desired > 5 || s.Actual > 5 {
		t.Errorf("max-scale 5: %+v", s)
	}
	if len(l.failures) > 0 {
		t.Errorf("%d of %d requests failed under load, e.g. %s", len(l.failures), l.total.Load(), l.failures[0])
	}
	// Idle well past the stable window and the grace period: min-scale 1
	// keeps a pod.
	time.Sleep(15 * time.Second)
	if s := k.revisions()["hello-knative-v3"]; s.Actual != 1 {
		t.Errorf("min-scale 1 after 15 s idle: %+v, want 1 pod", s)
	}
}

// Scale to zero after the load stops, then a cold request is held by the
// activator and answered; its latency is reported.
func TestScaleToZeroAndColdStart(t *testing.T) {
	k := startKgate(t, map[string]string{"autoscaler.yaml": fastAutoscaler, "hello.yaml": example(t, "examples/hello.yaml")})
	k.ready("hello", host("hello"), "Hello World!", 60*time.Second)
	k.eventually("hello-00001 scales to zero", 60*time.Second, func() error {
		if s := k.revisions()["hello-00001"]; s.Actual != 0 || s.Mode != "Proxy" {
			return fmt.Errorf("%+v", s)
		}
		return nil
	})
	start := time.Now()
	code, body, err := k.request(context.Background(), host("hello"), "/")
	took := time.Since(start)
	if err != nil || code != 200 || body != "Hello World!" {
		t.Fatalf("cold request: %d %q %v", code, body, err)
	}
	t.Logf("cold start: the first request at zero pods took %v", took)
	if s := k.revisions()["hello-00001"]; s.Actual < 1 {
		t.Errorf("after the cold request: %+v", s)
	}
}

// Target burst capacity decides the routing mode: -1 keeps the activator
// in the path, 0 sends traffic straight to the pods once they are ready,
// and the default (211) keeps the activator while one pod's capacity is
// below the burst capacity.
func TestTargetBurstCapacityModes(t *testing.T) {
	svc := func(name, tbc string) string {
		return strings.NewReplacer("NAME", name, "TBC", tbc).Replace(`apiVersion: serving.knative.dev/v1
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
      containers:
        - image: gcr.io/knative-samples/helloworld-go
`)
	}
	k := startKgate(t, map[string]string{
		"minus-one.yaml": svc("minus-one", "-1"), "zero.yaml": svc("zero", "0"), "default.yaml": svc("default-tbc", "211"),
	})
	for _, name := range []string{"minus-one", "zero", "default-tbc"} {
		k.ready(name, host(name), "Hello World!", 60*time.Second)
	}
	want := map[string]string{"minus-one-00001": "Proxy", "zero-00001": "Serve", "default-tbc-00001": "Proxy"}
	k.eventually("the modes settle", 20*time.Second, func() error {
		got := k.revisions()
		for rev, mode := range want {
			if got[rev].Mode != mode {
				return fmt.Errorf("%s: mode %q, want %s (all: %+v)", rev, got[rev].Mode, mode, got)
			}
		}
		return nil
	})
	if out := k.table("revisions"); !strings.Contains(out, "MODE") || !strings.Contains(out, "Serve") {
		t.Errorf("kgate get revisions:\n%s", out)
	}
}

// Rolling to a new revision under continuous load fails no request.
func TestRolloutUnderLoad(t *testing.T) {
	k := startKgate(t, map[string]string{"hello.yaml": example(t, "examples/hello.yaml")})
	k.ready("hello", host("hello"), "Hello World!", 60*time.Second)
	ctx, stop := context.WithCancel(context.Background())
	l := runLoad(ctx, k, 8, host("hello"), "/")
	time.Sleep(time.Second)
	k.write("hello.yaml", strings.Replace(example(t, "examples/hello.yaml"), `value: "World"`, `value: "Rollout"`, 1))
	k.eventually("the new revision serves", 60*time.Second, func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.bodies["Hello Rollout!"] == 0 {
			return fmt.Errorf("answers so far: %v", l.bodies)
		}
		return nil
	})
	time.Sleep(time.Second)
	stop()
	l.wait()
	t.Logf("%d requests during the rollout: %v", l.total.Load(), l.bodies)
	if len(l.failures) > 0 {
		t.Errorf("%d of %d requests failed during the rollout, e.g. %s", len(l.failures), l.total.Load(), l.failures[0])
	}
}

// Concurrency autoscaling with Knative's autoscale sample: 50 requests in
// flight at target 10 and 100 % utilization run 5 pods (seed 002's figure).
func TestConcurrencyAutoscaling(t *testing.T) {
	const svc = `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: autoscale
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/target: "10"
        autoscaling.knative.dev/target-utilization-percentage: "100"
    spec:
      containers:
        - image: gcr.io/knative-samples/autoscale-go:0.1
`
	k := startKgate(t, map[string]string{"autoscaler.yaml": fastAutoscaler, "autoscale.yaml": svc})
	k.eventually("the autoscale sample answers", 60*time.Second, func() error {
		code, _, err := k.request(context.Background(), host("autoscale"), "/?sleep=10")
		if err != nil || code != 200 {
			return fmt.Errorf("%d %v", code, err)
		}
		return nil
	})
	ctx, stop := context.WithTimeout(context.Background(), 45*time.Second)
	defer stop()
	l := runLoad(ctx, k, 50, host("autoscale"), "/?sleep=200")
	k.eventually("5 pods under 50 in flight", 40*time.Second, func() error {
		if s := k.revisions()["autoscale-00001"]; s.Actual != 5 {
			return fmt.Errorf("%+v", s)
		}
		return nil
	})
	stop()
	l.wait()
	if len(l.failures) > 0 {
		t.Errorf("%d of %d requests failed, e.g. %s", len(l.failures), l.total.Load(), l.failures[0])
	}
}

func seed(t *testing.T, name string) string {
	t.Helper()
	return example(t, "api/manifest/testdata/seeds/"+name)
}

// trafficOf returns a Service's status traffic as "revision=percent".
func trafficOf(svc map[string]any) []string {
	status, _ := svc["status"].(map[string]any)
	traffic, _ := status["traffic"].([]any)
	var out []string
	for _, tr := range traffic {
		m, _ := tr.(map[string]any)
		p, _ := m["percent"].(float64)
		out = append(out, fmt.Sprintf("%v=%v", m["revisionName"], p))
	}
	return out
}

// Every seed manifest, verbatim, in the tutorials' order (the two garbled
// ones as their pages left them, then repaired).
func TestEverySeedManifest(t *testing.T) {
	k := startKgate(t, map[string]string{"hello.yaml": seed(t, "000-case1-hello.yaml")})
	k.ready("hello", host("hello"), "Hello World!", 60*time.Second)
	for i, file := range []string{"000-case2-hello-target.yaml", "000-case3-hello-target-utilization-repaired.yaml"} {
		k.write("hello.yaml", seed(t, file))
		rev := fmt.Sprintf("hello-%05d", i+2)
		k.eventually(file+" creates "+rev, 60*time.Second, func() error {
			svc, err := k.get("ksvc", "hello")
			if err != nil {
				return err
			}
			status, _ := svc["status"].(map[string]any)
			if status["latestReadyRevisionName"] != rev {
				return fmt.Errorf("latest ready %v", status["latestReadyRevisionName"])
			}
			return nil
		})
		k.ready("hello", host("hello"), "Hello World!", 30*time.Second)
	}

	// Seed 000 case 3 as its page garbled it: the error names the
	// non-breaking spaces, and the last good version keeps serving.
	k.write("hello.yaml", seed(t, "000-case3-hello-target-utilization-garbled.yaml"))
	k.eventually("the garbled case 3 is reported", 10*time.Second, func() error {
		if !strings.Contains(k.logs.String(), "non-breaking spaces") {
			return fmt.Errorf("no mention of the non-breaking spaces in the log")
		}
		return nil
	})
	k.ready("hello", host("hello"), "Hello World!", 10*time.Second)

	k.write("hello.yaml", seed(t, "000-case4-hello-traffic.yaml"))
	k.eventually("case 4 splits 50/50 between the latest revision and hello-00001", 60*time.Second, func() error {
		svc, err := k.get("ksvc", "hello")
		if err != nil {
			return err
		}
		if got := strings.Join(trafficOf(svc), " "); got != "hello-00004=50 hello-00001=50" {
			return fmt.Errorf("traffic %s", got)
		}
		return nil
	})
	k.ready("hello", host("hello"), "Hello World!", 30*time.Second)

	// Seed 002, garbled (its line breaks lost), then repaired.
	k.write("helloworld-go.yaml", seed(t, "002-helloworld-go-garbled.yaml"))
	k.eventually("the garbled seed 002 is reported with file and line", 10*time.Second, func() error {
		if !strings.Contains(k.logs.String(), "helloworld-go.yaml") || !strings.Contains(k.logs.String(), "invalid YAML") {
			return fmt.Errorf("not in the log")
		}
		return nil
	})
	k.write("helloworld-go.yaml", seed(t, "002-helloworld-go-repaired.yaml"))
	k.ready("helloworld-go", host("helloworld-go"), "Hello World!", 60*time.Second)
}

// Seed 003's v1alpha1 Services run once their image is mapped to a
// command; an unmapped image leaves the revision not Ready, saying how to
// map it.
func TestSeed003V1alpha1(t *testing.T) {
	k := startKgate(t, map[string]string{
		"csharp.yaml": seed(t, "003-helloworld-csharp-v1alpha1.yaml"),
		"twilio.yaml": seed(t, "003-twilio-csharp-v1alpha1.yaml"),
	}, "--image", "helloworld-csharp="+kgateBin+" sample helloworld")
	k.ready("helloworld-csharp", host("helloworld-csharp"), "Hello C# Sample v1!", 60*time.Second)

	k.eventually("twilio-csharp's revision says how to map its image", 30*time.Second, func() error {
		rev, err := k.get("revision", "twilio-csharp-00001")
		if err != nil {
			return err
		}
		status, _ := rev["status"].(map[string]any)
		conds, _ := status["conditions"].([]any)
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Ready" && m["status"] == "False" && strings.Contains(fmt.Sprint(m["message"]), "--image") {
				return nil
			}
		}
		return fmt.Errorf("conditions %v", conds)
	})

	// The release names a candidate that does not exist: the Route says
	// so and the current revision keeps serving.
	k.write("csharp.yaml", seed(t, "003-helloworld-csharp-release-v1alpha1.yaml"))
	k.eventually("the release's missing candidate is reported", 30*time.Second, func() error {
		rt, err := k.get("route", "helloworld-csharp")
		if err != nil {
			return err
		}
		if condition(rt, "Ready") != "False" {
			return fmt.Errorf("Ready %q", condition(rt, "Ready"))
		}
		return nil
	})
	if code, body, err := k.request(context.Background(), host("helloworld-csharp"), "/"); err != nil || code != 200 || body != "Hello C# Sample v1!" {
		t.Errorf("during the broken release: %d %q %v", code, body, err)
	}
}

// Ctrl-C lets a request in flight complete before anything stops.
func TestCtrlCCompletesInFlightRequests(t *testing.T) {
	const svc = `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: slow
spec:
  template:
    spec:
      containers:
        - image: gcr.io/knative-samples/autoscale-go:0.1
`
	k := startKgate(t, map[string]string{"slow.yaml": svc})
	k.eventually("the sample answers", 60*time.Second, func() error {
		code, _, err := k.request(context.Background(), host("slow"), "/?sleep=1")
		if err != nil || code != 200 {
			return fmt.Errorf("%d %v", code, err)
		}
		return nil
	})
	type answer struct {
		code int
		body string
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		code, body, err := k.request(context.Background(), host("slow"), "/?sleep=1500")
		done <- answer{code, body, err}
	}()
	time.Sleep(300 * time.Millisecond)
	if err := k.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	a := <-done
	if a.err != nil || a.code != 200 || slept(a.body) < 1500 {
		t.Errorf("the request in flight at Ctrl-C: %d %q %v", a.code, a.body, a.err)
	}
}
