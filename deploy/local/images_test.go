//go:build unix

package local

import (
	"slices"
	"strings"
	"testing"
)

func TestImagesSamples(t *testing.T) {
	m, err := NewImages("/bin/kgate", nil)
	if err != nil {
		t.Fatal(err)
	}
	hello := []string{"/bin/kgate", "sample", "helloworld"}
	autoscale := []string{"/bin/kgate", "sample", "autoscale"}
	for image, want := range map[string][]string{
		// The seeds' spellings.
		"m.daocloud.io/ghcr.io/knative/helloworld-go:latest":                      hello,
		"gcr.oneitfarm.com/knative-samples/helloworld-go":                         hello,
		"registry.cn-hangzhou.aliyuncs.com/knative-sample/helloworld-go:160e4dc8": hello,
		"registry.cn-hangzhou.aliyuncs.com/knative-sample/simple-app:07":          hello,
		// Knative's own, by tag, digest and registry port.
		"ghcr.io/knative/helloworld-go:latest":              hello,
		"ghcr.io/knative/helloworld-go@sha256:0123456789ab": hello,
		"localhost:5000/helloworld-go":                      hello,
		"helloworld-go":                                     hello,
		"ghcr.io/knative/autoscale-go:latest":               autoscale,
		"gcr.io/knative-samples/autoscale-go:0.1":           autoscale,
		// Not samples.
		"docker.io/library/nginx":            nil,
		"example.com/helloworld-go-fork:1":   nil,
		"example.com/helloworld-go/other:v1": nil,
	} {
		got, ok := m.Resolve(image)
		if ok != (want != nil) || !slices.Equal(got, want) {
			t.Errorf("Resolve(%q) = %q, %v; want %q", image, got, ok, want)
		}
	}
}

func TestImagesUserMappings(t *testing.T) {
	m, err := NewImages("/bin/kgate", []string{
		"app=./app --port $(PORT)",
		"team/app:v2=./v2",
		"registry.example.com/team/app=./full",
		" helloworld-go = ./mine ",
	})
	if err != nil {
		t.Fatal(err)
	}
	for image, want := range map[string]string{
		"app":                                  "./app --port $(PORT)",
		"other.example.com/app:v1":             "./app --port $(PORT)",
		"localhost:5000/app":                   "./app --port $(PORT)",
		"other.example.com/team/app:v2":        "./v2",
		"registry.example.com/team/app:v1":     "./full",
		"registry.example.com/team/app:v2":     "./full", // the longer NAME is more specific
		"ghcr.io/knative/helloworld-go:latest": "./mine", // a user mapping overrides a sample
		"ghcr.io/knative/autoscale-go":         "/bin/kgate sample autoscale",
	} {
		got, ok := m.Resolve(image)
		if !ok || strings.Join(got, " ") != want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", image, got, ok, want)
		}
	}
}

func TestImagesBadMappings(t *testing.T) {
	for _, s := range []string{"app", "=./app", "app=", "app=  ", " =./app"} {
		_, err := NewImages("/bin/kgate", []string{s})
		if err == nil || !strings.Contains(err.Error(), "want NAME=COMMAND") {
			t.Errorf("NewImages(%q): got error %v, want one asking for NAME=COMMAND", s, err)
		}
	}
}

func TestImageNames(t *testing.T) {
	got := imageNames("registry.example.com:5000/team/app:v1@sha256:ab")
	want := []string{
		"registry.example.com:5000/team/app:v1@sha256:ab", "registry.example.com:5000/team/app",
		"team/app:v1@sha256:ab", "team/app",
		"app:v1@sha256:ab", "app",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
