//go:build unix

package local

import (
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"PORT": "8080", "A": "x"}
	lookup := func(n string) (string, bool) { v, ok := vars[n]; return v, ok }
	for in, want := range map[string]string{
		"--port=$(PORT)":  "--port=8080",
		"$(A)$(A)":        "xx",
		"$$(PORT)":        "$(PORT)",
		"$(MISSING)":      "$(MISSING)",
		"cost $5 and $":   "cost $5 and $",
		"$(PORT":          "$(PORT",
		"a$$b":            "a$b",
		"no variables":    "no variables",
		"$(A)-$(MISSING)": "x-$(MISSING)",
	} {
		if got := expand(in, lookup); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLaunchCommand(t *testing.T) {
	c := corev1.Container{
		Command: []string{os.Args[0]},
		Args:    []string{"--port=$(PORT)", "--target=$(TARGET)", "$$(PORT)"},
		Env:     []corev1.EnvVar{env("TARGET", "Knative"), env("GREETING", "Hello $(TARGET)")},
	}
	l, err := newLaunch(newRevision("hello-00001", "hello", c), noImages, time.Minute, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	argv, environ := l.command(4242)
	if want := []string{os.Args[0], "--port=4242", "--target=Knative", "$(PORT)"}; !slices.Equal(argv, want) {
		t.Errorf("argv %q, want %q", argv, want)
	}
	want := []string{"TARGET=Knative", "GREETING=Hello Knative", "K_REVISION=hello-00001",
		"K_CONFIGURATION=hello", "K_SERVICE=hello", "PORT=4242"}
	if tail := environ[len(environ)-len(want):]; !slices.Equal(tail, want) {
		t.Errorf("environment ends %q, want %q", tail, want)
	}
	if l.timeout != 5*time.Minute {
		t.Errorf("timeout %s: want Knative's default, 5 min", l.timeout)
	}
}

// TestGracePeriod pins the time from SIGTERM to SIGKILL: the pod spec's
// terminationGracePeriodSeconds, else Kubernetes' 30 s, bounded by
// MaxGracePeriod if set; the revision's timeout plays no part.
func TestGracePeriod(t *testing.T) {
	tests := []struct {
		name     string
		seconds  *int64 // terminationGracePeriodSeconds
		timeout  *int64 // timeoutSeconds
		maxGrace time.Duration
		want     time.Duration
	}{
		{name: "default", want: 30 * time.Second},
		{name: "default, short timeout", timeout: new(int64(1)), want: 30 * time.Second},
		{name: "from the pod spec", seconds: new(int64(5)), want: 5 * time.Second},
		{name: "zero in the pod spec", seconds: new(int64(0)), want: 0},
		{name: "negative in the pod spec", seconds: new(int64(-1)), want: 30 * time.Second},
		{name: "bounded", seconds: new(int64(120)), maxGrace: time.Minute, want: time.Minute},
		{name: "default bounded", maxGrace: 2 * time.Second, want: 2 * time.Second},
		{name: "bound above", seconds: new(int64(5)), maxGrace: time.Minute, want: 5 * time.Second},
	}
	for _, tc := range tests {
		rev := newRevision("r", "s", corev1.Container{Command: []string{os.Args[0]}})
		rev.Spec.TerminationGracePeriodSeconds = tc.seconds
		rev.Spec.TimeoutSeconds = tc.timeout
		l, err := newLaunch(rev, noImages, tc.maxGrace, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if l.grace != tc.want {
			t.Errorf("%s: grace %s, want %s", tc.name, l.grace, tc.want)
		}
	}
}

func TestLaunchImageArgs(t *testing.T) {
	images, err := NewImages(os.Args[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	c := corev1.Container{Image: "ghcr.io/knative/helloworld-go", Args: []string{"--extra"}}
	l, err := newLaunch(newRevision("r", "s", c), images.Resolve, time.Minute, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{os.Args[0], "sample", "helloworld", "--extra"}; !slices.Equal(l.argv, want) {
		t.Errorf("argv %q, want %q", l.argv, want)
	}
}

func noImages(string) ([]string, bool) { return nil, false }

func TestSetRevisionErrors(t *testing.T) {
	d, err := New(Options{Resolve: noImages})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	self := []string{os.Args[0]}
	two := newRevision("r", "s", corev1.Container{Name: "a", Command: self})
	two.Spec.Containers = append(two.Spec.Containers, corev1.Container{Name: "b", Command: self})
	tests := []struct {
		name string
		spec *corev1.Container
		want string
	}{
		{name: "unmapped image", spec: &corev1.Container{Image: "registry.example.com/team/app:v1"},
			want: `revision default/r: container "user-container": image "registry.example.com/team/app:v1" has no local command: ` +
				`map it with --image NAME=COMMAND (NAME is the image with or without registry and tag, e.g. --image app=./app), ` +
				`or give the container a command`},
		{name: "valueFrom", spec: &corev1.Container{Command: self, Env: []corev1.EnvVar{{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{}}}},
			want: `revision default/r: container "user-container": env PASSWORD: valueFrom is not supported locally (no ConfigMaps, Secrets or fields): give it a value`},
		{name: "envFrom", spec: &corev1.Container{Command: self, EnvFrom: []corev1.EnvFromSource{{}}},
			want: `revision default/r: container "user-container": envFrom is not supported locally (no ConfigMaps or Secrets): give each variable a value`},
		{name: "missing command", spec: &corev1.Container{Command: []string{"kgate-no-such-command"}},
			want: `revision default/r: container "user-container": exec: "kgate-no-such-command": executable file not found in $PATH`},
	}
	for _, tc := range tests {
		err := d.SetRevision("default/r", newRevision("r", "s", *tc.spec))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s:\ngot  %v\nwant %s", tc.name, err, tc.want)
		}
	}
	var unmapped *UnmappedImageError
	err = d.SetRevision("default/r", newRevision("r", "s", corev1.Container{Image: "example.com/x"}))
	if !errors.As(err, &unmapped) || unmapped.Image != "example.com/x" {
		t.Errorf("an unmapped image's error is not an *UnmappedImageError: %v", err)
	}
	if err := d.SetRevision("default/r", two); err == nil || !strings.HasSuffix(err.Error(), "no container has a port: give the serving container one") {
		t.Errorf("two containers without a port: got %v", err)
	}
	two.Spec.Containers[1].Ports = []corev1.ContainerPort{{ContainerPort: 8080}}
	if err := d.SetRevision("default/r", two); err != nil {
		t.Errorf("two containers, one with a port: %v", err)
	}
}
