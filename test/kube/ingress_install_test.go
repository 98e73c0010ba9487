package kube

// Tests of deploy/ingress, the KIngress mode's install: kgate's ingress
// controller and the Envoy gateways beside an existing Knative Serving. Without
// an apiserver: what the files hold (only kgate's objects, least-privilege
// RBAC, the serving mode's gateways and the xDS Service their bootstrap
// dials). With one: Knative's KIngress CRD from the pinned
// knative.dev/networking module, the files applied as `kubectl apply
// --server-side -f deploy/ingress/` would, and `kgate ingress` run as a
// process with the Deployment's own arguments and as its ServiceAccount (so
// the RBAC is what it runs with), serving the KIngresses of its class, and
// only those, to a gateway connected over mutual TLS.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	netv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"
	"knative.dev/pkg/apis"
	"sigs.k8s.io/yaml"

	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/pki"
	"github.com/kgate/kgate/pki/secrets"
)

const (
	// kgateIngressClass and kourierIngressClass are the ingress classes of
	// kgate and of Kourier (networking.knative.dev/ingress.class).
	kgateIngressClass   = "kgate.ingress.networking.knative.dev"
	kourierIngressClass = "kourier.ingress.networking.knative.dev"
	ingressClassKey     = "networking.knative.dev/ingress.class"
	// knativeNamespace is Knative Serving's, which holds config-network.
	knativeNamespace = "knative-serving"
	// networkingModule is the module whose config/ingress.yaml is the
	// KIngress CRD, at the version go.mod pins.
	networkingModule = "knative.dev/networking"
)

// ingressDir is deploy/ingress at the repository root.
func ingressDir(t testing.TB) string {
	t.Helper()
	return filepath.Join(RepoRoot(t), "deploy", "ingress")
}

// ingressFiles are the files of deploy/ingress, in the order kubectl
// applies a folder: by name.
var ingressFiles = []string{"00-namespace.yaml", "10-rbac.yaml", "30-ingress.yaml", "50-gateway.yaml"}

// readIngressManifests decodes every document of deploy/ingress, in order.
func readIngressManifests(t testing.TB) []manifest {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(ingressDir(t), "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	if !slices.Equal(names, ingressFiles) {
		t.Fatalf("deploy/ingress holds %v, want exactly %v", names, ingressFiles)
	}
	var all []manifest
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, decodeManifests(t, filepath.Base(f), data)...)
	}
	return all
}

// decodeManifests decodes the documents of one YAML file as
// readManifests does: comment-only documents skipped, apiVersion, kind and
// name required.
func decodeManifests(t testing.TB, file string, data []byte) []manifest {
	t.Helper()
	var out []manifest
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for n := 1; ; n++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", file, n, err)
		}
		js, err := yaml.YAMLToJSON(raw)
		if err != nil {
			t.Fatalf("%s: document %d: %v", file, n, err)
		}
		if string(bytes.TrimSpace(js)) == "null" {
			continue
		}
		m := manifest{file: file, doc: n, raw: raw}
		if err := json.Unmarshal(js, &m.obj); err != nil {
			t.Fatalf("%s: document %d: %v", file, n, err)
		}
		var meta struct {
			APIVersion string            `json:"apiVersion"`
			Kind       string            `json:"kind"`
			Metadata   metav1.ObjectMeta `json:"metadata"`
		}
		if err := json.Unmarshal(js, &meta); err != nil {
			t.Fatalf("%s: document %d: %v", file, n, err)
		}
		m.APIVersion, m.Kind, m.Namespace, m.Name = meta.APIVersion, meta.Kind, meta.Metadata.Namespace, meta.Metadata.Name
		if m.APIVersion == "" || m.Kind == "" || m.Name == "" {
			t.Fatalf("%s: document %d: apiVersion, kind and metadata.name are required", file, n)
		}
		out = append(out, m)
	}
}

// findIngress returns the deploy/ingress manifest of that kind and key.
func findIngress(t testing.TB, all []manifest, kind, key string) manifest {
	t.Helper()
	for _, m := range all {
		if m.Kind == kind && m.key() == key {
			return m
		}
	}
	t.Fatalf("no %s %s in deploy/ingress", kind, key)
	return manifest{}
}

// TestIngressInstallOnlyKgate checks deploy/ingress installs kgate's
// ingress beside Knative Serving and nothing of Knative's: no CRD, no
// Knative object, every name kgate's, and in knative-serving only the Role
// (and its binding) that reads config-network.
func TestIngressInstallOnlyKgate(t *testing.T) {
	for _, m := range readIngressManifests(t) {
		if m.Kind == "CustomResourceDefinition" || strings.Contains(m.APIVersion, "knative.dev") {
			t.Errorf("%s: deploy/ingress installs no CRD and no Knative object: Knative Serving brings its own", m)
		}
		if !strings.HasPrefix(m.Name, "kgate-") {
			t.Errorf("%s: every name is kgate-*, so that nothing clashes with Knative's or Kourier's", m)
		}
		switch {
		case m.Namespace == systemNamespace:
		case m.Namespace == knativeNamespace && (m.Kind == "Role" || m.Kind == "RoleBinding") && m.Name == "kgate-ingress":
		case m.Namespace == "" && slices.Contains([]string{"Namespace", "ClusterRole", "ClusterRoleBinding"}, m.Kind):
			if m.Kind == "Namespace" && m.Name != systemNamespace {
				t.Errorf("%s: the only namespace is %s (knative-serving is Knative's)", m, systemNamespace)
			}
		default:
			t.Errorf("%s: deploy/ingress writes in %s only (and a Role in %s)", m, systemNamespace, knativeNamespace)
		}
	}
}

// TestIngressInstallGatewayIsTheServingModes checks deploy/ingress's
// gateways are deploy/install's, byte for byte: the same Envoys, Services
// and bootstrap, which TestInstallBootstrapMatchesCommand checks against
// `kgate bootstrap`.
func TestIngressInstallGatewayIsTheServingModes(t *testing.T) {
	got, err := os.ReadFile(filepath.Join(ingressDir(t), "50-gateway.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(installDir(t), "50-gateway.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("deploy/ingress/50-gateway.yaml differs from deploy/install/50-gateway.yaml; copy it (cp deploy/install/50-gateway.yaml deploy/ingress/)")
	}
}

// ingressFlag returns the value of a container's flag, --name=value or
// --name value.
func ingressFlag(c corev1.Container, name string) (string, bool) {
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

// TestIngressInstallComponents checks the ingress controller is deployed
// as the serving mode's controller is (image, probes, security context,
// resources, rollout), runs `kgate ingress` with the gateways' Services,
// and that the xDS Service is the one the gateways' bootstrap dials and the
// xDS server's certificate names, open to the gateways only.
func TestIngressInstallComponents(t *testing.T) {
	all := readIngressManifests(t)
	d := decode[appsv1.Deployment](t, findIngress(t, all, "Deployment", systemNamespace+"/kgate-ingress"))
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("Deployment kgate-ingress: %d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if *d.Spec.Replicas != 1 || len(c.Args) == 0 || c.Args[0] != "ingress" {
		t.Errorf("kgate-ingress: replicas %d args %v, want 1 replica running `kgate ingress`", *d.Spec.Replicas, c.Args)
	}
	for name, want := range map[string]string{
		"--xds-address":              ":18000",
		"--health-address":           ":8090",
		"--leader-elect":             "true",
		"--gateway-service":          "kgate-gateway",
		"--internal-gateway-service": "kgate-gateway-internal",
		"--knative-namespace":        knativeNamespace,
	} {
		if got, ok := ingressFlag(c, name); !ok || got != want {
			t.Errorf("kgate-ingress: %s = %q (set: %v), want %q", name, got, ok, want)
		}
	}
	if pod.ServiceAccountName != "kgate-ingress" {
		t.Errorf("kgate-ingress: serviceAccountName %q", pod.ServiceAccountName)
	}
	if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxSurge == nil || ru.MaxSurge.IntValue() != 0 {
		t.Errorf("kgate-ingress: a rolling update must not surge: the new pod is ready only once it leads")
	}

	// The serving mode's controller is the pattern: same image, probes,
	// ports, environment, security and resources.
	ctl := decode[appsv1.Deployment](t, find(t, readManifests(t), "Deployment", systemNamespace+"/kgate-controller"))
	cc := ctl.Spec.Template.Spec.Containers[0]
	for what, pair := range map[string][2]any{
		"image":               {c.Image, cc.Image},
		"ports":               {c.Ports, cc.Ports},
		"env":                 {c.Env, cc.Env},
		"livenessProbe":       {c.LivenessProbe, cc.LivenessProbe},
		"readinessProbe":      {c.ReadinessProbe, cc.ReadinessProbe},
		"resources":           {c.Resources, cc.Resources},
		"securityContext":     {c.SecurityContext, cc.SecurityContext},
		"pod securityContext": {pod.SecurityContext, ctl.Spec.Template.Spec.SecurityContext},
		"enableServiceLinks":  {pod.EnableServiceLinks, ctl.Spec.Template.Spec.EnableServiceLinks},
		"strategy":            {d.Spec.Strategy, ctl.Spec.Strategy},
		"kube-qps and kube-burst": {slices.DeleteFunc(slices.Clone(c.Args), func(a string) bool { return !strings.HasPrefix(a, "--kube-") }),
			slices.DeleteFunc(slices.Clone(cc.Args), func(a string) bool { return !strings.HasPrefix(a, "--kube-") })},
	} {
		if !reflect.DeepEqual(pair[0], pair[1]) {
			t.Errorf("kgate-ingress %s %+v, the serving mode's controller has %+v", what, pair[0], pair[1])
		}
	}

	// The xDS Service: the host and port the bootstrap dials, selecting the
	// ingress controller's pods. Its name is also the controller's
	// ControllerService (kgate-controller by default; kgate ingress has no
	// flag for it), which the xDS server's certificate names.
	svc := decode[corev1.Service](t, findIngress(t, all, "Service", systemNamespace+"/kgate-controller"))
	host, port, _ := strings.Cut(bootstrapXDSAddress, ":")
	if want := svc.Name + "." + svc.Namespace + ".svc.cluster.local"; host != want {
		t.Errorf("the gateways' bootstrap dials %s, the xDS Service is %s", host, want)
	}
	if len(svc.Spec.Ports) != 1 || strconv.Itoa(int(svc.Spec.Ports[0].Port)) != port || svc.Spec.Ports[0].TargetPort != intstr.FromString("grpc-xds") {
		t.Errorf("Service kgate-controller ports %+v, want %s -> grpc-xds", svc.Spec.Ports, port)
	}
	if !reflect.DeepEqual(svc.Spec.Selector, d.Spec.Template.Labels) {
		t.Errorf("Service kgate-controller selects %v, the ingress pods are labelled %v", svc.Spec.Selector, d.Spec.Template.Labels)
	}
	if _, ok := ingressFlag(c, "--activator-service"); ok {
		t.Errorf("kgate-ingress: --activator-service means nothing in the KIngress mode (Knative runs its own activator)")
	}

	// Only the gateways reach the xDS port; the kubelet the health port.
	np := decode[networkingv1.NetworkPolicy](t, findIngress(t, all, "NetworkPolicy", systemNamespace+"/kgate-ingress"))
	if !reflect.DeepEqual(np.Spec.PodSelector.MatchLabels, d.Spec.Template.Labels) {
		t.Errorf("NetworkPolicy kgate-ingress selects %v, the ingress pods are labelled %v", np.Spec.PodSelector.MatchLabels, d.Spec.Template.Labels)
	}
	gw := decode[appsv1.Deployment](t, findIngress(t, all, "Deployment", systemNamespace+"/kgate-gateway"))
	if len(np.Spec.Ingress) != 2 || len(np.Spec.Ingress[0].From) != 1 ||
		np.Spec.Ingress[0].From[0].PodSelector == nil || !reflect.DeepEqual(np.Spec.Ingress[0].From[0].PodSelector.MatchLabels, gw.Spec.Template.Labels) ||
		len(np.Spec.Ingress[0].Ports) != 1 || *np.Spec.Ingress[0].Ports[0].Port != intstr.FromString("grpc-xds") ||
		len(np.Spec.Ingress[1].From) != 0 || len(np.Spec.Ingress[1].Ports) != 1 || *np.Spec.Ingress[1].Ports[0].Port != intstr.FromString("http-health") {
		t.Errorf("NetworkPolicy kgate-ingress: %+v, want grpc-xds open to the gateways only and http-health to all", np.Spec.Ingress)
	}
}

// TestIngressInstallRBACIsLeastPrivilege checks the ingress controller may
// do exactly what the KIngress mode does, and nothing is bound to the
// gateways.
func TestIngressInstallRBACIsLeastPrivilege(t *testing.T) {
	all := readIngressManifests(t)
	read := []string{"get", "list", "watch"}
	want := map[string][]string{
		// KIngresses: read; only their status written.
		"networking.internal.knative.dev/ingresses":        read,
		"networking.internal.knative.dev/ingresses/status": {"get", "patch", "update"},
		// The Services the splits name and their endpoints: read only.
		"/services":                       read,
		"discovery.k8s.io/endpointslices": read,
		// The KIngresses' TLS Secrets, in any namespace, each watched alone.
		"/secrets": read,
	}
	cr := decode[rbacv1.ClusterRole](t, findIngress(t, all, "ClusterRole", "kgate-ingress"))
	if got := rules(t, "ClusterRole kgate-ingress", cr.Rules); !reflect.DeepEqual(got, want) {
		t.Errorf("ClusterRole kgate-ingress grants\n%v\nwant\n%v", got, want)
	}
	// config-network, in Knative's namespace only.
	knative := decode[rbacv1.Role](t, findIngress(t, all, "Role", knativeNamespace+"/kgate-ingress"))
	if got, want := rules(t, "Role knative-serving/kgate-ingress", knative.Rules), map[string][]string{"/configmaps": read}; !reflect.DeepEqual(got, want) {
		t.Errorf("Role knative-serving/kgate-ingress grants\n%v\nwant\n%v", got, want)
	}
	// In kgate-system: the Lease, leader election's Events, and the control
	// plane's Secrets as the serving mode's Role grants them.
	system := decode[rbacv1.Role](t, findIngress(t, all, "Role", systemNamespace+"/kgate-ingress"))
	serving := decode[rbacv1.Role](t, find(t, readManifests(t), "Role", systemNamespace+"/kgate-controller"))
	wantSystem := map[string][]string{
		"coordination.k8s.io/leases": {"create", "get", "update"},
		"/events":                    {"create", "patch"},
	}
	for k, v := range rules(t, "Role kgate-system/kgate-controller", serving.Rules) {
		if strings.HasPrefix(k, "/secrets") {
			wantSystem[k] = v
		}
	}
	if got := rules(t, "Role kgate-system/kgate-ingress", system.Rules); !reflect.DeepEqual(got, wantSystem) {
		t.Errorf("Role kgate-system/kgate-ingress grants\n%v\nwant\n%v", got, wantSystem)
	}

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
			k := s.Kind + " " + s.Namespace + "/" + s.Name
			bound[k] = append(bound[k], m.Kind+" "+m.Namespace+" -> "+ref.Kind+" "+ref.Name)
		}
	}
	wantBound := map[string][]string{"ServiceAccount kgate-system/kgate-ingress": {
		"ClusterRoleBinding  -> ClusterRole kgate-ingress",
		"RoleBinding knative-serving -> Role kgate-ingress",
		"RoleBinding kgate-system -> Role kgate-ingress",
	}}
	if !reflect.DeepEqual(bound, wantBound) {
		t.Errorf("bindings %v, want %v", bound, wantBound)
	}
	sa := decode[corev1.ServiceAccount](t, findIngress(t, all, "ServiceAccount", systemNamespace+"/kgate-gateway"))
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("ServiceAccount kgate-gateway: automountServiceAccountToken must be false")
	}
}

// TestIngressInstallServesKIngresses installs Knative's KIngress CRD and
// deploy/ingress into a real apiserver, runs `kgate ingress` as the
// Deployment runs it, as its ServiceAccount, with a gateway connected, and
// checks that the KIngresses of kgate's class (by annotation, and by
// config-network's ingress-class) become Ready as Knative expects, and that
// one of Kourier's class is never written.
func TestIngressInstallServesKIngresses(t *testing.T) {
	Require(t)
	start := time.Now()
	bin := make(chan string, 1)
	go func() { bin <- buildKgate(t) }() // meanwhile the apiserver starts
	c := Start(t)
	d := &discovery{c: c, resources: map[string][]metav1.APIResource{}}

	// Knative Serving, as far as kgate sees it: the KIngress CRD of the
	// pinned module, its namespace and config-network (no ingress-class:
	// Knative's default, not kgate's).
	installKIngressCRD(t, c, d)
	for _, ns := range []string{knativeNamespace, "default"} {
		mustDo(t, c, http.MethodPost, "/api/v1/namespaces", map[string]any{"metadata": map[string]any{"name": ns}}, http.StatusCreated, http.StatusConflict)
	}
	mustDo(t, c, http.MethodPost, "/api/v1/namespaces/"+knativeNamespace+"/configmaps", corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "config-network", Namespace: knativeNamespace},
		Data:       map[string]string{"domain-template": "{{.Name}}.{{.Namespace}}.{{.Domain}}"},
	}, http.StatusCreated)

	// deploy/ingress, as `kubectl apply --server-side -f deploy/ingress/`.
	all := readIngressManifests(t)
	for _, m := range all {
		if m.Namespace == "" && d.namespaced(t, m) {
			t.Fatalf("%s: namespaced but no metadata.namespace", m)
		}
		obj, warnings := apply(t, c, d, m, m.raw)
		for _, w := range warnings {
			t.Errorf("%s: apply warned: %s", m, w)
		}
		if !subset(m.obj, obj) {
			t.Errorf("%s: applied %s\nserver returned %s", m, mustJSON(m.obj), mustJSON(obj))
		}
	}

	// `kgate ingress` with the Deployment's arguments, on loopback, as
	// the ServiceAccount kgate-ingress.
	dep := decode[appsv1.Deployment](t, findIngress(t, all, "Deployment", systemNamespace+"/kgate-ingress"))
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	writeFile(t, kubeconfig, serviceAccountKubeconfig(t, c, systemNamespace, dep.Spec.Template.Spec.ServiceAccountName), 0o600)
	ports := freePorts(t, 2)
	xdsAddr, healthAddr := "127.0.0.1:"+strconv.Itoa(ports[0]), "127.0.0.1:"+strconv.Itoa(ports[1])
	var args []string
	for _, a := range dep.Spec.Template.Spec.Containers[0].Args {
		switch {
		case strings.HasPrefix(a, "--xds-address="):
			a = "--xds-address=" + xdsAddr
		case strings.HasPrefix(a, "--health-address="):
			a = "--health-address=" + healthAddr
		}
		args = append(args, a)
	}
	// SYSTEM_NAMESPACE comes from the pod's namespace in the cluster.
	args = append(args, "--kubeconfig="+kubeconfig, "--system-namespace="+systemNamespace, "--log-level=debug")
	kgate := <-bin
	if kgate == "" {
		t.FailNow()
	}
	proc := startProcess(t, dir, "kgate-ingress", kgate, args...)
	plain := &http.Client{Timeout: 2 * time.Second}
	if err := waitFor(30*time.Second, proc, func() error { return getOK(plain, "http://"+healthAddr+"/readyz", "") }); err != nil {
		t.Fatalf("kgate ingress not ready (leading and serving xDS): %v", err)
	}
	gw := connectIngressGateway(t, c, xdsAddr)

	// (a) hello, annotated with kgate's class; (b) bye, without annotation;
	// (c) kourier's, annotated with Kourier's class.
	for _, rev := range []string{"hello-00001", "bye-00001", "other-00001"} {
		createRevisionService(t, c, "default", rev)
	}
	a := knativeIngress("default", "hello", "hello-00001", map[string]string{ingressClassKey: kgateIngressClass})
	b := knativeIngress("default", "bye", "bye-00001", nil)
	k := knativeIngress("default", "other", "other-00001", map[string]string{ingressClassKey: kourierIngressClass})
	for _, ing := range []*netv1alpha1.Ingress{a, b, k} {
		mustDo(t, c, http.MethodPost, kingressPath("default", ""), ing, http.StatusCreated)
	}
	kourierBefore := getKIngress(t, c, "default", "other")
	byeBefore := getKIngress(t, c, "default", "bye")

	poll := func(what string, check func() error) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			err := check()
			if err == nil {
				return
			}
			if time.Now().After(deadline) || proc.exited() {
				t.Fatalf("%s: %v", what, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	poll("KIngress default/hello Ready", func() error { return ingressReady(getKIngress(t, c, "default", "hello")) })
	// bye has no annotation and config-network names Knative's default
	// class, not kgate's: not kgate's yet.
	if got := getKIngress(t, c, "default", "bye"); got.ResourceVersion != byeBefore.ResourceVersion || len(got.Status.Conditions) != 0 {
		t.Errorf("KIngress default/bye (no annotation, config-network's ingress-class not kgate's) was written: %+v", got.Status)
	}
	mustDo(t, c, http.MethodPatch, "/api/v1/namespaces/"+knativeNamespace+"/configmaps/config-network",
		map[string]any{"data": map[string]string{"ingress-class": kgateIngressClass}}, http.StatusOK)
	poll("KIngress default/bye Ready once config-network's ingress-class is kgate's", func() error {
		return ingressReady(getKIngress(t, c, "default", "bye"))
	})
	poll("the gateway routes both KIngresses' hosts", func() error {
		hosts := gw.hosts()
		for _, h := range []string{"hello.default.example.com", "hello.default.svc.cluster.local", "bye.default.example.com", "bye.default.svc.cluster.local"} {
			if !slices.Contains(hosts, h) {
				return fmt.Errorf("no virtual host for %s in %v", h, hosts)
			}
		}
		if slices.Contains(hosts, "other.default.example.com") {
			return fmt.Errorf("the gateway routes Kourier's KIngress: %v", hosts)
		}
		return nil
	})

	// (c) stays as it was while kgate keeps running and rounding.
	time.Sleep(3 * time.Second)
	hello := getKIngress(t, c, "default", "hello")
	kgateManagers := map[string]bool{}
	for _, f := range hello.ManagedFields {
		if f.Subresource == "status" {
			kgateManagers[f.Manager] = true
		}
	}
	if len(kgateManagers) == 0 {
		t.Errorf("KIngress default/hello: no manager of its status in %+v", hello.ManagedFields)
	}
	after := getKIngress(t, c, "default", "other")
	if after.ResourceVersion != kourierBefore.ResourceVersion || !reflect.DeepEqual(after.Status, kourierBefore.Status) {
		t.Errorf("KIngress default/other (Kourier's class) was written: resourceVersion %s -> %s, status %+v", kourierBefore.ResourceVersion, after.ResourceVersion, after.Status)
	}
	for _, f := range after.ManagedFields {
		if kgateManagers[f.Manager] || f.Subresource != "" {
			t.Errorf("KIngress default/other (Kourier's class) has fields managed by %q (%s)", f.Manager, f.Subresource)
		}
	}
	if proc.exited() {
		t.Fatalf("kgate ingress exited: %v", proc.err)
	}
	t.Logf("kgate ingress served the KIngresses (%s in all)", time.Since(start).Round(time.Millisecond))
}

// exited says whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// buildKgate builds ./cmd/kgate into the test's temporary folder.
func buildKgate(t testing.TB) string {
	bin := filepath.Join(t.TempDir(), "kgate")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/kgate")
	build.Dir = RepoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Errorf("building kgate: %v\n%s", err, out)
		return ""
	}
	return bin
}

// installKIngressCRD applies Knative's KIngress CRD from the module go.mod
// pins, and waits until it is Established.
func installKIngressCRD(t testing.TB, c *Cluster, d *discovery) {
	t.Helper()
	list := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", networkingModule)
	list.Dir = RepoRoot(t)
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", networkingModule, err)
	}
	path := filepath.Join(strings.TrimSpace(string(out)), "config", "ingress.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the KIngress CRD of %s: %v (go mod download %s)", networkingModule, err, networkingModule)
	}
	ms := decodeManifests(t, "ingress.yaml", data)
	if len(ms) != 1 || ms[0].Kind != "CustomResourceDefinition" || ms[0].Name != "ingresses.networking.internal.knative.dev" {
		t.Fatalf("%s: want the one CRD ingresses.networking.internal.knative.dev, got %v", path, ms)
	}
	if _, warnings := apply(t, c, d, ms[0], ms[0].raw); len(warnings) > 0 {
		t.Logf("%s: %v", ms[0], warnings)
	}
	waitEstablished(t, c, d, ms[0])
}

// mustDo sends a request as the admin and fails unless the status is one
// of want.
func mustDo(t testing.TB, c *Cluster, method, path string, body any, want ...int) []byte {
	t.Helper()
	status, resp, err := c.Do(method, path, body)
	if err != nil || !slices.Contains(want, status) {
		t.Fatalf("%s %s: %d %v %s", method, path, status, err, resp)
	}
	return resp
}

// serviceAccountKubeconfig is a kubeconfig for the apiserver as the
// ServiceAccount, with a token the TokenRequest API issues.
func serviceAccountKubeconfig(t testing.TB, c *Cluster, namespace, name string) string {
	t.Helper()
	resp := mustDo(t, c, http.MethodPost, "/api/v1/namespaces/"+namespace+"/serviceaccounts/"+name+"/token",
		map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": map[string]any{"expirationSeconds": 3600}},
		http.StatusCreated)
	var tr struct {
		Status struct{ Token string } `json:"status"`
	}
	if err := json.Unmarshal(resp, &tr); err != nil || tr.Status.Token == "" {
		t.Fatalf("TokenRequest for %s/%s: %v %s", namespace, name, err, resp)
	}
	cfg := map[string]any{
		"apiVersion": "v1", "kind": "Config", "current-context": "test",
		"clusters": []any{map[string]any{"name": "test", "cluster": map[string]any{"server": c.URL, "certificate-authority": c.CertFile}}},
		"users":    []any{map[string]any{"name": name, "user": map[string]any{"token": tr.Status.Token}}},
		"contexts": []any{map[string]any{"name": "test", "context": map[string]any{"cluster": "test", "user": name}}},
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// createRevisionService creates a revision's Service as Knative's
// serverless service makes it (no selector: Knative writes its endpoints,
// the pods' or the activator's) and an EndpointSlice of one ready pod.
func createRevisionService(t testing.TB, c *Cluster, ns, rev string) {
	t.Helper()
	svc := corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: rev, Namespace: ns, Labels: map[string]string{
			"serving.knative.dev/revision":                rev,
			"networking.internal.knative.dev/serviceType": "Public",
		}},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8012), Protocol: corev1.ProtocolTCP},
			{Name: "https", Port: 443, TargetPort: intstr.FromInt32(8112), Protocol: corev1.ProtocolTCP},
		}},
	}
	mustDo(t, c, http.MethodPost, "/api/v1/namespaces/"+ns+"/services", svc, http.StatusCreated)
	ready := true
	slice := discoveryv1.EndpointSlice{
		TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta: metav1.ObjectMeta{Name: rev + "-abcde", Namespace: ns, Labels: map[string]string{
			discoveryv1.LabelServiceName: rev,
			discoveryv1.LabelManagedBy:   "endpointslicemirroring-controller.k8s.io",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.1.0.5"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr("http"), Port: ptr(int32(8012)), Protocol: ptr(corev1.ProtocolTCP)},
			{Name: ptr("https"), Port: ptr(int32(8112)), Protocol: ptr(corev1.ProtocolTCP)},
		},
	}
	mustDo(t, c, http.MethodPost, "/apis/discovery.k8s.io/v1/namespaces/"+ns+"/endpointslices", slice, http.StatusCreated)
}

func ptr[T any](v T) *T { return &v }

// knativeIngress is the KIngress Knative's route controller writes for a
// Service name whose Route sends all traffic to rev: its cluster-local
// hosts on the private load balancer, its external host on the public one,
// one split with the revision's headers, owned by the Route.
func knativeIngress(ns, name, rev string, annotations map[string]string) *netv1alpha1.Ingress {
	paths := []netv1alpha1.HTTPIngressPath{{
		Splits: []netv1alpha1.IngressBackendSplit{{
			IngressBackend: netv1alpha1.IngressBackend{ServiceName: rev, ServiceNamespace: ns, ServicePort: intstr.FromInt32(80)},
			Percent:        100,
			AppendHeaders: map[string]string{
				"Knative-Serving-Namespace": ns,
				"Knative-Serving-Revision":  rev,
			},
		}},
	}}
	yes := true
	return &netv1alpha1.Ingress{
		TypeMeta: metav1.TypeMeta{APIVersion: "networking.internal.knative.dev/v1alpha1", Kind: "Ingress"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns,
			Labels: map[string]string{
				"serving.knative.dev/route":          name,
				"serving.knative.dev/routeNamespace": ns,
				"serving.knative.dev/service":        name,
			},
			Annotations: annotations,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "serving.knative.dev/v1", Kind: "Route", Name: name,
				UID: types.UID("5b0c7b3e-0000-4000-8000-" + fmt.Sprintf("%012x", len(name))), Controller: &yes, BlockOwnerDeletion: &yes,
			}},
		},
		Spec: netv1alpha1.IngressSpec{
			HTTPOption: netv1alpha1.HTTPOptionEnabled,
			Rules: []netv1alpha1.IngressRule{{
				Hosts:      []string{name + "." + ns, name + "." + ns + ".svc", name + "." + ns + ".svc.cluster.local"},
				Visibility: netv1alpha1.IngressVisibilityClusterLocal,
				HTTP:       &netv1alpha1.HTTPIngressRuleValue{Paths: paths},
			}, {
				Hosts:      []string{name + "." + ns + ".example.com"},
				Visibility: netv1alpha1.IngressVisibilityExternalIP,
				HTTP:       &netv1alpha1.HTTPIngressRuleValue{Paths: paths},
			}},
		},
	}
}

func kingressPath(ns, name string) string {
	p := "/apis/networking.internal.knative.dev/v1alpha1/namespaces/" + ns + "/ingresses"
	if name != "" {
		p += "/" + name
	}
	return p
}

func getKIngress(t testing.TB, c *Cluster, ns, name string) *netv1alpha1.Ingress {
	t.Helper()
	var ing netv1alpha1.Ingress
	if err := json.Unmarshal(mustDo(t, c, http.MethodGet, kingressPath(ns, name), nil, http.StatusOK), &ing); err != nil {
		t.Fatal(err)
	}
	return &ing
}

// ingressReady checks a KIngress's status is what Knative waits for from
// its ingress: the generation observed, NetworkConfigured,
// LoadBalancerReady and Ready True, and the gateways' Services as its load
// balancers.
func ingressReady(ing *netv1alpha1.Ingress) error {
	st := ing.Status
	if st.ObservedGeneration != ing.Generation {
		return fmt.Errorf("observedGeneration %d, generation %d", st.ObservedGeneration, ing.Generation)
	}
	for _, cond := range []string{"NetworkConfigured", "LoadBalancerReady", "Ready"} {
		c := st.GetCondition(apis.ConditionType(cond))
		if c == nil || c.Status != corev1.ConditionTrue {
			return fmt.Errorf("condition %s is %+v; conditions %+v", cond, c, st.Conditions)
		}
	}
	for _, lb := range []struct {
		what string
		got  *netv1alpha1.LoadBalancerStatus
		want string
	}{
		{"publicLoadBalancer", st.PublicLoadBalancer, "kgate-gateway.kgate-system.svc.cluster.local"},
		{"privateLoadBalancer", st.PrivateLoadBalancer, "kgate-gateway-internal.kgate-system.svc.cluster.local"},
	} {
		if lb.got == nil || len(lb.got.Ingress) == 0 || lb.got.Ingress[0].DomainInternal != lb.want {
			return fmt.Errorf("%s %+v, want ingress[0].domainInternal %s", lb.what, lb.got, lb.want)
		}
	}
	return nil
}

// ingressGateway is an Envoy gateway as the control plane sees one: a
// delta ADS client, with the gateways' certificate, holding every route
// configuration (its ACKs are what LoadBalancerReady waits for).
type ingressGateway struct {
	mu     sync.Mutex
	routes map[string]*routev3.RouteConfiguration
}

// connectIngressGateway connects a gateway to the xDS server with the
// certificate kgate keeps in Secret kgate-gateway-xds-tls, as an Envoy pod
// mounting it would.
func connectIngressGateway(t testing.TB, c *Cluster, addr string) *ingressGateway {
	t.Helper()
	var s corev1.Secret
	if err := json.Unmarshal(mustDo(t, c, http.MethodGet, "/api/v1/namespaces/"+systemNamespace+"/secrets/"+secrets.GatewaySecret, nil, http.StatusOK), &s); err != nil {
		t.Fatal(err)
	}
	bundle, err := pki.NewBundle(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey], s.Data[pki.CAFile])
	if err != nil {
		t.Fatalf("Secret %s: %v", secrets.GatewaySecret, err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(pki.ClientConfig(pki.Static{B: bundle}))))
	if err != nil {
		t.Fatal(err)
	}
	g := &ingressGateway{routes: map[string]*routev3.RouteConfiguration{}}
	cl, err := xdsclient.New(conn, xdsclient.Options{Node: xdsclient.Node{ID: "kgate-gateway-test", Cluster: "kgate-gateway"}})
	if err != nil {
		t.Fatal(err)
	}
	cl.Watch(resource.RouteType, func(u xdsclient.Update) error {
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, r := range u.Resources {
			g.routes[r.Name] = r.Message.(*routev3.RouteConfiguration)
		}
		for _, n := range u.Removed {
			delete(g.routes, n)
		}
		return nil
	}, xdsclient.Wildcard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = cl.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; conn.Close() })
	return g
}

// hosts are the domains of every virtual host the gateway holds.
func (g *ingressGateway) hosts() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, rc := range g.routes {
		for _, vh := range rc.VirtualHosts {
			out = append(out, vh.Domains...)
		}
	}
	slices.Sort(out)
	return out
}
