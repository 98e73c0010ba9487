//go:build unix

package local

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kgate/kgate/translator/model"
)

// TestScaleHelloworld runs the seeds' hello world images, which the
// default image map serves with `kgate sample helloworld` (this test
// binary), from 0 to 2 to 1 to 0 replicas.
func TestScaleHelloworld(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	// Set aside for later, at zero.
	simple := f.start(t, newRevision("simple-00001", "simple", corev1.Container{
		Image: "registry.cn-hangzhou.aliyuncs.com/knative-sample/simple-app:07",
	}), 0)

	// 0 → 2: each replica's readiness is notified, on a port of its own.
	hello := f.start(t, newRevision("hello-00001", "hello", corev1.Container{
		Image: "m.daocloud.io/ghcr.io/knative/helloworld-go:latest",
		Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
		Env:   []corev1.EnvVar{env("TARGET", "Knative")},
	}), 2)
	if got := f.Replicas(hello); got != 2 {
		t.Errorf("Replicas = %d right after scaling to 2", got)
	}
	if n := len(f.nextChange(t)); n != 1 {
		t.Fatalf("first notification: %d ready", n)
	}
	eps := f.nextChange(t)
	if len(eps) != 2 || eps[0] == eps[1] {
		t.Fatalf("second notification: ready %v, want 2 endpoints", eps)
	}
	for _, ep := range eps {
		if body, err := get(ep, "/"); err != nil || body != "Hello Knative!\n" {
			t.Errorf("%v answered %q, %v", ep, body, err)
		}
	}
	_, pids := f.pids(t)

	// 2 → 1: the replica leaves Ready, notified, before Scale returns.
	if err := f.Scale(t.Context(), hello, 1); err != nil {
		t.Fatal(err)
	}
	if got := f.nextChange(t); len(got) != 1 || got[0] != eps[0] {
		t.Fatalf("after scaling to 1: ready %v, want the oldest, %v", got, eps[0])
	}
	waitFor(t, "the second replica's process to exit", func() bool { return !alive(pids["2"]) })
	if !alive(pids["1"]) {
		t.Fatal("the first replica's process exited too")
	}

	// The TARGET default, on another revision.
	if err := f.Scale(t.Context(), simple, 1); err != nil {
		t.Fatal(err)
	}
	if body, err := get(f.nextChange(t)[0], "/"); err != nil || body != "Hello World!\n" {
		t.Errorf("simple-app answered %q, %v", body, err)
	}

	// 1 → 0.
	if err := f.Scale(t.Context(), hello, 0); err != nil {
		t.Fatal(err)
	}
	if got := f.nextChange(t); len(got) != 0 {
		t.Fatalf("after scaling to 0: ready %v", got)
	}
	waitFor(t, "the first replica's process to exit", func() bool { return !alive(pids["1"]) })
	for _, r := range f.logs.find("replica stopped") {
		if r.attrs["exit"] != "exit status 0" {
			t.Errorf("replica %s stopped with %q, want a clean exit on SIGTERM", r.attrs["replica"], r.attrs["exit"])
		}
	}
	f.noChange(t)
}

// TestAutoscaleSample runs autoscale-go's image, served by `kgate sample
// autoscale`.
func TestAutoscaleSample(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	rev := f.start(t, newRevision("autoscale-go-00001", "autoscale-go", corev1.Container{
		Image: "gcr.io/knative-samples/autoscale-go:0.1",
	}), 1)
	body, err := get(f.ready(t, rev, 1)[0], "/?sleep=50&prime=10000&bloat=2")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "Slept for ") ||
		lines[1] != "The largest prime less than 10000 is 9973." || lines[2] != "Allocated 2 Mb of memory." {
		t.Errorf("got %q", body)
	}
}

// TestEnvironment checks what a replica's process gets: the container's
// env, PORT (its own port), Knative's K_ variables, and args with $(PORT)
// expanded.
func TestEnvironment(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	c := testApp("gated", env("TARGET", "Knative"))
	c.Args = []string{"--port=$(PORT)"}
	rev := f.start(t, newRevision("hello-00002", "hello", c), 1)
	ep := f.ready(t, rev, 1)[0]
	port := strconv.Itoa(int(ep.Port))
	for path, want := range map[string]string{
		"/env?name=PORT":            port,
		"/env?name=TARGET":          "Knative",
		"/env?name=K_SERVICE":       "hello",
		"/env?name=K_CONFIGURATION": "hello",
		"/env?name=K_REVISION":      "hello-00002",
		"/args":                     "testapp gated --port=" + port,
		"/":                         "Hello Knative!\n",
	} {
		if got, err := get(ep, path); err != nil || got != want {
			t.Errorf("%s: got %q, %v; want %q", path, got, err, want)
		}
	}
}

// TestReadinessProbeHTTP runs an app that listens at once but whose
// readinessProbe fails until a file exists: it is not ready until then,
// and not ready again once the file is gone.
func TestReadinessProbeHTTP(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	gate := filepath.Join(t.TempDir(), "ready")
	c := testApp("gated", env("READY_FILE", gate))
	c.ReadinessProbe = &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(8080)}},
		PeriodSeconds:    1,
		FailureThreshold: 1,
	}
	rev := f.start(t, newRevision("gated-00001", "gated", c), 1)
	// Serving, and probed several times, yet not ready.
	waitFor(t, "three probes", func() bool { return len(f.logs.find("probed")) >= 3 })
	port, _ := strconv.Atoi(f.logs.find("replica started")[0].attrs["port"])
	listening := model.Endpoint{Address: "127.0.0.1", Port: uint32(port)}
	if body, err := get(listening, "/"); err != nil || body != "Hello World!\n" {
		t.Fatalf("the app does not serve yet: %q, %v", body, err)
	}
	if eps := f.Ready(rev); len(eps) != 0 {
		t.Fatalf("ready %v before its readinessProbe passed", eps)
	}
	f.noChange(t)

	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := f.nextChange(t); len(got) != 1 || got[0] != listening {
		t.Fatalf("ready %v once the probe passes, want %v", got, listening)
	}
	if err := os.Remove(gate); err != nil {
		t.Fatal(err)
	}
	if got := f.nextChange(t); len(got) != 0 {
		t.Fatalf("ready %v once the probe fails again", got)
	}
}

// TestCrashLoop runs a command that exits at once: it is restarted with a
// doubling backoff, capped, and is never ready.
func TestCrashLoop(t *testing.T) {
	t.Parallel()
	backoffs := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond}
	f := newFixture(t, Options{RestartBackoff: backoffs[0], MaxRestartBackoff: backoffs[2]})
	rev := f.start(t, newRevision("crash-00001", "crash", testApp("exit")), 1)
	waitFor(t, "five starts", func() bool { return len(f.logs.find("replica started")) >= 5 })
	starts := f.logs.find("replica started")
	for i, want := range backoffs {
		if gap := starts[i+1].time.Sub(starts[i].time); gap < want {
			t.Errorf("restart %d came %s after the start before it, want at least the backoff %s", i+1, gap, want)
		}
	}
	restarts := f.logs.find("replica restarting")
	if len(restarts) == 0 || !strings.Contains(restarts[0].attrs["error"], "exited: exit status 3") ||
		restarts[0].attrs["in"] != "50ms" {
		t.Errorf("restart logged as %v", restarts)
	}
	if got := f.logs.find("exiting at once"); len(got) == 0 || got[0].attrs["stream"] != "stderr" || got[0].attrs["replica"] != "1" {
		t.Errorf("the process's output is not logged with its stream and replica: %v", got)
	}
	if eps := f.Ready(rev); len(eps) != 0 {
		t.Errorf("a crash-looping replica is ready: %v", eps)
	}
	f.noChange(t)
	if err := f.Scale(t.Context(), rev, 0); err != nil {
		t.Fatal(err)
	}
	if got := f.Replicas(rev); got != 0 {
		t.Errorf("Replicas = %d after scaling to 0", got)
	}
}

// TestCrashAfterReady crashes a ready replica: it is not ready until its
// restarted process is.
func TestCrashAfterReady(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{RestartBackoff: 200 * time.Millisecond})
	f.start(t, newRevision("crashy-00001", "crashy", testApp("gated")), 1)
	first := f.nextChange(t)
	if len(first) != 1 {
		t.Fatalf("ready %v", first)
	}
	if _, err := get(first[0], "/crash"); err == nil {
		t.Fatal("/crash answered")
	}
	if got := f.nextChange(t); len(got) != 0 {
		t.Fatalf("ready %v after the crash", got)
	}
	again := f.nextChange(t)
	if len(again) != 1 {
		t.Fatalf("ready %v after the restart", again)
	}
	if body, err := get(again[0], "/"); err != nil || body != "Hello World!\n" {
		t.Errorf("the restarted process answered %q, %v", body, err)
	}
	if pids, _ := f.pids(t); len(pids) != 2 || pids[0] == pids[1] {
		t.Errorf("pids %v, want two processes", pids)
	}
}

// TestScaleDownDrains scales an autoscale-go replica away while it sleeps
// on a request: the replica stops being ready at once, and its process,
// told with SIGTERM, completes the request before it exits.
func TestScaleDownDrains(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{StopDelay: 100 * time.Millisecond})
	rev := f.start(t, newRevision("autoscale-go-00002", "autoscale-go", corev1.Container{
		Image: "ghcr.io/knative/autoscale-go:latest",
	}), 1)
	ep := f.ready(t, rev, 1)[0]
	url := fmt.Sprintf("http://%s:%d/?sleep=1000", ep.Address, ep.Port)

	sent := make(chan struct{})
	answer := make(chan string, 1)
	go func() {
		trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { close(sent) }}
		req := httptest.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), http.MethodGet, url, nil)
		req.RequestURI = ""
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answer <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answer <- resp.Status + " " + string(b)
	}()
	<-sent
	if err := f.Scale(t.Context(), rev, 0); err != nil {
		t.Fatal(err)
	}
	if eps := f.Ready(rev); len(eps) != 0 {
		t.Fatalf("ready %v right after scaling to 0", eps)
	}
	if got := <-answer; !strings.HasPrefix(got, "200 OK Slept for 1") {
		t.Errorf("the request in flight got %q", got)
	}
	waitFor(t, "the replica to stop", func() bool { return len(f.logs.find("replica stopped")) == 1 })
	if exit := f.logs.find("replica stopped")[0].attrs["exit"]; exit != "exit status 0" {
		t.Errorf("the replica stopped with %q, want a clean exit on SIGTERM", exit)
	}
	if _, err := net.DialTimeout("tcp", net.JoinHostPort(ep.Address, strconv.Itoa(int(ep.Port))), time.Second); err == nil {
		t.Error("the stopped replica's port still accepts connections")
	}
}

// TestCloseLeavesNoProcess closes a deployer whose processes ignore
// SIGTERM and have started children of their own: after the grace period
// every one of them is killed.
func TestCloseLeavesNoProcess(t *testing.T) {
	t.Parallel()
	const grace = 300 * time.Millisecond
	f := newFixture(t, Options{MaxGracePeriod: grace})
	const rev = "default/stubborn-00001"
	c := testApp("gated", env("SPAWN", "1"), env("IGNORE_TERM", "1"))
	if err := f.SetRevision(rev, newRevision("stubborn-00001", "stubborn", c)); err != nil {
		t.Fatal(err)
	}
	if err := f.Scale(t.Context(), rev, 2); err != nil {
		t.Fatal(err)
	}
	f.ready(t, rev, 2)
	f.nextChange(t)
	f.nextChange(t)
	pids, _ := f.pids(t)
	for _, r := range f.logs.find("child pid ") {
		pid, err := strconv.Atoi(strings.TrimPrefix(r.msg, "child pid "))
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	if len(pids) != 4 {
		t.Fatalf("pids %v: want 2 replicas and their 2 children", pids)
	}
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatalf("pid %d is not running before Close", pid)
		}
	}

	start := time.Now()
	f.Close()
	if d := time.Since(start); d < grace {
		t.Errorf("Close returned after %s, before the grace period", d)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("pid %d outlived Close", pid)
		}
	}
	if got := f.logs.find("replica killed"); len(got) != 2 {
		t.Errorf("%d replicas logged as killed, want 2", len(got))
	}
	f.noChange(t)
	if err := f.Scale(t.Context(), rev, 1); err == nil || !strings.Contains(err.Error(), "the deployer is closed") {
		t.Errorf("Scale after Close: %v", err)
	}
}

func TestScaleErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	if err := f.Scale(t.Context(), "default/r", -1); err == nil || err.Error() != "scaling default/r: replicas -1 is negative" {
		t.Errorf("negative: %v", err)
	}
	if err := f.Scale(t.Context(), "default/r", 1); err == nil || err.Error() != "scaling default/r: the revision was not set (SetRevision)" {
		t.Errorf("not set: %v", err)
	}
	if err := f.Scale(t.Context(), "default/r", 0); err != nil {
		t.Errorf("scaling a revision never set to 0: %v", err)
	}
}

// TestForget drops a revision with a running replica: the replica stops,
// notified, and the revision must be set again to scale.
func TestForget(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	rev := f.start(t, newRevision("hello-00003", "hello", corev1.Container{Image: "ghcr.io/knative/helloworld-go"}), 1)
	f.nextChange(t)
	_, pids := f.pids(t)
	f.Forget(rev)
	if got := f.nextChange(t); len(got) != 0 {
		t.Fatalf("ready %v after Forget", got)
	}
	waitFor(t, "the replica's process to exit", func() bool { return !alive(pids["1"]) })
	if err := f.Scale(t.Context(), rev, 1); err == nil {
		t.Error("a forgotten revision scaled")
	}
	f.Forget("default/never-set")
}

// TestSetRevisionAgain sets the same revision at every reconciliation, as
// kgate local does: it is read, and warned about, once.
func TestSetRevisionAgain(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	rev := newRevision("two-00001", "two", corev1.Container{Name: "app", Image: "ghcr.io/knative/helloworld-go",
		Ports: []corev1.ContainerPort{{ContainerPort: 8080}}})
	rev.Spec.Containers = append(rev.Spec.Containers, corev1.Container{Name: "sidecar", Image: "example.com/sidecar"})
	for range 3 {
		if err := f.SetRevision("default/two-00001", rev); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.logs.find("only the serving container runs locally"); len(got) != 1 || got[0].attrs["container"] != "app" {
		t.Errorf("warnings %v, want one naming the serving container", got)
	}
}
