package kube

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
)

var update = flag.Bool("update", false, "rewrite testdata/out from the builders' output")

// readRevision decodes a Revision manifest strictly: a typo in a golden
// input must fail, not silently drop a field.
func readRevision(t *testing.T, path string) *servingv1.Revision {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rev servingv1.Revision
	if err := yaml.UnmarshalStrict(b, &rev); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &rev
}

// TestGolden builds each testdata/in revision's Deployment and private
// Service with the default Options and compares them with testdata/out
// (go test -update rewrites it).
func TestGolden(t *testing.T) {
	ins, err := filepath.Glob("testdata/in/*.yaml")
	if err != nil || len(ins) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			rev := readRevision(t, in)
			before, _ := json.Marshal(rev)

			var got bytes.Buffer
			for i, obj := range []any{Deployment(rev, Options{}), PrivateService(rev)} {
				b, err := yaml.Marshal(obj)
				if err != nil {
					t.Fatal(err)
				}
				if i > 0 {
					got.WriteString("---\n")
				}
				got.Write(b)
			}

			if after, _ := json.Marshal(rev); !bytes.Equal(before, after) {
				t.Errorf("the builders changed their input revision:\nbefore %s\nafter  %s", before, after)
			}
			out := filepath.Join("testdata", "out", name+".yaml")
			if *update {
				if err := os.WriteFile(out, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(out)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("%s differs (go test -update rewrites it); got:\n%s", out, got.Bytes())
			}
		})
	}
}

func TestOptions(t *testing.T) {
	rev := readRevision(t, "testdata/in/hello.yaml")
	opts := Options{
		InitialReplicas:    new(int32(0)),
		ProgressDeadline:   90 * time.Second,
		EnableServiceLinks: new(true),
		ProbePeriodSeconds: 3,
	}
	d := Deployment(rev, opts)
	if got := *d.Spec.Replicas; got != 0 {
		t.Errorf("replicas = %d, want InitialReplicas 0", got)
	}
	if got := *d.Spec.ProgressDeadlineSeconds; got != 90 {
		t.Errorf("progressDeadlineSeconds = %d, want 90", got)
	}
	pod := d.Spec.Template.Spec
	if got := *pod.EnableServiceLinks; !got {
		t.Errorf("enableServiceLinks = false, want Options' true")
	}
	if got := pod.Containers[0].ReadinessProbe.PeriodSeconds; got != 3 {
		t.Errorf("readiness periodSeconds = %d, want 3", got)
	}

	// The revision's own enableServiceLinks wins over the Options'.
	rev.Spec.EnableServiceLinks = new(false)
	if got := *Deployment(rev, opts).Spec.Template.Spec.EnableServiceLinks; got {
		t.Errorf("enableServiceLinks = true, want the revision's false")
	}

	// Zero Options are Knative's defaults.
	d = Deployment(rev, Options{})
	if *d.Spec.Replicas != DefaultInitialReplicas || *d.Spec.ProgressDeadlineSeconds != int32(DefaultProgressDeadline/time.Second) {
		t.Errorf("zero Options: replicas %d, progressDeadlineSeconds %d", *d.Spec.Replicas, *d.Spec.ProgressDeadlineSeconds)
	}
}

// TestPodSpecEnv pins the runtime contract's variables on the serving
// container and on a sidecar.
func TestPodSpecEnv(t *testing.T) {
	rev := readRevision(t, "testdata/in/two-containers.yaml")
	pod := PodSpec(rev, Options{})
	env := func(c corev1.Container) map[string]string {
		m := map[string]string{}
		for _, e := range c.Env {
			m[e.Name] = e.Value
		}
		return m
	}
	sidecar, app := env(pod.Containers[0]), env(pod.Containers[1])
	for name, want := range map[string]string{"PORT": "8881", "K_REVISION": "multi-00001", "K_CONFIGURATION": "multi", "K_SERVICE": "", "SIDECAR_ADDR": "127.0.0.1:9999"} {
		if got, ok := app[name]; !ok || got != want {
			t.Errorf("serving container %s = %q (set %v), want %q", name, got, ok, want)
		}
	}
	if _, ok := sidecar["PORT"]; ok {
		t.Errorf("sidecar has PORT; only the serving container gets it")
	}
	if sidecar["K_REVISION"] != "multi-00001" {
		t.Errorf("sidecar K_REVISION = %q", sidecar["K_REVISION"])
	}
	if len(pod.Containers[0].Ports) != 0 {
		t.Errorf("sidecar ports = %v, want none", pod.Containers[0].Ports)
	}
}

func TestChildName(t *testing.T) {
	for _, tc := range []struct{ parent, suffix, want string }{
		{"hello-00001", "-deployment", "hello-00001-deployment"},
		{strings.Repeat("a", 52), "-deployment", strings.Repeat("a", 52) + "-deployment"},
		// 53 + 11 > 63: 20 characters of the parent, its MD5 (md5sum), the suffix.
		{strings.Repeat("a", 53), "-deployment", strings.Repeat("a", 20) + "e9e7e260dce84ffa6e0e7eb5fd9d37fc-deployment"},
		{strings.Repeat("a", 56), "-private", strings.Repeat("a", 23) + "3b0c8ac703f828b04c6c197006d17218-private"},
		{strings.Repeat("a", 55), "-private", strings.Repeat("a", 55) + "-private"},
	} {
		got := childName(tc.parent, tc.suffix)
		if got != tc.want {
			t.Errorf("childName(%q, %q) = %q, want %q", tc.parent, tc.suffix, got, tc.want)
		}
		if len(got) > maxNameLength {
			t.Errorf("childName(%q, %q) is %d characters", tc.parent, tc.suffix, len(got))
		}
	}
}
