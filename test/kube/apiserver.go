// Package kube runs a real kube-apiserver and etcd on loopback for tests that
// need the Kubernetes API itself rather than kgate's in-memory store.
//
// The binaries are built from the Go module proxy by build.sh (pinned
// versions, cached under .cache/kube at the repository root); the first
// build takes minutes, later runs find them at once. Start builds or finds
// them, starts etcd and kube-apiserver in the test's temporary folder on
// free loopback ports, waits for /readyz and stops both when the test ends.
//
// The apiserver authenticates a random bearer token as a member of
// system:masters; there is no kubelet or container runtime, so Deployments
// get no Pods. Tests talk to it with Do (plain net/http, JSON), so the
// package needs no client-go.
//
// AssetsDir is the folder controller-runtime's envtest takes as
// KUBEBUILDER_ASSETS (it holds kube-apiserver and etcd).
package kube

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Timeouts for the steps of Start and of stopping.
const (
	etcdReadyTimeout = 30 * time.Second
	readyTimeout     = 60 * time.Second
	stopGrace        = 10 * time.Second
)

// Cluster is a running kube-apiserver with its etcd.
type Cluster struct {
	// URL is the apiserver's base URL, https://127.0.0.1:PORT.
	URL string
	// Token is the bearer token of an admin (system:masters) user.
	Token string
	// CertFile holds the apiserver's self-signed serving certificate and its
	// CA (PEM), valid for 127.0.0.1: a client's CA data (rest.Config's
	// TLSClientConfig.CAData).
	CertFile string
	// AssetsDir holds the kube-apiserver and etcd binaries (KUBEBUILDER_ASSETS).
	AssetsDir string
	// EtcdURL is etcd's client URL, http://127.0.0.1:PORT.
	EtcdURL string
	// Dir is the folder of the data, keys and logs.
	Dir string

	client *http.Client
}

var (
	assetsOnce sync.Once
	assetsDir  string
	assetsErr  error
)

// Require skips the test when KGATE_KUBE=0: no real kube-apiserver wanted.
// Otherwise a test that goes on to Start needs the binaries: make test
// builds them first (build.sh: minutes the first time, then cached), and
// Start builds them when absent.
func Require(t testing.TB) {
	t.Helper()
	if os.Getenv("KGATE_KUBE") == "0" {
		t.Skip("KGATE_KUBE=0: no real kube-apiserver")
	}
}

// RepoRoot returns the root of the kgate repository (the folder of go.mod),
// found from this file's place in it.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("kube: cannot locate the repository")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// AssetsDir returns the folder holding kube-apiserver and etcd, building
// them with build.sh on first use (minutes when nothing is cached). If
// KUBEBUILDER_ASSETS names a folder holding both, that folder is used.
func AssetsDir(t testing.TB) string {
	t.Helper()
	assetsOnce.Do(func() { assetsDir, assetsErr = findOrBuild(t) })
	if assetsErr != nil {
		t.Fatalf("kube: %v", assetsErr)
	}
	return assetsDir
}

func findOrBuild(t testing.TB) (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" && hasBinaries(dir) {
		return dir, nil
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate build.sh")
	}
	script := filepath.Join(filepath.Dir(file), "build.sh")
	t.Logf("kube: finding or building the binaries with %s (minutes the first time)", script)
	cmd := exec.Command(script)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %v\n%s", script, err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	dir := lines[len(lines)-1]
	if len(lines) > 1 {
		t.Logf("kube: built in %s:\n%s", time.Since(start).Round(time.Second), out.String())
	}
	if !hasBinaries(dir) {
		return "", fmt.Errorf("%s printed %q, which does not hold kube-apiserver and etcd", script, dir)
	}
	return dir, nil
}

func hasBinaries(dir string) bool {
	for _, name := range []string{"kube-apiserver", "etcd"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// Start starts etcd and kube-apiserver for the test and returns once the
// apiserver's /readyz answers ok. Both are stopped when the test ends.
func Start(t testing.TB) *Cluster {
	t.Helper()
	assets := AssetsDir(t)
	dir := t.TempDir() // registered first, so removed after the processes stop

	token := randomHex(t, 16)
	writeFile(t, filepath.Join(dir, "tokens.csv"), token+",admin,admin,system:masters\n", 0o600)
	writeServiceAccountKeys(t, dir)

	ports := freePorts(t, 3)
	c := &Cluster{
		Token:     token,
		AssetsDir: assets,
		Dir:       dir,
		EtcdURL:   "http://127.0.0.1:" + strconv.Itoa(ports[0]),
		URL:       "https://127.0.0.1:" + strconv.Itoa(ports[2]),
		CertFile:  filepath.Join(dir, "certs", "apiserver.crt"),
	}

	etcd := startProcess(t, dir, "etcd", filepath.Join(assets, "etcd"),
		"--name=kgate-test",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+c.EtcdURL,
		"--advertise-client-urls="+c.EtcdURL,
		"--listen-peer-urls=http://127.0.0.1:"+strconv.Itoa(ports[1]),
		"--initial-advertise-peer-urls=http://127.0.0.1:"+strconv.Itoa(ports[1]),
		"--initial-cluster=kgate-test=http://127.0.0.1:"+strconv.Itoa(ports[1]),
		"--unsafe-no-fsync",
	)
	plain := &http.Client{Timeout: 2 * time.Second}
	if err := waitFor(etcdReadyTimeout, etcd, func() error { return getOK(plain, c.EtcdURL+"/health", "") }); err != nil {
		t.Fatalf("kube: etcd not healthy at %s: %v", c.EtcdURL, err)
	}

	apiserver := startProcess(t, dir, "kube-apiserver", filepath.Join(assets, "kube-apiserver"),
		"--etcd-servers="+c.EtcdURL,
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--secure-port="+strconv.Itoa(ports[2]),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(dir, "sa.key"),
		"--token-auth-file="+filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		// Room for a ClusterIP per revision's private Service at
		// 10,000 Services (make bench-kube): a /24 held 254, and the
		// rest failed and were retried for the whole run.
		"--service-cluster-ip-range=10.0.0.0/16",
		"--disable-admission-plugins=ServiceAccount",
	)
	// The serving certificate is self-signed and written at start-up, with
	// its CA, to CertFile; the client trusts that CA once the file exists.
	// A fresh client per try, so that a certificate file read while being
	// written is not kept.
	ready := func() error {
		client, err := tlsClient(c.CertFile)
		if err != nil {
			return err
		}
		if err := getOK(client, c.URL+"/readyz", c.Token); err != nil {
			client.CloseIdleConnections()
			return err
		}
		c.client = client
		return nil
	}
	if err := waitFor(readyTimeout, apiserver, ready); err != nil {
		t.Fatalf("kube: kube-apiserver not ready at %s: %v", c.URL, err)
	}
	return c
}

// tlsClient returns a client that trusts the certificates in certFile
// (the apiserver's serving certificate and its CA, for 127.0.0.1).
func tlsClient(certFile string) (*http.Client, error) {
	data, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("no certificate in %s yet", certFile)
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}, nil
}

// Do sends one request to the apiserver as the admin user. body may be nil,
// a []byte or string sent as is, or any other value sent as JSON. It returns
// the status code and the response body.
func (c *Cluster) Do(method, path string, body any) (int, []byte, error) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.URL+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "application/json")
	if r != nil {
		ct := "application/json"
		if method == http.MethodPatch {
			ct = "application/merge-patch+json"
		}
		req.Header.Set("Content-Type", ct)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// process is a started etcd or kube-apiserver.
type process struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done
}

func startProcess(t testing.TB, dir, name, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatalf("kube: %v", err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Stdout = f
	p.cmd.Stderr = f
	p.cmd.SysProcAttr = sysProcAttr()
	if err := p.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("kube: starting %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop sends SIGTERM to the process group, then SIGKILL after stopGrace,
// and waits for the process to exit. If the test failed, it logs the end of
// the process's log.
func (p *process) stop(t testing.TB) {
	defer func() {
		if t.Failed() {
			t.Log(p.logTail())
		}
	}()
	select {
	case <-p.done:
		return
	default:
	}
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		t.Logf("kube: %s did not stop within %s of SIGTERM; killing it", p.name, stopGrace)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-p.done
	}
	// Anything the process left in its group goes too.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

func (p *process) logTail() string {
	data, _ := os.ReadFile(p.log)
	const max = 4000
	if len(data) > max {
		data = data[len(data)-max:]
	}
	return fmt.Sprintf("--- last lines of %s ---\n%s", p.log, data)
}

// waitFor polls check until it succeeds, the process exits or timeout passes.
func waitFor(timeout time.Duration, p *process, check func() error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = check(); last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited: %v", p.name, p.err)
		case <-ctx.Done():
			return fmt.Errorf("after %s: %v", timeout, last)
		case <-tick.C:
		}
	}
}

func getOK(client *http.Client, url, token string) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

func writeServiceAccountKeys(t testing.TB, dir string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("kube: %v", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatalf("kube: %v", err)
	}
	writeFile(t, filepath.Join(dir, "sa.key"),
		string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})), 0o600)
	writeFile(t, filepath.Join(dir, "sa.pub"),
		string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})), 0o644)
}

func writeFile(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatalf("kube: %v", err)
	}
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("kube: %v", err)
	}
	return hex.EncodeToString(b)
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("kube: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}
