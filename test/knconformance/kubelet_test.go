package knconformance

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kgate/kgate/test/kube"
)

// images are the suite's test images (test/test_images of the module).
var images = []string{"runtime", "httpproxy", "timeout", "wsserver", "grpc-ping", "retry"}

// buildImages builds the module's test images as local binaries, with the
// module's own go.mod (httpproxy needs a module kgate's go.sum does not
// hold), into .cache/knconformance/<module version> at the repository
// root; a later run finds them there.
func buildImages(t testing.TB) string {
	t.Helper()
	modDir := moduleDir(t)
	dir := filepath.Join(kube.RepoRoot(t), ".cache", "knconformance", filepath.Base(modDir))
	missing := false
	for _, img := range images {
		if _, err := os.Stat(filepath.Join(dir, img)); err != nil {
			missing = true
		}
	}
	if !missing {
		return dir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for _, img := range images {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, img), "./test/test_images/"+img)
		cmd.Dir = modDir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building test image %s: %v\n%s", img, err, out)
		}
	}
	t.Logf("built the test images in %s", time.Since(start).Round(time.Second))
	return dir
}

// kubelet plays the kubelet and the endpoints controllers for the
// suite's namespace: each Pod's image runs as a local process with the
// Pod's environment (PORT moved to a free loopback port; a value naming a
// gateway Service's cluster DNS name, to where that gateway listens), the
// Pod is marked Ready once the port accepts, and every Service whose
// selector matches Ready Pods gets v1 Endpoints and an EndpointSlice
// listing the host's address at the processes' ports.
type kubelet struct {
	e   *env
	bin string
	// ip is where the backends are reached: the host's address, as the
	// API server refuses loopback endpoints (each backend listens on
	// every address, on its own port).
	ip     string
	logDir string
	// rewrite maps env values (the gateways' Service names) to loopback
	// addresses.
	rewrite map[string]string

	mu    sync.Mutex
	procs map[string]*podProc // by Pod UID
}

type podProc struct {
	name  string
	port  int
	cmd   *exec.Cmd
	done  chan struct{}
	ready bool
}

func startKubelet(e *env, bin string) *kubelet {
	ip := hostIP()
	if ip == "" {
		e.t.Skip("no non-loopback IPv4 address: the API server takes no loopback endpoint")
	}
	k := &kubelet{e: e, bin: bin, ip: ip, logDir: e.t.TempDir(), procs: map[string]*podProc{}}
	internal := "127.0.0.1:" + strconv.Itoa(e.internalPort)
	external := "127.0.0.1:" + strconv.Itoa(e.httpPort)
	k.rewrite = map[string]string{}
	for _, suffix := range []string{"", ".svc", ".svc." + clusterDomain} {
		k.rewrite["kgate-gateway-internal."+systemNamespace+suffix] = internal
		k.rewrite["kgate-gateway."+systemNamespace+suffix] = external
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			k.once(ctx)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	e.t.Cleanup(func() {
		cancel()
		<-done
		k.stopAll()
	})
	return k
}

func (k *kubelet) once(ctx context.Context) {
	var pods corev1.PodList
	if err := k.e.client.List(ctx, &pods, client.InNamespace(testNamespace)); err != nil {
		return
	}
	seen := map[string]bool{}
	for i := range pods.Items {
		p := &pods.Items[i]
		uid := string(p.UID)
		seen[uid] = true
		if p.DeletionTimestamp != nil {
			continue
		}
		k.mu.Lock()
		pp := k.procs[uid]
		k.mu.Unlock()
		if pp == nil {
			var err error
			if pp, err = k.start(p); err != nil {
				k.e.t.Logf("kubelet: pod %s: %v", p.Name, err)
				continue
			}
			k.mu.Lock()
			k.procs[uid] = pp
			k.mu.Unlock()
		}
		if !pp.ready {
			c, err := net.DialTimeout("tcp", net.JoinHostPort(k.ip, strconv.Itoa(pp.port)), 100*time.Millisecond)
			if err != nil {
				continue
			}
			c.Close()
			pp.ready = true
		}
		if !podReady(p) {
			now := metav1.Now()
			p.Status.Phase = corev1.PodRunning
			p.Status.PodIP = k.ip
			p.Status.PodIPs = []corev1.PodIP{{IP: k.ip}}
			p.Status.HostIP = k.ip
			p.Status.StartTime = &now
			p.Status.Conditions = []corev1.PodCondition{
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
				{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			}
			if err := k.e.client.Status().Update(ctx, p); err != nil {
				k.e.t.Logf("kubelet: pod %s status: %v", p.Name, err)
			}
		}
	}
	// Pods gone: their processes stop.
	k.mu.Lock()
	for uid, pp := range k.procs {
		if !seen[uid] {
			pp.stop()
			delete(k.procs, uid)
		}
	}
	ports := map[string]*podProc{} // ready processes by Pod name
	for _, pp := range k.procs {
		if pp.ready {
			ports[pp.name] = pp
		}
	}
	k.mu.Unlock()
	k.endpoints(ctx, pods.Items, ports)
}

// hostIP is the host's first IPv4 address that an endpoint may have (not
// loopback, not link-local), "" if none.
func hostIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip := n.IP.To4()
		if ip == nil || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() || ip.IsMulticast() {
			continue
		}
		return ip.String()
	}
	return ""
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// start runs the Pod's only container's image.
func (k *kubelet) start(p *corev1.Pod) (*podProc, error) {
	if len(p.Spec.Containers) != 1 {
		return nil, fmt.Errorf("%d containers, want 1", len(p.Spec.Containers))
	}
	c := p.Spec.Containers[0]
	img := path.Base(c.Image)
	if i := strings.IndexAny(img, ":@"); i >= 0 {
		img = img[:i]
	}
	bin := filepath.Join(k.bin, img)
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("image %s: %v", c.Image, err)
	}
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "HOSTNAME=" + p.Name}
	for _, v := range c.Env {
		val := v.Value
		if v.Name == "PORT" {
			val = strconv.Itoa(port)
		} else if r, ok := k.rewrite[val]; ok {
			val = r
		}
		env = append(env, v.Name+"="+val)
	}
	log, err := os.Create(filepath.Join(k.logDir, p.Name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, c.Args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	pp := &podProc{name: p.Name, port: port, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); log.Close(); close(pp.done) }()
	return pp, nil
}

func (pp *podProc) stop() {
	pid := pp.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-pp.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-pp.done
	}
}

func (k *kubelet) stopAll() {
	k.mu.Lock()
	defer k.mu.Unlock()
	var wg sync.WaitGroup
	for uid, pp := range k.procs {
		wg.Go(pp.stop)
		delete(k.procs, uid)
	}
	wg.Wait()
}

// endpoints writes the Endpoints and EndpointSlice of every Service with a
// selector in the suite's namespace, from the ready Pods it selects.
func (k *kubelet) endpoints(ctx context.Context, pods []corev1.Pod, ready map[string]*podProc) {
	var svcs corev1.ServiceList
	if err := k.e.client.List(ctx, &svcs, client.InNamespace(testNamespace)); err != nil {
		return
	}
	for i := range svcs.Items {
		s := &svcs.Items[i]
		if len(s.Spec.Selector) == 0 {
			continue
		}
		sel := labels.SelectorFromSet(s.Spec.Selector)
		var backends []*podProc
		for j := range pods {
			if pp := ready[pods[j].Name]; pp != nil && pods[j].DeletionTimestamp == nil && sel.Matches(labels.Set(pods[j].Labels)) {
				backends = append(backends, pp)
			}
		}
		if len(backends) == 0 {
			continue
		}
		k.writeEndpoints(ctx, s, backends)
	}
}

func (k *kubelet) writeEndpoints(ctx context.Context, s *corev1.Service, backends []*podProc) {
	// One subset per backend port (each process has its own).
	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name, Labels: s.Labels}}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name + "-kubelet", Labels: map[string]string{
			discoveryv1.LabelServiceName: s.Name, discoveryv1.LabelManagedBy: "kgate-knconformance",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	// An EndpointSlice has one port list for all its endpoints: the
	// suite's Services select one Pod each, so the first backend's port.
	for _, b := range backends {
		var ports []corev1.EndpointPort
		for _, sp := range s.Spec.Ports {
			ports = append(ports, corev1.EndpointPort{Name: sp.Name, Port: int32(b.port), Protocol: corev1.ProtocolTCP, AppProtocol: sp.AppProtocol})
		}
		ep.Subsets = append(ep.Subsets, corev1.EndpointSubset{
			Addresses: []corev1.EndpointAddress{{IP: k.ip, TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: s.Namespace, Name: b.name}}},
			Ports:     ports,
		})
	}
	b := backends[0]
	for _, sp := range s.Spec.Ports {
		slice.Ports = append(slice.Ports, discoveryv1.EndpointPort{Name: new(sp.Name), Port: new(int32(b.port)), Protocol: new(corev1.ProtocolTCP), AppProtocol: sp.AppProtocol})
	}
	slice.Endpoints = []discoveryv1.Endpoint{{Addresses: []string{k.ip}, Conditions: discoveryv1.EndpointConditions{Ready: new(true)},
		TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: s.Namespace, Name: b.name}}}

	// The slice first: the suite waits for the Endpoints, then routes
	// to the Service, which kgate knows by its EndpointSlices.
	var curSlice discoveryv1.EndpointSlice
	switch err := k.e.client.Get(ctx, client.ObjectKeyFromObject(slice), &curSlice); {
	case apierrors.IsNotFound(err):
		k.logErr("creating EndpointSlice "+slice.Name, k.e.client.Create(ctx, slice))
	case err == nil && (!equality.Semantic.DeepEqual(curSlice.Ports, slice.Ports) || !equality.Semantic.DeepEqual(curSlice.Endpoints, slice.Endpoints)):
		slice.ResourceVersion = curSlice.ResourceVersion
		k.logErr("updating EndpointSlice "+slice.Name, k.e.client.Update(ctx, slice))
	}
	var cur corev1.Endpoints
	switch err := k.e.client.Get(ctx, client.ObjectKeyFromObject(ep), &cur); {
	case apierrors.IsNotFound(err):
		k.logErr("creating Endpoints "+s.Name, k.e.client.Create(ctx, ep))
	case err == nil && !equality.Semantic.DeepEqual(cur.Subsets, ep.Subsets):
		ep.ResourceVersion = cur.ResourceVersion
		k.logErr("updating Endpoints "+s.Name, k.e.client.Update(ctx, ep))
	}
}

// logErr logs a failed write.
func (k *kubelet) logErr(what string, err error) {
	if err != nil {
		k.e.t.Logf("kubelet: %s: %v", what, err)
	}
}
