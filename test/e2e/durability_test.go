package e2e

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A Service sending 50 % to its latest revision and 50 % to a pinned
// split-00001, whose template then changed: split-00001 is v1, split-00002
// v2 (seed 000 case 4's pattern).
var (
	splitV1 = hello("split", "v1")
	splitV2 = hello("split", "v2") + `  traffic:
    - latestRevision: true
      percent: 50
    - revisionName: split-00001
      percent: 50
`
)

const (
	// echo-v3 takes all the traffic; echo-v2 stays reachable at 0 % under
	// the tag canary.
	echoV2 = `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: echo
spec:
  template:
    metadata:
      name: echo-v2
    spec:
      containers:
        - image: gcr.io/knative-samples/helloworld-go
          env:
            - name: TARGET
              value: v2
`
	echoV3 = `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: echo
spec:
  template:
    metadata:
      name: echo-v3
    spec:
      containers:
        - image: gcr.io/knative-samples/helloworld-go
          env:
            - name: TARGET
              value: v3
  traffic:
    - latestRevision: true
      percent: 100
    - revisionName: echo-v2
      percent: 0
      tag: canary
`
)

// interrupt stops kgate local with Ctrl-C and waits for it to exit.
func (k *kgate) interrupt() {
	k.t.Helper()
	_ = k.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-k.exited:
		if err != nil {
			k.t.Fatalf("kgate local exited with %v after Ctrl-C", err)
		}
	case <-time.After(45 * time.Second):
		k.t.Fatal("kgate local did not exit within 45 s of Ctrl-C")
	}
}

// kill9 kills kgate local with SIGKILL and checks that no replica it
// started outlives it by more than 5 s.
func (k *kgate) kill9() {
	k.t.Helper()
	_ = k.cmd.Process.Kill()
	<-k.exited
	killed := time.Now()
	for left := processesOf(kgateBin); len(left) > 0; left = processesOf(kgateBin) {
		if time.Since(killed) > 5*time.Second {
			for _, pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			k.t.Fatalf("replicas %v outlived kill -9 of kgate local by more than 5 s", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	k.t.Logf("every replica gone %s after kill -9", time.Since(killed).Round(time.Millisecond))
}

// split sends n requests to host and counts the answers by body; every
// request must answer 200.
func (k *kgate) split(host string, n int) (map[string]int, error) {
	counts := map[string]int{}
	for range n {
		code, body, err := k.request(context.Background(), host, "/")
		if err != nil || code != 200 {
			return nil, fmt.Errorf("request to %s: %d %q %v", host, code, body, err)
		}
		counts[body]++
	}
	return counts, nil
}

// wantSplit waits until the Service is Ready and host answers both bodies
// about half the time each.
func (k *kgate) wantSplit(when, host string, bodies ...string) {
	k.t.Helper()
	k.eventually(when+": the split serves", 60*time.Second, func() error {
		svc, err := k.get("ksvc", strings.SplitN(host, ".", 2)[0])
		if err != nil {
			return err
		}
		if s := condition(svc, "Ready"); s != "True" {
			return fmt.Errorf("Ready is %q", s)
		}
		counts, err := k.split(host, 200)
		if err != nil {
			return err
		}
		for _, b := range bodies {
			if n := counts[b]; n < 60 || n > 140 {
				return fmt.Errorf("%q got %d of 200, want 100 ± 40; all: %v", b, n, counts)
			}
		}
		return nil
	})
}

// Pinned traffic keeps its revisions across a restart and a kill -9: the
// revision names keep the templates they were made from.
func TestRestartKeepsPinnedTraffic(t *testing.T) {
	k := startKgate(t, map[string]string{"split.yaml": splitV1})
	k.ready("split", host("split"), "Hello v1!", 60*time.Second)
	k.write("split.yaml", splitV2)
	k.wantSplit("before a restart", host("split"), "Hello v1!", "Hello v2!")

	k.interrupt()
	k.launch()
	k.wantSplit("after Ctrl-C and a restart", host("split"), "Hello v1!", "Hello v2!")

	k.kill9()
	k.launch()
	k.wantSplit("after kill -9 and a restart", host("split"), "Hello v1!", "Hello v2!")
	if out := k.table("revisions"); !strings.Contains(out, "split-00001") || !strings.Contains(out, "split-00002") || strings.Contains(out, "split-00003") {
		t.Errorf("kgate get revisions after the restarts, want split-00001 and split-00002 only:\n%s", out)
	}

	// A template changed while kgate was stopped makes a new revision; the
	// pinned one keeps its template.
	k.interrupt()
	k.write("split.yaml", strings.Replace(splitV2, "value: v2", "value: v3", 1))
	k.launch()
	k.wantSplit("after an edit while stopped", host("split"), "Hello v1!", "Hello v3!")
}

// A revision at 0 % under a tag keeps serving its tag across a restart.
func TestRestartKeepsTaggedRevision(t *testing.T) {
	k := startKgate(t, map[string]string{"echo.yaml": echoV2})
	k.ready("echo", host("echo"), "Hello v2!", 60*time.Second)
	k.write("echo.yaml", echoV3)
	k.ready("echo", host("echo"), "Hello v3!", 60*time.Second)
	check := func(when string) {
		k.eventually(when+": the canary tag serves echo-v2", 60*time.Second, func() error {
			code, body, err := k.request(context.Background(), host("canary-echo"), "/")
			if err != nil || code != 200 || body != "Hello v2!" {
				return fmt.Errorf("%d %q %v", code, body, err)
			}
			return nil
		})
		for range 20 {
			if code, body, err := k.request(context.Background(), host("echo"), "/"); err != nil || code != 200 || body != "Hello v3!" {
				t.Fatalf("%s: echo answered %d %q %v, want Hello v3!", when, code, body, err)
			}
		}
	}
	check("before a restart")
	k.interrupt()
	k.launch()
	k.ready("echo", host("echo"), "Hello v3!", 60*time.Second)
	check("after Ctrl-C and a restart")
	k.kill9()
	k.launch()
	k.ready("echo", host("echo"), "Hello v3!", 60*time.Second)
	check("after kill -9 and a restart")
}

// processesRunning lists the pids whose command line is exactly argv.
func processesRunning(argv ...string) []int {
	want := strings.Join(argv, "\x00") + "\x00"
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && string(cmdline) == want {
			pids = append(pids, pid)
		}
	}
	return pids
}

// What a replica started in its process group, and that survived kill -9
// of kgate local (the kernel's parent-death signal reaches the replica
// only), is stopped by the next start, before any replica runs.
func TestRestartReapsWhatACrashLeft(t *testing.T) {
	leftover := []string{"sleep", "31337"}
	svc := `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: forks
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/min-scale: "1"
    spec:
      containers:
        - image: example.com/forks
          command: ["sh", "-c", "sleep 31337 & exec ` + kgateBin + ` sample helloworld"]
`
	k := startKgate(t, map[string]string{"forks.yaml": svc})
	t.Cleanup(func() {
		for _, pid := range processesRunning(leftover...) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	k.ready("forks", host("forks"), "Hello World!", 60*time.Second)
	before := processesRunning(leftover...)
	if len(before) != 1 {
		t.Fatalf("the replica's child: %v, want one", before)
	}
	k.kill9()
	if got := processesRunning(leftover...); !slices.Contains(got, before[0]) {
		t.Fatalf("after kill -9 the replica's child: %v, want %d still running (it is what the restart must stop)", got, before[0])
	}
	k.launch()
	k.eventually("the restart stops what the crash left", 10*time.Second, func() error {
		if got := processesRunning(leftover...); slices.Contains(got, before[0]) {
			return fmt.Errorf("pid %d still runs", before[0])
		}
		return nil
	})
	if !strings.Contains(k.logs.String(), "stopped replicas a crashed run left running") {
		t.Errorf("the restart did not say it stopped the leftovers")
	}
}

// A request in flight when its Service's file is deleted completes: the
// replica leaves the endpoints, and is stopped only once nothing is in
// flight to it.
func TestRemovalCompletesRequestsInFlight(t *testing.T) {
	svc := `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: slow
spec:
  template:
    spec:
      containers:
        - image: example.com/slow
          # An app that exits at once on SIGTERM, as most do: only kgate's
          # wait keeps its request alive.
          command: ["` + kgateBin + `", "sample", "autoscale", "--drain-timeout", "0s"]
`
	k := startKgate(t, map[string]string{"slow.yaml": svc})
	k.eventually("slow answers", 60*time.Second, func() error {
		code, body, err := k.request(context.Background(), host("slow"), "/?sleep=1")
		if err != nil || code != 200 || !strings.Contains(body, "Slept for") {
			return fmt.Errorf("%d %q %v", code, body, err)
		}
		return nil
	})
	type answer struct {
		code int
		body string
		err  error
	}
	done := make(chan answer, 1)
	start := time.Now()
	go func() {
		code, body, err := k.request(context.Background(), host("slow"), "/?sleep=4000")
		done <- answer{code, body, err}
	}()
	time.Sleep(500 * time.Millisecond)
	if err := os.Remove(k.dir + "/slow.yaml"); err != nil {
		t.Fatal(err)
	}
	k.eventually("the Service is gone", 10*time.Second, func() error {
		if _, err := k.get("ksvc", "slow"); err == nil {
			return fmt.Errorf("still listed")
		}
		return nil
	})
	a := <-done
	if a.err != nil || a.code != 200 || slept(a.body) < 4000 {
		t.Errorf("the request in flight at the removal: %d %q %v after %s, want 200 having slept 4 s", a.code, a.body, a.err, time.Since(start).Round(time.Millisecond))
	}
	// And then the replica goes.
	k.eventually("the replica stops", 15*time.Second, func() error {
		if n := len(processesOf(kgateBin)); n > 1 {
			return fmt.Errorf("%d kgate processes (kgate local and replicas)", n)
		}
		return nil
	})
}

// sleptFor is the sample app's answer to ?sleep=N: "Slept for N.NN milliseconds".
var sleptFor = regexp.MustCompile(`Slept for ([0-9.]+) milliseconds`)

// slept is how long the sample app says it slept, in milliseconds; -1 for
// another answer. A loaded machine sleeps longer than asked, never less.
func slept(body string) float64 {
	m := sleptFor.FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	ms, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return -1
	}
	return ms
}
