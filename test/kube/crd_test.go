package kube

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kgate/kgate/internal/testrun"
)

// The serving.knative.dev CRDs of deploy/install, installed into a real
// apiserver: the seeds apply verbatim, Knative's webhook rules that the CRDs
// carry as CEL reject bad objects with Knative's messages, and discovery and
// tables show Knative's short names and columns.

const crdGroupPath = "/apis/serving.knative.dev/v1"

// crdRoot is the repository root, found from this file.
func crdRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the repository")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// crdInstall creates the generated CRDs and waits until each is Established
// and served, so the tests need no retries.
func crdInstall(t testing.TB, c *Cluster) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(crdRoot(t), "deploy", "install", "*knative.dev_*.yaml"))
	if err != nil || len(files) != 6 {
		t.Fatalf("want the 6 generated CRDs in deploy/install (v1's four, v1beta1's DomainMapping, networking's ClusterDomainClaim), got %v (%v)", files, err)
	}
	var names []string
	for _, f := range files {
		body := crdYAMLToJSON(t, f)
		status, resp, err := c.Do(http.MethodPost, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body)
		if err != nil || status != http.StatusCreated {
			t.Fatalf("creating the CRD in %s: %d %v %s", filepath.Base(f), status, err, resp)
		}
		var crd struct {
			Metadata struct{ Name string } `json:"metadata"`
		}
		if err := json.Unmarshal(body, &crd); err != nil {
			t.Fatal(err)
		}
		names = append(names, crd.Metadata.Name)
	}
	testrun.Poll{Within: 30 * time.Second, Every: 100 * time.Millisecond}.Eventually(t, "CRDs Established", func() error {
		for _, name := range names {
			_, resp, err := c.Do(http.MethodGet, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"+name, nil)
			if err != nil {
				return err
			}
			var crd struct {
				Status struct {
					Conditions []struct{ Type, Status string } `json:"conditions"`
				} `json:"status"`
			}
			if err := json.Unmarshal(resp, &crd); err != nil {
				return err
			}
			if !slices.ContainsFunc(crd.Status.Conditions, func(c struct{ Type, Status string }) bool {
				return c.Type == "Established" && c.Status == "True"
			}) {
				return fmt.Errorf("%s not Established: %+v", name, crd.Status.Conditions)
			}
		}
		// Established comes a moment before discovery lists the resources.
		if n := len(crdDiscovery(t, c)); n != 4 {
			return fmt.Errorf("discovery lists %d serving resources, want 4", n)
		}
		return nil
	})
}

func crdYAMLToJSON(t testing.TB, file string) []byte {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return j
}

// crdDiscovery returns the group version's resources (not subresources).
func crdDiscovery(t testing.TB, c *Cluster) map[string]metav1.APIResource {
	t.Helper()
	status, body, err := c.Do(http.MethodGet, crdGroupPath, nil)
	if err != nil || status != http.StatusOK {
		return nil
	}
	var list metav1.APIResourceList
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("GET %s: %v", crdGroupPath, err)
	}
	out := map[string]metav1.APIResource{}
	for _, r := range list.APIResources {
		if !strings.Contains(r.Name, "/") {
			out[r.Name] = r
		}
	}
	return out
}

func crdNamespace(t testing.TB, c *Cluster, name string) {
	t.Helper()
	ns := map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}}
	if status, body, err := c.Do(http.MethodPost, "/api/v1/namespaces", ns); err != nil || status != http.StatusCreated {
		t.Fatalf("creating namespace %s: %d %v %s", name, status, err, body)
	}
}

// crdCreate POSTs obj (YAML) into ns with strict field validation, so that
// a field the schema would prune fails instead of vanishing; dryRun leaves
// nothing behind.
func crdCreate(c *Cluster, ns, resource, obj string, dryRun bool) (int, []byte, error) {
	j, err := yaml.YAMLToJSON([]byte(obj))
	if err != nil {
		return 0, nil, err
	}
	path := fmt.Sprintf("%s/namespaces/%s/%s?fieldValidation=Strict", crdGroupPath, ns, resource)
	if dryRun {
		path += "&dryRun=All"
	}
	return c.Do(http.MethodPost, path, j)
}

func TestCRDs(t *testing.T) {
	Require(t)
	c := Start(t)
	crdInstall(t, c)

	t.Run("SeedsAccepted", func(t *testing.T) { testCRDSeeds(t, c) })
	t.Run("ValidAccepted", func(t *testing.T) { testCRDValid(t, c) })
	t.Run("InvalidRejected", func(t *testing.T) { testCRDInvalid(t, c) })
	t.Run("Discovery", func(t *testing.T) { testCRDDiscovery(t, c) })
	t.Run("PrinterColumns", func(t *testing.T) { testCRDPrinterColumns(t, c) })
}

// testCRDSeeds creates every v1 seed verbatim (the v1alpha1 ones are
// converted by kgate's tooling, the garbled ones are not YAML) and reads it
// back: nothing may be rejected, and nothing the seed says may be pruned.
func testCRDSeeds(t *testing.T, c *Cluster) {
	files, err := filepath.Glob(filepath.Join(crdRoot(t), "api", "manifest", "testdata", "seeds", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no seeds: %v", err)
	}
	n := 0
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(f, "garbled") || !bytes.Contains(data, []byte("apiVersion: serving.knative.dev/v1\n")) {
			continue
		}
		n++
		t.Run(filepath.Base(f), func(t *testing.T) {
			// Several seeds are the same Service "hello": one namespace each.
			ns := fmt.Sprintf("seed-%d", i)
			crdNamespace(t, c, ns)
			status, body, err := crdCreate(c, ns, "services", string(data), false)
			if err != nil || status != http.StatusCreated {
				t.Fatalf("create: %d %v %s", status, err, body)
			}
			var want, got map[string]any
			if err := yaml.Unmarshal(data, &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if !crdSubset(want["spec"], got["spec"]) {
				t.Errorf("stored spec lost fields of the seed:\nseed:   %v\nstored: %v", want["spec"], got["spec"])
			}
		})
	}
	if n < 7 {
		t.Errorf("ran %d v1 seeds, want at least 7", n)
	}
}

// crdSubset reports whether every value in want is in got (the apiserver may
// add defaults, such as a port's protocol, but must not drop anything).
func crdSubset(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if !crdSubset(v, g[k]) {
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
			if !crdSubset(w[i], g[i]) {
				return false
			}
		}
		return true
	}
	return fmt.Sprint(want) == fmt.Sprint(got)
}

// crdService is a valid Service "hello"; tests replace or append to its
// parts. TEMPLATE_META, SPEC_EXTRA, CONTAINERS and TRAFFIC are placeholders.
const crdService = `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
spec:
  template:
    metadata:
      TEMPLATE_META
    spec:
      SPEC_EXTRA
      containers:
CONTAINERS
TRAFFIC
`

const crdOneContainer = `      - image: ghcr.io/knative/helloworld-go
        ports:
        - containerPort: 8080`

// svc builds a Service from crdService.
type svc struct {
	meta, extra, containers, traffic string
}

func (s svc) String() string {
	if s.meta == "" {
		s.meta = "labels: {app: hello}"
	}
	if s.extra == "" {
		s.extra = "timeoutSeconds: 300"
	}
	if s.containers == "" {
		s.containers = crdOneContainer
	}
	return strings.NewReplacer("TEMPLATE_META", s.meta, "SPEC_EXTRA", s.extra,
		"CONTAINERS", s.containers, "TRAFFIC", s.traffic).Replace(crdService)
}

// testCRDValid checks edge cases Knative accepts: a rule must not reject
// any of them.
func testCRDValid(t *testing.T, c *Cluster) {
	crdNamespace(t, c, "valid")
	tests := []struct {
		name, resource, obj string
	}{
		{"no traffic", "services", svc{}.String()},
		{"split with a tag at 0%", "services", svc{traffic: `  traffic:
  - {latestRevision: true, percent: 100}
  - {revisionName: hello-00001, latestRevision: false, percent: 0, tag: old-v1}
  - {revisionName: hello-00002, percent: 0, tag: v2}`}.String()},
		{"two containers, the one with the port serves", "services", svc{containers: `      - name: app
        image: app
        ports: [{containerPort: 8080, name: h2c}]
      - name: sidecar
        image: sidecar`}.String()},
		{"no port, no container name, probes without ports", "services", svc{containers: `      - image: app
        readinessProbe: {httpGet: {path: /healthz}}
        livenessProbe: {tcpSocket: {}}`}.String()},
		{"scale annotations in both spellings and odd but valid forms", "services", svc{meta: `annotations:
        autoscaling.knative.dev/min-scale: "+1"
        autoscaling.knative.dev/maxScale: "007"
        autoscaling.knative.dev/target: "1e1"`}.String()},
		{"a target Go parses but the rule's pattern does not: left to the controller", "services",
			svc{meta: `annotations: {autoscaling.knative.dev/target: "Inf"}`}.String()},
		{"bounds: concurrency 0 and 1000, timeout 0 and 600", "services", svc{extra: "containerConcurrency: 1000"}.String()},
		{"timeout 600", "services", svc{extra: "timeoutSeconds: 600\n      containerConcurrency: 0"}.String()},
		{"template name with the Service's prefix and pod fields Knative allows", "services", svc{
			meta: "name: hello-v2",
			extra: `serviceAccountName: sa
      enableServiceLinks: false
      imagePullSecrets: [{name: regcred}]
      volumes: [{name: cfg, configMap: {name: cfg}}]`,
			containers: `      - image: app
        volumeMounts: [{name: cfg, mountPath: /etc/cfg}]
        env: [{name: A, valueFrom: {secretKeyRef: {name: s, key: k}}}]
        resources: {limits: {cpu: "1", memory: 128Mi}}`}.String()},
		{"route by configuration and revision", "routes", `apiVersion: serving.knative.dev/v1
kind: Route
metadata: {name: r}
spec:
  traffic:
  - {configurationName: c, percent: 90}
  - {revisionName: c-00001, percent: 10, tag: prev}`},
		{"configuration", "configurations", `apiVersion: serving.knative.dev/v1
kind: Configuration
metadata: {name: c}
spec:
  template:
    metadata: {name: c-v1}
    spec:
      containerConcurrency: 10
      containers: [{image: app}]`},
		{"revision", "revisions", `apiVersion: serving.knative.dev/v1
kind: Revision
metadata: {name: c-00001}
spec:
  timeoutSeconds: 300
  containers: [{image: app, ports: [{containerPort: 8080}]}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, err := crdCreate(c, "valid", tt.resource, tt.obj, true)
			if err != nil || status != http.StatusCreated {
				t.Errorf("%d %v %s\n%s", status, err, body, tt.obj)
			}
		})
	}
}

// testCRDInvalid checks that each rule rejects with 422, on the field and
// with kgate's (Knative's) message.
func testCRDInvalid(t *testing.T, c *Cluster) {
	crdNamespace(t, c, "invalid")
	twoTargets := func(a, b string) string { return "  traffic:\n  - " + a + "\n  - " + b }
	tests := []struct {
		name, resource, obj string
		field, message      string
	}{
		{"percent above 100", "services", svc{traffic: twoTargets("{latestRevision: true, percent: 101}", "{revisionName: hello-00001, percent: -1}")}.String(),
			"spec.traffic[0].percent", "expected 0 <= percent <= 100"},
		{"percent below 0", "services", svc{traffic: twoTargets("{latestRevision: true, percent: 101}", "{revisionName: hello-00001, percent: -1}")}.String(),
			"spec.traffic[1].percent", "expected 0 <= percent <= 100"},
		{"sum not 100", "services", svc{traffic: twoTargets("{latestRevision: true, percent: 50}", "{revisionName: hello-00001, percent: 40}")}.String(),
			"spec.traffic", "Traffic targets do not sum to 100, want 100"},
		{"latestRevision true with a revisionName", "services", svc{traffic: "  traffic: [{revisionName: hello-00001, latestRevision: true, percent: 100}]"}.String(),
			"spec.traffic[0].latestRevision", "may not set revisionName when latestRevision is true"},
		{"latestRevision false without a revisionName", "services", svc{traffic: "  traffic: [{latestRevision: false, percent: 100}]"}.String(),
			"spec.traffic[0].latestRevision", `may not set revisionName "" when latestRevision is false`},
		{"duplicate tags", "services", svc{traffic: twoTargets("{latestRevision: true, percent: 100, tag: a}", "{revisionName: hello-00001, percent: 0, tag: a}")}.String(),
			"spec.traffic", "Multiple definitions for a tag"},
		{"tag not a DNS label", "services", svc{traffic: twoTargets("{latestRevision: true, percent: 100}", "{revisionName: hello-00001, percent: 0, tag: Bad_Tag}")}.String(),
			"spec.traffic[1].tag", "not a DNS 1035 label"},
		{"tag too long", "services", svc{traffic: "  traffic: [{latestRevision: true, percent: 100, tag: " + strings.Repeat("a", 64) + "}]"}.String(),
			"spec.traffic[0].tag", "Too long"},
		{"url in spec", "services", svc{traffic: "  traffic: [{latestRevision: true, percent: 100, url: 'http://x'}]"}.String(),
			"spec.traffic[0].url", "must not set the field(s)"},
		{"configurationName in a Service", "services", svc{traffic: twoTargets("{latestRevision: true, percent: 50}", "{configurationName: other, percent: 50}")}.String(),
			"spec.traffic", "must not set the field(s): spec.traffic[*].configurationName"},
		{"two ports", "services", svc{containers: crdOneContainer + "\n        - containerPort: 8081"}.String(),
			"spec.template.spec.containers", "more than one container port is set"},
		{"two containers, no port", "services", svc{containers: "      - {name: a, image: a}\n      - {name: b, image: b}"}.String(),
			"spec.template.spec.containers", "missing field(s): containers[*].ports"},
		{"no container", "services", svc{containers: "        []"}.String(),
			"spec.template.spec.containers", "missing field(s)"},
		{"no image", "services", svc{containers: "      - {name: a, ports: [{containerPort: 8080}]}"}.String(),
			"spec.template.spec.containers", "missing field(s): containers[*].image"},
		{"reserved container name", "services", svc{containers: "      - {name: queue-proxy, image: a}"}.String(),
			"spec.template.spec.containers", `"queue-proxy" is a reserved container name`},
		{"reserved port", "services", svc{containers: "      - {image: a, ports: [{containerPort: 8012}]}"}.String(),
			"spec.template.spec.containers", "8012, 8013, 8022, 9090 and 9091 are reserved ports"},
		{"port name", "services", svc{containers: "      - {image: a, ports: [{containerPort: 8080, name: grpc}]}"}.String(),
			"spec.template.spec.containers", "Port name is not allowed"},
		{"port protocol", "services", svc{containers: "      - {image: a, ports: [{containerPort: 8080, protocol: UDP}]}"}.String(),
			"spec.template.spec.containers", "containers[*].ports.protocol: only TCP is supported"},
		{"containerConcurrency above 1000", "services", svc{extra: "containerConcurrency: 1001"}.String(),
			"spec.template.spec.containerConcurrency", "expected 0 <= containerConcurrency <= 1000"},
		{"containerConcurrency negative", "services", svc{extra: "containerConcurrency: -1"}.String(),
			"spec.template.spec.containerConcurrency", "expected 0 <= containerConcurrency <= 1000"},
		{"timeoutSeconds above 600", "services", svc{extra: "timeoutSeconds: 601"}.String(),
			"spec.template.spec.timeoutSeconds", "expected 0 <= timeoutSeconds <= 600"},
		{"min-scale negative", "services", svc{meta: `annotations: {autoscaling.knative.dev/min-scale: "-1"}`}.String(),
			"spec.template.metadata.annotations[autoscaling.knative.dev/min-scale]", "expected 0 <= -1 <= 2147483647"},
		{"maxScale not a number", "services", svc{meta: `annotations: {autoscaling.knative.dev/maxScale: "five"}`}.String(),
			"spec.template.metadata.annotations[autoscaling.knative.dev/maxScale]", "invalid value: five"},
		{"max-scale above int32", "services", svc{meta: `annotations: {autoscaling.knative.dev/max-scale: "2147483648"}`}.String(),
			"spec.template.metadata.annotations[autoscaling.knative.dev/max-scale]", "expected 0 <= 2147483648 <= 2147483647"},
		{"target below 0.01", "services", svc{meta: `annotations: {autoscaling.knative.dev/target: "0.001"}`}.String(),
			"spec.template.metadata.annotations[autoscaling.knative.dev/target]", "target 0.001 should be at least 0.01"},
		{"template name without the Service's prefix", "services", svc{meta: "name: other-v1"}.String(),
			"spec.template.metadata.name", `"other-v1" must have prefix "hello-"`},
		{"route without traffic", "routes", "apiVersion: serving.knative.dev/v1\nkind: Route\nmetadata: {name: r}\nspec: {}",
			"spec.traffic", "Traffic targets sum to 0, want 100"},
		{"route target naming neither", "routes", "apiVersion: serving.knative.dev/v1\nkind: Route\nmetadata: {name: r}\nspec:\n  traffic: [{percent: 100}]",
			"spec.traffic", "expected exactly one, got neither"},
		{"route target naming both", "routes", "apiVersion: serving.knative.dev/v1\nkind: Route\nmetadata: {name: r}\nspec:\n  traffic: [{revisionName: c-00001, configurationName: c, percent: 100}]",
			"spec.traffic", "expected exactly one, got both"},
		{"configuration timeout", "configurations", "apiVersion: serving.knative.dev/v1\nkind: Configuration\nmetadata: {name: c}\nspec:\n  template:\n    spec:\n      timeoutSeconds: -1\n      containers: [{image: a}]",
			"spec.template.spec.timeoutSeconds", "expected 0 <= timeoutSeconds <= 600"},
		{"revision concurrency", "revisions", "apiVersion: serving.knative.dev/v1\nkind: Revision\nmetadata: {name: r}\nspec:\n  containerConcurrency: 5000\n  containers: [{image: a}]",
			"spec.containerConcurrency", "expected 0 <= containerConcurrency <= 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, err := crdCreate(c, "invalid", tt.resource, tt.obj, true)
			if err != nil {
				t.Fatal(err)
			}
			if status != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422: %s\n%s", status, body, tt.obj)
			}
			var st metav1.Status
			if err := json.Unmarshal(body, &st); err != nil {
				t.Fatal(err)
			}
			if st.Details == nil || !slices.ContainsFunc(st.Details.Causes, func(c metav1.StatusCause) bool {
				return c.Field == tt.field && strings.Contains(c.Message, tt.message)
			}) {
				t.Errorf("no cause on %s saying %q in:\n%s", tt.field, tt.message, st.Message)
			}
		})
	}
}

// testCRDDiscovery checks what kubectl's resource lookup reads: short names,
// categories (kubectl get knative) and the status subresource.
func testCRDDiscovery(t *testing.T, c *Cluster) {
	all := crdDiscovery(t, c)
	status, body, err := c.Do(http.MethodGet, crdGroupPath, nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET %s: %d %v", crdGroupPath, status, err)
	}
	tests := []struct {
		resource, kind string
		shortNames     []string
	}{
		{"services", "Service", []string{"kservice", "ksvc"}},
		{"configurations", "Configuration", []string{"config", "cfg"}},
		{"revisions", "Revision", []string{"rev"}},
		{"routes", "Route", []string{"rt"}},
	}
	for _, tt := range tests {
		r, ok := all[tt.resource]
		if !ok {
			t.Errorf("%s not in discovery", tt.resource)
			continue
		}
		if r.Kind != tt.kind || !r.Namespaced {
			t.Errorf("%s: kind %q namespaced %t, want %q namespaced", tt.resource, r.Kind, r.Namespaced, tt.kind)
		}
		if !slices.Equal(r.ShortNames, tt.shortNames) {
			t.Errorf("%s: shortNames %v, want %v", tt.resource, r.ShortNames, tt.shortNames)
		}
		if !slices.Equal(r.Categories, []string{"all", "knative", "serving"}) {
			t.Errorf("%s: categories %v, want [all knative serving]", tt.resource, r.Categories)
		}
		if !bytes.Contains(body, []byte(`"name":"`+tt.resource+`/status"`)) {
			t.Errorf("%s: no status subresource", tt.resource)
		}
	}
}

// testCRDPrinterColumns asks for tables, as kubectl get does, and checks the
// columns are Knative's (which has no Age column).
func testCRDPrinterColumns(t *testing.T, c *Cluster) {
	tests := []struct {
		resource string
		columns  []string
	}{
		{"services", []string{"Name", "URL", "LatestCreated", "LatestReady", "Ready", "Reason"}},
		{"configurations", []string{"Name", "LatestCreated", "LatestReady", "Ready", "Reason"}},
		{"revisions", []string{"Name", "Config Name", "Generation", "Ready", "Reason", "Actual Replicas", "Desired Replicas"}},
		{"routes", []string{"Name", "URL", "Ready", "Reason"}},
	}
	for _, tt := range tests {
		t.Run(tt.resource, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, c.URL+crdGroupPath+"/namespaces/default/"+tt.resource, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+c.Token)
			req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
			resp, err := c.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			var table metav1.Table
			if err := json.Unmarshal(body, &table); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, col := range table.ColumnDefinitions {
				got = append(got, col.Name)
			}
			if !slices.Equal(got, tt.columns) {
				t.Errorf("columns %q, want %q", got, tt.columns)
			}
		})
	}
}
