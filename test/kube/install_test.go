package kube

// Tests of the install manifests in deploy/install: that a real apiserver
// takes them by server-side apply, as `kubectl apply --server-side -f
// deploy/install/` sends them, and that a second apply changes nothing; and,
// without an apiserver, that they keep the promises the docs make (pinned
// images, the restricted pod security profile, least-privilege RBAC, the
// gateway bootstrap equal to what `kgate bootstrap` prints, valid ConfigMaps).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/translator"
)

const (
	systemNamespace = "kgate-system"
	// fieldManager is who the test's applies are recorded as.
	fieldManager = "kgate-test"
	// bootstrapXDSAddress and bootstrapNodeCluster are the flags the gateway
	// bootstrap ConfigMap is generated with.
	bootstrapXDSAddress  = "kgate-controller.kgate-system.svc.cluster.local:18000"
	bootstrapNodeCluster = "kgate-gateway"
)

// manifest is one YAML document of an install file.
type manifest struct {
	file string // base name, for messages
	doc  int    // 1-based position in the file
	raw  []byte // the document as written (what server-side apply sends)
	obj  map[string]any

	APIVersion, Kind, Namespace, Name string
}

func (m manifest) String() string {
	return fmt.Sprintf("%s#%d %s %s", m.file, m.doc, m.Kind, m.key())
}

func (m manifest) key() string {
	if m.Namespace == "" {
		return m.Name
	}
	return m.Namespace + "/" + m.Name
}

// installDir is deploy/install at the repository root.
func installDir(t testing.TB) string {
	t.Helper()
	return filepath.Join(RepoRoot(t), "deploy", "install")
}

// installFiles lists deploy/install/*.yaml in the order kubectl applies a
// folder: by name. The numbered files come first; the CRDs
// (serving.knative.dev_*.yaml) are included when they exist.
func installFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(installDir(t), "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	for _, want := range []string{"00-namespace.yaml", "10-rbac.yaml", "20-config.yaml", "30-controller.yaml", "40-activator.yaml", "50-gateway.yaml"} {
		if !slices.Contains(files, filepath.Join(installDir(t), want)) {
			t.Fatalf("deploy/install/%s is missing", want)
		}
	}
	return files
}

// readManifests decodes every document of every install file, in order.
func readManifests(t testing.TB) []manifest {
	t.Helper()
	var all []manifest
	for _, path := range installFiles(t) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for n := 1; ; n++ {
			raw, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: document %d: %v", filepath.Base(path), n, err)
			}
			js, err := yaml.YAMLToJSON(raw)
			if err != nil {
				t.Fatalf("%s: document %d: %v", filepath.Base(path), n, err)
			}
			if string(bytes.TrimSpace(js)) == "null" {
				continue // comments only
			}
			m := manifest{file: filepath.Base(path), doc: n, raw: raw}
			if err := json.Unmarshal(js, &m.obj); err != nil {
				t.Fatalf("%s: document %d: %v", m.file, n, err)
			}
			var meta struct {
				APIVersion string            `json:"apiVersion"`
				Kind       string            `json:"kind"`
				Metadata   metav1.ObjectMeta `json:"metadata"`
			}
			if err := json.Unmarshal(js, &meta); err != nil {
				t.Fatalf("%s: document %d: %v", m.file, n, err)
			}
			m.APIVersion, m.Kind, m.Namespace, m.Name = meta.APIVersion, meta.Kind, meta.Metadata.Namespace, meta.Metadata.Name
			if m.APIVersion == "" || m.Kind == "" || m.Name == "" {
				t.Fatalf("%s: document %d: apiVersion, kind and metadata.name are required", m.file, n)
			}
			all = append(all, m)
		}
	}
	return all
}

// find returns the manifest of that kind and name (namespace included).
func find(t testing.TB, all []manifest, kind, key string) manifest {
	t.Helper()
	for _, m := range all {
		if m.Kind == kind && m.key() == key {
			return m
		}
	}
	t.Fatalf("no %s %s in deploy/install", kind, key)
	return manifest{}
}

// decode decodes a manifest into a typed object, rejecting unknown fields
// (a misspelt field would otherwise be dropped silently).
func decode[T any](t testing.TB, m manifest) *T {
	t.Helper()
	var v T
	if err := yaml.UnmarshalStrict(m.raw, &v); err != nil {
		t.Fatalf("%s: %v", m, err)
	}
	return &v
}

func TestInstallImagesArePinned(t *testing.T) {
	kgateImages := map[string]bool{}
	count := 0
	for _, m := range readManifests(t) {
		for _, c := range containersIn(m.obj) {
			count++
			image, _ := c["image"].(string)
			name, _ := c["name"].(string)
			if err := checkPinned(image); err != nil {
				t.Errorf("%s: container %q: %v", m, name, err)
			}
			if strings.HasPrefix(image, "ghcr.io/kgate/") {
				kgateImages[image] = true
			}
			if policy, _ := c["imagePullPolicy"].(string); policy == string(corev1.PullAlways) {
				t.Errorf("%s: container %q: imagePullPolicy Always would defeat a side-loaded image (kind load, minikube image load)", m, name)
			}
		}
	}
	if count < 3 {
		t.Errorf("found %d containers, want at least the controller's, the activator's and Envoy's", count)
	}
	if len(kgateImages) != 1 {
		t.Errorf("kgate images %v: want exactly one, the same for every kgate component", kgateImages)
	}
}

// containersIn finds every container, init container and ephemeral
// container anywhere in obj: whatever the kind, a pod template is found.
func containersIn(obj any) []map[string]any {
	var out []map[string]any
	switch v := obj.(type) {
	case map[string]any:
		for k, val := range v {
			if k == "containers" || k == "initContainers" || k == "ephemeralContainers" {
				if list, ok := val.([]any); ok {
					for _, c := range list {
						if cm, ok := c.(map[string]any); ok {
							if _, ok := cm["image"]; ok {
								out = append(out, cm)
							}
						}
					}
				}
			}
			out = append(out, containersIn(val)...)
		}
	case []any:
		for _, e := range v {
			out = append(out, containersIn(e)...)
		}
	}
	return out
}

// checkPinned accepts an image reference with a digest, or with a tag other
// than latest.
func checkPinned(image string) error {
	if image == "" {
		return errors.New("no image")
	}
	if _, digest, ok := strings.Cut(image, "@"); ok {
		if !strings.HasPrefix(digest, "sha256:") || len(digest) != len("sha256:")+64 {
			return fmt.Errorf("image %q: malformed digest", image)
		}
		return nil
	}
	slash := strings.LastIndex(image, "/")
	colon := strings.LastIndex(image, ":")
	if colon <= slash {
		return fmt.Errorf("image %q has no tag: it means latest", image)
	}
	if tag := image[colon+1:]; tag == "" || tag == "latest" {
		return fmt.Errorf("image %q: pin a release tag, not %q", image, tag)
	}
	return nil
}

func TestInstallCheckPinned(t *testing.T) {
	for image, ok := range map[string]bool{
		"ghcr.io/kgate/kgate:v0.1.0":              true,
		"envoyproxy/envoy:v1.40.0":                true,
		"localhost:5000/kgate:v1":                 true,
		"kgate@sha256:" + strings.Repeat("a", 64): true,
		"localhost:5000/kgate":                    false,
		"envoyproxy/envoy":                        false,
		"envoyproxy/envoy:latest":                 false,
		"kgate@sha256:abc":                        false,
		"":                                        false,
	} {
		if err := checkPinned(image); (err == nil) != ok {
			t.Errorf("checkPinned(%q) = %v, want ok=%v", image, err, ok)
		}
	}
}

// TestInstallBootstrapMatchesCommand checks that the gateway's bootstrap
// ConfigMap holds exactly what `kgate bootstrap` prints with the flags the
// manifest documents, so that the two cannot drift apart. The command's
// encoding lives in package main, so the test runs it.
func TestInstallBootstrapMatchesCommand(t *testing.T) {
	cm := decode[corev1.ConfigMap](t, find(t, readManifests(t), "ConfigMap", systemNamespace+"/kgate-gateway-bootstrap"))
	// The bootstrap and the two SDS files through which Envoy reads its
	// control-plane certificate (and re-reads it when the Secret changes).
	files := []string{"bootstrap.yaml", "xds-tls-certificate.yaml", "xds-tls-validation.yaml"}
	if got := keys(cm.Data); !reflect.DeepEqual(got, files) {
		t.Fatalf("kgate-gateway-bootstrap data keys %v, want %v", got, files)
	}
	bin := filepath.Join(t.TempDir(), "kgate")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/kgate")
	build.Dir = RepoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building kgate: %v\n%s", err, out)
	}
	for _, file := range files {
		cmd := exec.CommandContext(ctx, bin, "bootstrap",
			"--xds-address", bootstrapXDSAddress, "--node-cluster", bootstrapNodeCluster, "--file", file)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.String())
		}
		if got, want := cm.Data[file], stdout.String(); got != want {
			t.Errorf("deploy/install/50-gateway.yaml kgate-gateway-bootstrap %s differs from `kgate bootstrap --xds-address %s --node-cluster %s --file %s`; regenerate it.\n--- manifest\n%s\n--- command\n%s",
				file, bootstrapXDSAddress, bootstrapNodeCluster, file, got, want)
		}
	}
	got := cm.Data["bootstrap.yaml"]

	// And it is the cluster Envoy resolves by DNS, the node cluster named.
	var b struct {
		Node struct {
			Cluster string `json:"cluster"`
		} `json:"node"`
		StaticResources struct {
			Clusters []struct {
				Name string `json:"name"`
				Type string `json:"type"`
			} `json:"clusters"`
			Listeners []struct {
				Name    string `json:"name"`
				Address struct {
					SocketAddress struct {
						PortValue int `json:"port_value"`
					} `json:"socket_address"`
				} `json:"address"`
			} `json:"listeners"`
		} `json:"static_resources"`
	}
	if err := yaml.Unmarshal([]byte(got), &b); err != nil {
		t.Fatalf("bootstrap.yaml: %v", err)
	}
	if b.Node.Cluster != bootstrapNodeCluster {
		t.Errorf("bootstrap node.cluster = %q, want %q", b.Node.Cluster, bootstrapNodeCluster)
	}
	// The control plane's cluster, and the admin interface's for the stats
	// listener.
	if len(b.StaticResources.Clusters) != 2 || b.StaticResources.Clusters[0].Name != "xds" || b.StaticResources.Clusters[0].Type != "STRICT_DNS" ||
		b.StaticResources.Clusters[1].Name != "admin" || b.StaticResources.Clusters[1].Type != "STATIC" {
		t.Errorf("bootstrap static clusters = %+v, want the STRICT_DNS cluster xds for %s and the STATIC cluster admin", b.StaticResources.Clusters, bootstrapXDSAddress)
	}
	if len(b.StaticResources.Listeners) != 1 || b.StaticResources.Listeners[0].Name != "stats" ||
		b.StaticResources.Listeners[0].Address.SocketAddress.PortValue != statsPort {
		t.Errorf("bootstrap static listeners = %+v, want the stats listener on %d", b.StaticResources.Listeners, statsPort)
	}
	// Prometheus finds the stats listener through the pods' annotations.
	dep := decode[appsv1.Deployment](t, find(t, readManifests(t), "Deployment", systemNamespace+"/kgate-gateway"))
	want := map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": strconv.Itoa(statsPort), "prometheus.io/path": "/stats/prometheus"}
	for k, v := range want {
		if got := dep.Spec.Template.Annotations[k]; got != v {
			t.Errorf("gateway pod annotation %s = %q, want %q", k, got, v)
		}
	}
	var ports []int32
	for _, p := range dep.Spec.Template.Spec.Containers[0].Ports {
		ports = append(ports, p.ContainerPort)
	}
	if !slices.Contains(ports, int32(statsPort)) {
		t.Errorf("gateway container ports %v lack the stats port %d", ports, statsPort)
	}
}

// statsPort is the gateways' stats listener's port (Kourier's).
const statsPort = 9000

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestInstallPodSecurity checks every Deployment against what the docs
// promise: the restricted pod security profile (non-root, no privilege
// escalation, every capability dropped, RuntimeDefault seccomp), a read-only
// root filesystem, and CPU and memory requests and limits. The apply test
// checks the namespace's PodSecurity admission agrees.
func TestInstallPodSecurity(t *testing.T) {
	n := 0
	for _, m := range readManifests(t) {
		if m.Kind != "Deployment" {
			continue
		}
		n++
		d := decode[appsv1.Deployment](t, m)
		pod := d.Spec.Template.Spec
		psc := pod.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
			t.Errorf("%s: pod securityContext must set runAsNonRoot and a non-zero runAsUser", m)
		}
		if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: pod seccompProfile must be RuntimeDefault", m)
		}
		for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
			sc := c.SecurityContext
			switch {
			case sc == nil:
				t.Errorf("%s: container %s: no securityContext", m, c.Name)
				continue
			case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
				t.Errorf("%s: container %s: allowPrivilegeEscalation must be false", m, c.Name)
			case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
				t.Errorf("%s: container %s: readOnlyRootFilesystem must be true", m, c.Name)
			case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
				t.Errorf("%s: container %s: capabilities must drop ALL and add none", m, c.Name)
			case sc.Privileged != nil && *sc.Privileged:
				t.Errorf("%s: container %s: privileged", m, c.Name)
			case sc.RunAsUser != nil && *sc.RunAsUser == 0 || sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot:
				t.Errorf("%s: container %s: overrides the pod's non-root user", m, c.Name)
			}
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, hasReq := c.Resources.Requests[r]
				lim, hasLim := c.Resources.Limits[r]
				if !hasReq || !hasLim {
					t.Errorf("%s: container %s: %s needs a request and a limit", m, c.Name, r)
				} else if req.Cmp(lim) > 0 {
					t.Errorf("%s: container %s: %s request %s above its limit %s", m, c.Name, r, req.String(), lim.String())
				}
			}
		}
	}
	if n != 3 {
		t.Errorf("%d Deployments, want 3 (controller, activator, gateway)", n)
	}
}

// TestInstallComponents checks the contract the controller is written to:
// names, replicas, flags, ports, probes, and the activator's grace period.
func TestInstallComponents(t *testing.T) {
	all := readManifests(t)
	dep := func(name string) (*appsv1.Deployment, corev1.Container) {
		d := decode[appsv1.Deployment](t, find(t, all, "Deployment", systemNamespace+"/"+name))
		if len(d.Spec.Template.Spec.Containers) != 1 {
			t.Fatalf("Deployment %s: %d containers, want 1", name, len(d.Spec.Template.Spec.Containers))
		}
		return d, d.Spec.Template.Spec.Containers[0]
	}
	flag := func(c corev1.Container, name string) (string, bool) {
		for i, a := range c.Args {
			if v, ok := strings.CutPrefix(a, name+"="); ok {
				return v, true
			}
			if a == name && i+1 < len(c.Args) {
				return c.Args[i+1], true
			}
		}
		return "", false
	}
	wantFlag := func(what string, c corev1.Container, name, want string) {
		if got, ok := flag(c, name); !ok || got != want {
			t.Errorf("%s: %s = %q (set: %v), want %q", what, name, got, ok, want)
		}
	}

	ctl, c := dep("kgate-controller")
	if *ctl.Spec.Replicas != 1 || len(c.Args) == 0 || c.Args[0] != "controller" {
		t.Errorf("controller: replicas %d args %v, want 1 replica running `kgate controller`", *ctl.Spec.Replicas, c.Args)
	}
	wantFlag("controller", c, "--xds-address", ":18000")
	wantFlag("controller", c, "--health-address", ":8090")
	wantFlag("controller", c, "--gateway-service", "kgate-gateway")
	wantFlag("controller", c, "--activator-service", "kgate-activator")
	if ru := ctl.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxSurge == nil || ru.MaxSurge.IntValue() != 0 {
		t.Errorf("controller: a rolling update must not surge: the new pod is ready only once it leads")
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" ||
		c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("controller: want readiness GET /readyz and liveness GET /healthz")
	}
	if ctl.Spec.Template.Spec.ServiceAccountName != "kgate-controller" {
		t.Errorf("controller: serviceAccountName %q", ctl.Spec.Template.Spec.ServiceAccountName)
	}

	act, c := dep("kgate-activator")
	if *act.Spec.Replicas != 2 || len(c.Args) == 0 || c.Args[0] != "activator" {
		t.Errorf("activator: replicas %d args %v, want 2 replicas running `kgate activator`", *act.Spec.Replicas, c.Args)
	}
	wantFlag("activator", c, "--xds-address", bootstrapXDSAddress)
	wantFlag("activator", c, "--listen", ":8012")
	wantFlag("activator", c, "--node-id", "$(POD_NAME)")
	delay, timeout := 15*time.Second, 30*time.Second // the command's defaults
	if v, ok := flag(c, "--drain-delay"); ok {
		delay, _ = time.ParseDuration(v)
	}
	if v, ok := flag(c, "--drain-timeout"); ok {
		timeout, _ = time.ParseDuration(v)
	}
	if g := act.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= delay+timeout {
		t.Errorf("activator: terminationGracePeriodSeconds %v must exceed drain delay %s + drain timeout %s", g, delay, timeout)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.ReadinessProbe.HTTPGet.Port.IntValue() != 8012 && c.ReadinessProbe.HTTPGet.Port.String() != "http" {
		t.Errorf("activator: want readiness GET /readyz on 8012")
	}
	if a := act.Spec.Template.Spec.AutomountServiceAccountToken; a == nil || *a {
		t.Errorf("activator: must not mount a service account token")
	}

	gw, c := dep("kgate-gateway")
	if *gw.Spec.Replicas != 2 || !strings.HasPrefix(c.Image, "envoyproxy/envoy:v") {
		t.Errorf("gateway: replicas %d image %s, want 2 Envoys", *gw.Spec.Replicas, c.Image)
	}
	wantFlag("gateway", c, "-c", "/etc/envoy/bootstrap.yaml")
	wantFlag("gateway", c, "--service-node", "$(POD_NAME)")
	if a := gw.Spec.Template.Spec.AutomountServiceAccountToken; a == nil || *a {
		t.Errorf("gateway: must not mount a service account token")
	}

	svc := func(name string) *corev1.Service {
		return decode[corev1.Service](t, find(t, all, "Service", systemNamespace+"/"+name))
	}
	if s := svc("kgate-controller"); len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Port != 18000 || s.Spec.Ports[0].Name != "grpc-xds" {
		t.Errorf("Service kgate-controller ports %+v, want 18000 grpc-xds", s.Spec.Ports)
	}
	if s := svc("kgate-activator"); len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Port != 8012 || s.Spec.Ports[0].Name != "http" {
		t.Errorf("Service kgate-activator ports %+v, want 8012 http", s.Spec.Ports)
	}
	// The gateways' Services: HTTP on 80 and HTTPS on 443 (the port of
	// https:// URLs and of redirects), to the listeners' named ports.
	servicePorts := func(s *corev1.Service) map[string]string {
		out := map[string]string{}
		for _, p := range s.Spec.Ports {
			out[p.Name] = fmt.Sprintf("%d->%s", p.Port, p.TargetPort.String())
		}
		return out
	}
	if s := svc("kgate-gateway"); s.Spec.Type != corev1.ServiceTypeLoadBalancer || !reflect.DeepEqual(servicePorts(s), map[string]string{"http": "80->http", "https": "443->https"}) {
		t.Errorf("Service kgate-gateway: type %s ports %+v, want LoadBalancer 80 -> http (8080), 443 -> https (8443)", s.Spec.Type, s.Spec.Ports)
	}
	if s := svc("kgate-gateway-internal"); s.Spec.Type != corev1.ServiceTypeClusterIP || !reflect.DeepEqual(servicePorts(s), map[string]string{"http": "80->http-internal", "https": "443->https-internal"}) {
		t.Errorf("Service kgate-gateway-internal: type %s ports %+v, want ClusterIP 80 -> http-internal (8081), 443 -> https-internal (8444)", s.Spec.Type, s.Spec.Ports)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	wantPorts := map[string]int32{"http": 8080, "http-internal": 8081, "https": translator.DefaultExternalTLSPort, "https-internal": translator.DefaultInternalTLSPort,
		"stats": translator.DefaultStatsPort}
	if !reflect.DeepEqual(ports, wantPorts) {
		t.Errorf("gateway container ports %v, want %v (the translator's listeners and the bootstrap's stats listener)", ports, wantPorts)
	}
	for _, name := range []string{"kgate-activator", "kgate-gateway"} {
		find(t, all, "PodDisruptionBudget", systemNamespace+"/"+name)
	}
}

// rules flattens RBAC rules to "group/resource" -> sorted verbs, so that a
// grant cannot hide in how the rules are grouped; a rule limited to some
// objects is "group/resource[name,...]".
func rules(t testing.TB, what string, rs []rbacv1.PolicyRule) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, r := range rs {
		if len(r.NonResourceURLs) > 0 {
			t.Errorf("%s: unexpected rule %+v", what, r)
		}
		names := ""
		if len(r.ResourceNames) > 0 {
			sorted := slices.Sorted(slices.Values(r.ResourceNames))
			names = "[" + strings.Join(sorted, ",") + "]"
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				k := g + "/" + res + names
				out[k] = append(out[k], r.Verbs...)
				sort.Strings(out[k])
				out[k] = slices.Compact(out[k])
			}
		}
	}
	return out
}

func TestInstallControllerRBACIsLeastPrivilege(t *testing.T) {
	all := readManifests(t)
	crud := []string{"create", "delete", "get", "list", "patch", "update", "watch"}
	want := map[string][]string{
		"apps/deployments":                crud,
		"apps/deployments/scale":          {"get", "patch", "update"},
		"/services":                       crud,
		"/events":                         {"create", "patch"},
		"discovery.k8s.io/endpointslices": {"get", "list", "watch"},
		// The HPA class's HorizontalPodAutoscalers (watcher/kube/hpa.go):
		// kgate's own, never patched.
		"autoscaling/horizontalpodautoscalers": {"create", "delete", "get", "list", "update", "watch"},
		// DomainMappings: read, and their status written; nothing else.
		"serving.knative.dev/domainmappings": {"get", "list", "watch"},
		// ClusterDomainClaims: read; kgate's own created and deleted
		// (autocreate-cluster-domain-claims), never updated.
		"networking.internal.knative.dev/clusterdomainclaims": {"create", "delete", "get", "list", "watch"},
		"cert-manager.io/certificates":                        crud,
		// Certificates owned by DomainMappings (blockOwnerDeletion), and the
		// Namespaces' labels (namespace-wildcard-cert-selector).
		"serving.knative.dev/domainmappings/finalizers": {"update"},
		"/namespaces": {"get", "list", "watch"},
		"serving.knative.dev/domainmappings/status": {"get", "patch", "update"},
		// The HTTPS certificates' Secrets, in any namespace: read only (each
		// is watched alone by name, see watcher/kube/certs.go).
		"/secrets": {"get", "list", "watch"},
		// ACME HTTP-01 Challenges: read only (watcher/kube/challenges.go).
		"acme.cert-manager.io/challenges": {"get", "list", "watch"},
	}
	for _, r := range []string{"services", "configurations", "revisions", "routes"} {
		want["serving.knative.dev/"+r] = crud
		want["serving.knative.dev/"+r+"/status"] = []string{"get", "patch", "update"}
		want["serving.knative.dev/"+r+"/finalizers"] = []string{"update"}
	}
	cr := decode[rbacv1.ClusterRole](t, find(t, all, "ClusterRole", "kgate-controller"))
	if got := rules(t, "ClusterRole kgate-controller", cr.Rules); !reflect.DeepEqual(got, want) {
		t.Errorf("ClusterRole kgate-controller grants\n%v\nwant\n%v", got, want)
	}
	role := decode[rbacv1.Role](t, find(t, all, "Role", systemNamespace+"/kgate-controller"))
	// Secrets: the control plane's CA and the data plane's certificates,
	// read and renewed by name; never listed or watched.
	wantRole := map[string][]string{
		"/configmaps":                {"get", "list", "watch"},
		"coordination.k8s.io/leases": {"create", "get", "update"},
		"/secrets":                   {"create"},
		"/secrets[kgate-activator-xds-tls,kgate-gateway-xds-tls,kgate-xds-ca]": {"get", "update"},
	}
	if got := rules(t, "Role kgate-controller", role.Rules); !reflect.DeepEqual(got, wantRole) {
		t.Errorf("Role kgate-system/kgate-controller grants\n%v\nwant\n%v", got, wantRole)
	}

	// The controller's ServiceAccount is bound to exactly those two; nothing
	// is bound to the activator's or the gateway's.
	bound := map[string][]string{}
	for _, m := range all {
		var subjects []rbacv1.Subject
		var ref rbacv1.RoleRef
		switch m.Kind {
		case "ClusterRoleBinding":
			b := decode[rbacv1.ClusterRoleBinding](t, m)
			subjects, ref = b.Subjects, b.RoleRef
		case "RoleBinding":
			b := decode[rbacv1.RoleBinding](t, m)
			subjects, ref = b.Subjects, b.RoleRef
		default:
			continue
		}
		for _, s := range subjects {
			bound[s.Kind+" "+s.Namespace+"/"+s.Name] = append(bound[s.Kind+" "+s.Namespace+"/"+s.Name], m.Kind+" -> "+ref.Kind+" "+ref.Name)
		}
	}
	wantBound := map[string][]string{
		"ServiceAccount kgate-system/kgate-controller": {"ClusterRoleBinding -> ClusterRole kgate-controller", "RoleBinding -> Role kgate-controller"},
	}
	if !reflect.DeepEqual(bound, wantBound) {
		t.Errorf("bindings %v, want %v", bound, wantBound)
	}
	for _, name := range []string{"kgate-activator", "kgate-gateway"} {
		sa := decode[corev1.ServiceAccount](t, find(t, all, "ServiceAccount", systemNamespace+"/"+name))
		if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
			t.Errorf("ServiceAccount %s: automountServiceAccountToken must be false", name)
		}
	}
}

// TestInstallConfigMapsParse checks the config-* ConfigMaps parse as
// the controller parses them, and that their _example documentation holds
// valid values of keys kgate reads too.
func TestInstallConfigMapsParse(t *testing.T) {
	all := readManifests(t)
	parsers := map[string]func(map[string]string) error{
		config.DomainConfigName:     func(d map[string]string) error { _, err := config.ParseDomain(d); return err },
		config.NetworkConfigName:    func(d map[string]string) error { _, err := config.ParseNetwork(d); return err },
		config.AutoscalerConfigName: func(d map[string]string) error { _, err := config.ParseAutoscaler(d); return err },
		config.DefaultsConfigName:   func(d map[string]string) error { _, err := config.ParseDefaults(d); return err },
		config.GCConfigName:         func(d map[string]string) error { _, err := config.ParseGC(d); return err },
	}
	for name, parse := range parsers {
		cm := decode[corev1.ConfigMap](t, find(t, all, "ConfigMap", systemNamespace+"/"+name))
		if err := parse(cm.Data); err != nil {
			t.Errorf("ConfigMap %s: %v", name, err)
		}
		if name == config.DomainConfigName {
			if ks := keys(cm.Data); len(ks) > 1 || len(ks) == 1 && ks[0] != config.ExampleKey {
				t.Errorf("ConfigMap config-domain keys %v: none but %s, so that Routes get the magic DNS domain", ks, config.ExampleKey)
			}
		}
		example, ok := cm.Data[config.ExampleKey]
		if !ok {
			continue
		}
		var data map[string]string
		if err := yaml.UnmarshalStrict([]byte(example), &data); err != nil {
			t.Errorf("ConfigMap %s: %s is not a map of strings: %v", name, config.ExampleKey, err)
			continue
		}
		if len(data) == 0 {
			t.Errorf("ConfigMap %s: %s shows no key", name, config.ExampleKey)
		}
		if err := parse(data); err != nil {
			t.Errorf("ConfigMap %s: %s: %v", name, config.ExampleKey, err)
		}
		// The documentation shows only keys kgate reads.
		for _, u := range config.Unsupported(name, data) {
			t.Errorf("ConfigMap %s: %s shows %s, which kgate ignores (%s)", name, config.ExampleKey, u.Key, u.Status)
		}
	}
}

// TestInstallServerSideApply applies every install file to a real apiserver
// as `kubectl apply --server-side` does, in file order, checks every object
// reads back as written and that no warning (PodSecurity's among them) came
// back, then applies everything again and checks nothing changed.
func TestInstallServerSideApply(t *testing.T) {
	Require(t)
	c := Start(t)
	all := readManifests(t)
	d := &discovery{c: c, resources: map[string][]metav1.APIResource{}}

	first := make(map[string]string, len(all)) // key -> resourceVersion
	for _, m := range all {
		if m.Namespace == "" && d.namespaced(t, m) {
			t.Fatalf("%s: namespaced but no metadata.namespace: it would land in whatever namespace kubectl is set to", m)
		}
		obj, warnings := apply(t, c, d, m, m.raw)
		for _, w := range warnings {
			t.Errorf("%s: apply warned: %s", m, w)
		}
		if !subset(m.obj, obj) {
			t.Errorf("%s: applied %s\nserver returned %s", m, mustJSON(m.obj), mustJSON(obj))
		}
		got := get(t, c, d, m)
		if uid(got) == "" || uid(got) != uid(obj) {
			t.Errorf("%s: read back uid %q, applied %q", m, uid(got), uid(obj))
		}
		if !subset(m.obj, got) {
			t.Errorf("%s: applied %s\nread back %s", m, mustJSON(m.obj), mustJSON(got))
		}
		first[m.String()] = resourceVersion(obj)
	}
	// The silence above means something: a pod template the restricted
	// profile refuses is warned about in kgate-system.
	checkPodSecurityWarns(t, c, d, all)

	// The apiserver's own controllers finish with what they write (a CRD's
	// status) before the second apply, whose resourceVersions are compared.
	for _, m := range all {
		if m.Kind == "CustomResourceDefinition" {
			waitEstablished(t, c, d, m)
		}
		first[m.String()] = resourceVersion(get(t, c, d, m))
	}
	for _, m := range all {
		obj, warnings := apply(t, c, d, m, m.raw)
		for _, w := range warnings {
			t.Errorf("%s: second apply warned: %s", m, w)
		}
		if rv := resourceVersion(obj); rv != first[m.String()] {
			t.Errorf("%s: a second identical apply changed it: resourceVersion %s -> %s\n%s", m, first[m.String()], rv, mustJSON(obj))
		}
	}
	for _, m := range all {
		if rv := resourceVersion(get(t, c, d, m)); rv != first[m.String()] {
			t.Errorf("%s: resourceVersion %s -> %s after the second apply", m, first[m.String()], rv)
		}
	}
}

// checkPodSecurityWarns applies, in kgate-system, the controller's
// Deployment under another name with its security context removed, and
// expects PodSecurity's warning: the silence of the real applies means
// something.
func checkPodSecurityWarns(t *testing.T, c *Cluster, d *discovery, all []manifest) {
	t.Helper()
	m := find(t, all, "Deployment", systemNamespace+"/kgate-controller")
	var dep map[string]any
	if err := json.Unmarshal([]byte(mustJSON(m.obj)), &dep); err != nil {
		t.Fatal(err)
	}
	dep["metadata"].(map[string]any)["name"] = "kgate-insecure-probe"
	pod := dep["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	delete(pod, "securityContext")
	for _, ctr := range pod["containers"].([]any) {
		delete(ctr.(map[string]any), "securityContext")
	}
	probe := m
	probe.Name = "kgate-insecure-probe"
	_, warnings := apply(t, c, d, probe, []byte(mustJSON(dep)))
	if !slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, "PodSecurity") }) {
		t.Errorf("an insecure Deployment in %s drew warnings %q, want PodSecurity's", systemNamespace, warnings)
	}
	status, body, err := c.Do(http.MethodDelete, objectPath(t, d, probe), nil)
	if err != nil || status != http.StatusOK {
		t.Errorf("deleting the probe Deployment: %d %v %s", status, err, body)
	}
}

// apply sends body as a server-side apply of m's object, forced, as
// fieldManager, with strict field validation (an unknown field fails). It
// returns the object and the warnings the apiserver sent back.
func apply(t testing.TB, c *Cluster, d *discovery, m manifest, body []byte) (map[string]any, []string) {
	t.Helper()
	q := url.Values{"fieldManager": {fieldManager}, "force": {"true"}, "fieldValidation": {"Strict"}}
	req, err := http.NewRequest(http.MethodPatch, c.URL+objectPath(t, d, m)+"?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/apply-patch+yaml")
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatalf("%s: apply: %v", m, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: apply: %v", m, err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		t.Fatalf("%s: apply: %s: %s", m, resp.Status, data)
	}
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil {
		t.Fatalf("%s: apply: %v: %s", m, err, data)
	}
	return obj, resp.Header.Values("Warning")
}

func get(t testing.TB, c *Cluster, d *discovery, m manifest) map[string]any {
	t.Helper()
	status, body, err := c.Do(http.MethodGet, objectPath(t, d, m), nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("%s: GET: %d %v %s", m, status, err, body)
	}
	var obj map[string]any
	if err := json.Unmarshal(body, &obj); err != nil {
		t.Fatalf("%s: GET: %v", m, err)
	}
	return obj
}

func waitEstablished(t testing.TB, c *Cluster, d *discovery, m manifest) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var crd struct {
			Status struct {
				Conditions []struct{ Type, Status string } `json:"conditions"`
			} `json:"status"`
		}
		if err := json.Unmarshal([]byte(mustJSON(get(t, c, d, m))), &crd); err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(crd.Status.Conditions, func(c struct{ Type, Status string }) bool {
			return c.Type == "Established" && c.Status == "True"
		}) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not Established after 30s: %+v", m, crd.Status.Conditions)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// discovery maps an apiVersion and kind to the resource's path, as kubectl
// does, from the apiserver's discovery documents.
type discovery struct {
	c         *Cluster
	resources map[string][]metav1.APIResource // by apiVersion
}

func (d *discovery) resource(t testing.TB, m manifest) metav1.APIResource {
	t.Helper()
	if r, ok := d.lookup(m); ok {
		return r
	}
	// Unknown yet, or a kind a CRD just added: ask again for a while.
	deadline := time.Now().Add(30 * time.Second)
	for {
		path := "/apis/" + m.APIVersion
		if m.APIVersion == "v1" {
			path = "/api/v1"
		}
		status, body, err := d.c.Do(http.MethodGet, path, nil)
		if err == nil && status == http.StatusOK {
			var list metav1.APIResourceList
			if err := json.Unmarshal(body, &list); err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			d.resources[m.APIVersion] = list.APIResources
			if r, ok := d.lookup(m); ok {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the apiserver serves no %s in %s (GET %s: %d %v)", m, m.Kind, m.APIVersion, path, status, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (d *discovery) lookup(m manifest) (metav1.APIResource, bool) {
	for _, r := range d.resources[m.APIVersion] {
		if r.Kind == m.Kind && !strings.Contains(r.Name, "/") {
			return r, true
		}
	}
	return metav1.APIResource{}, false
}

func (d *discovery) namespaced(t testing.TB, m manifest) bool {
	return d.resource(t, m).Namespaced
}

func objectPath(t testing.TB, d *discovery, m manifest) string {
	t.Helper()
	r := d.resource(t, m)
	p := "/apis/" + m.APIVersion
	if m.APIVersion == "v1" {
		p = "/api/v1"
	}
	if r.Namespaced {
		p += "/namespaces/" + m.Namespace
	}
	return p + "/" + r.Name + "/" + m.Name
}

// subset reports whether every field of want is in got with the same value:
// what the server added (defaults, status, metadata) is ignored, and lists
// must match element by element.
func subset(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok || !subset(wv, gv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !subset(w[i], g[i]) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(want, got)
	}
}

func metadata(obj map[string]any) map[string]any {
	md, _ := obj["metadata"].(map[string]any)
	return md
}

func uid(obj map[string]any) string {
	s, _ := metadata(obj)["uid"].(string)
	return s
}

func resourceVersion(obj map[string]any) string {
	s, _ := metadata(obj)["resourceVersion"].(string)
	return s
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestInstallControlPlaneTLS: the gateways and the activators mount the
// control-plane certificates the controller keeps, where their commands
// read them, and only they may reach the xDS port.
func TestInstallControlPlaneTLS(t *testing.T) {
	all := readManifests(t)
	for _, tc := range []struct{ deployment, secret string }{
		{"kgate-gateway", "kgate-gateway-xds-tls"},
		{"kgate-activator", "kgate-activator-xds-tls"},
	} {
		d := decode[appsv1.Deployment](t, find(t, all, "Deployment", systemNamespace+"/"+tc.deployment))
		spec := d.Spec.Template.Spec
		volume := ""
		for _, v := range spec.Volumes {
			if v.Secret != nil && v.Secret.SecretName == tc.secret {
				volume = v.Name
			}
		}
		if volume == "" {
			t.Errorf("%s mounts no Secret %s", tc.deployment, tc.secret)
			continue
		}
		mounted := false
		for _, m := range spec.Containers[0].VolumeMounts {
			mounted = mounted || (m.Name == volume && m.MountPath == "/etc/kgate/xds-tls" && m.ReadOnly)
		}
		if !mounted {
			t.Errorf("%s does not mount %s read-only at /etc/kgate/xds-tls", tc.deployment, tc.secret)
		}
		for _, arg := range spec.Containers[0].Args {
			if arg == "--plaintext" {
				t.Errorf("%s runs with --plaintext", tc.deployment)
			}
		}
	}
	np := decode[networkingv1.NetworkPolicy](t, find(t, all, "NetworkPolicy", systemNamespace+"/kgate-controller"))
	if len(np.Spec.Ingress) == 0 || len(np.Spec.Ingress[0].From) != 2 {
		t.Errorf("NetworkPolicy kgate-controller: %+v, want the xDS port open to the gateways and activators only", np.Spec.Ingress)
	}
}
