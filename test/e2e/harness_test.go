package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kgate/kgate/internal/testrun"
)

// kgateBin is the kgate binary built once for the suite.
var kgateBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kgate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kgateBin = filepath.Join(dir, "kgate")
	// kgate local keeps its state under $XDG_STATE_HOME: the suite's own,
	// not the user's.
	os.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..", "..")
	build := exec.Command("go", "build", "-o", kgateBin, "./cmd/kgate")
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building kgate:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// repoFile is a file of the repository, by path from its root.
func repoFile(t *testing.T, path string) string {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(self), "..", "..", path)
}

// freePort returns a loopback address nothing listens on now, below the
// kernel's ephemeral range (32768 and up on Linux): the listeners other
// tests open on port 0 land in that range, so they cannot take the port
// between this check and kgate binding it.
func freePort(t *testing.T) string {
	t.Helper()
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(8000))
		// Never the same port twice: a port probed free is bound only later,
		// by kgate, and another flag or test must not be handed it meanwhile.
		handedMu.Lock()
		taken := handed[addr]
		handed[addr] = true
		handedMu.Unlock()
		if taken {
			continue
		}
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return addr
		}
	}
	t.Fatal("no free port between 20000 and 28000")
	return ""
}

// handed are the ports freePort has returned in this process.
var (
	handedMu sync.Mutex
	handed   = map[string]bool{}
)

// kgate is one running `kgate local`.
type kgate struct {
	t                                 *testing.T
	dir                               string // the manifests folder
	http, https, internal, admin, xds string
	args                              []string // kgate's command line
	// prefix, when set, runs kgate through another command (a shell
	// setting a limit) that ends in exec-ing it.
	prefix []string
	cmd    *exec.Cmd
	logs   *testrun.Buffer
	exited chan error
}

// startKgate copies the manifests into a fresh folder and runs kgate local
// on it, on free ports, until the test ends; then it stops it with SIGINT
// and checks that it exits cleanly and leaves no process behind.
func startKgate(t *testing.T, manifests map[string]string, flags ...string) *kgate {
	t.Helper()
	k := newKgate(t, manifests, flags...)
	k.launch()
	t.Cleanup(k.stop)
	return k
}

// newKgate prepares a kgate local as startKgate does, without starting it.
func newKgate(t *testing.T, manifests map[string]string, flags ...string) *kgate {
	t.Helper()
	k := &kgate{t: t, dir: t.TempDir(), http: freePort(t), https: freePort(t), internal: freePort(t), admin: freePort(t), xds: freePort(t),
		logs: &testrun.Buffer{}, exited: make(chan error, 1)}
	for name, content := range manifests {
		k.write(name, content)
	}
	k.args = append([]string{"local", "-f", k.dir, "--envoy", "never",
		"--http-address", k.http, "--internal-address", k.internal, "--admin-address", k.admin,
		"--https-address", k.https, "--internal-https-address", freePort(t),
		"--xds-address", k.xds, "--activator-address", freePort(t), "--log-level", "debug"}, flags...)
	return k
}

// launch starts kgate local with k.args and waits for its admin API.
func (k *kgate) launch() {
	k.t.Helper()
	argv := append(slices.Clone(k.prefix), kgateBin)
	k.cmd = exec.Command(argv[0], append(argv[1:], k.args...)...)
	k.cmd.Stdout, k.cmd.Stderr = k.logs, k.logs
	if err := k.cmd.Start(); err != nil {
		k.t.Fatal(err)
	}
	exited := make(chan error, 1)
	k.exited = exited
	go func() { exited <- k.cmd.Wait() }()
	k.eventually("the admin API answers", 20*time.Second, func() error {
		_, err := k.get("ksvc")
		return err
	})
}

// stop sends Ctrl-C and checks the exit and that no process is left.
func (k *kgate) stop() {
	t := k.t
	_ = k.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-k.exited:
		if err != nil {
			t.Errorf("kgate local exited with %v after Ctrl-C", err)
		}
	case <-time.After(45 * time.Second):
		_ = k.cmd.Process.Kill()
		t.Errorf("kgate local did not exit within 45s of Ctrl-C")
	}
	if left := processesOf(kgateBin); len(left) > 0 {
		t.Errorf("processes left behind after Ctrl-C: %v", left)
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if t.Failed() {
		t.Logf("kgate local's log:\n%s", k.logs)
	}
}

// processesOf lists the pids whose command line starts with bin.
func processesOf(bin string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if argv0, _, _ := bytes.Cut(cmdline, []byte{0}); string(argv0) == bin {
			pids = append(pids, pid)
		}
	}
	return pids
}

// write puts a manifest into the watched folder, atomically as editors do.
func (k *kgate) write(name, content string) {
	k.t.Helper()
	tmp := filepath.Join(k.dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		k.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(k.dir, name)); err != nil {
		k.t.Fatal(err)
	}
}

// get runs `kgate get ARGS -o json` against this kgate and returns the
// decoded answer.
func (k *kgate) get(args ...string) (map[string]any, error) {
	out, err := k.kgateCmd(append(append([]string{"get"}, args...), "-o", "json", "--admin-address", k.admin)...)
	if err != nil {
		return nil, err
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		return nil, fmt.Errorf("kgate get %v: %w\n%s", args, err, out)
	}
	return v, nil
}

// table runs `kgate get ARGS` (the table) against this kgate.
func (k *kgate) table(args ...string) string {
	k.t.Helper()
	out, err := k.kgateCmd(append(append([]string{"get"}, args...), "--admin-address", k.admin)...)
	if err != nil {
		k.t.Fatal(err)
	}
	return out
}

func (k *kgate) kgateCmd(args ...string) (string, error) {
	cmd := exec.Command(kgateBin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("kgate %v: %w: %s", args, err, errOut.String())
	}
	return out.String(), nil
}

// eventually retries f until it succeeds or the time is up.
func (k *kgate) eventually(what string, within time.Duration, f func() error) {
	k.t.Helper()
	testrun.Poll{Within: within, Every: 100 * time.Millisecond}.Eventually(k.t, what, f)
}

// client is the HTTP client requests go through: no proxy from the
// environment, a bounded time.
var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}, Timeout: 60 * time.Second}

// request sends a GET for host+path to the external listener and returns
// the status and body.
func (k *kgate) request(ctx context.Context, host, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+k.http+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body)), err
}

// ready waits until a Service reports Ready True and answers want.
func (k *kgate) ready(name, host, want string, within time.Duration) {
	k.t.Helper()
	k.eventually(name+" is Ready and answers "+want, within, func() error {
		svc, err := k.get("ksvc", name)
		if err != nil {
			return err
		}
		if s := condition(svc, "Ready"); s != "True" {
			return fmt.Errorf("Ready is %q", s)
		}
		code, body, err := k.request(context.Background(), host, "/")
		if err != nil {
			return err
		}
		if code != http.StatusOK || body != want {
			return fmt.Errorf("answered %d %q", code, body)
		}
		return nil
	})
}

// condition returns the status of an object's condition of type typ.
func condition(obj map[string]any, typ string) string {
	status, _ := obj["status"].(map[string]any)
	conds, _ := status["conditions"].([]any)
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			s, _ := m["status"].(string)
			return s
		}
	}
	return ""
}

// revisions returns, per revision name, its actual replicas, desired
// replicas and routing mode.
func (k *kgate) revisions() map[string]revisionState {
	k.t.Helper()
	l, err := k.get("revisions")
	if err != nil {
		k.t.Fatal(err)
	}
	out := map[string]revisionState{}
	items, _ := l["items"].([]any)
	for _, it := range items {
		m, _ := it.(map[string]any)
		meta, _ := m["metadata"].(map[string]any)
		status, _ := m["status"].(map[string]any)
		ann, _ := status["annotations"].(map[string]any)
		name, _ := meta["name"].(string)
		actual, _ := status["actualReplicas"].(float64)
		desired, _ := status["desiredReplicas"].(float64)
		mode, _ := ann["kgate.dev/routing-mode"].(string)
		out[name] = revisionState{Actual: int(actual), Desired: int(desired), Mode: mode}
	}
	return out
}

type revisionState struct {
	Actual, Desired int
	Mode            string
}
