package local

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/kgate/kgate/deploy/samples"
)

// sampleOf returns the `kgate sample` that runs an image of Knative's
// samples, known by the image's last path element whatever registry
// mirrors it. Aliyun's knative-sample/simple-app is a hello world too.
func sampleOf(lastElement string) (string, bool) {
	switch lastElement {
	case "helloworld-go", "simple-app":
		return samples.NameHelloworld, true
	case "autoscale-go":
		return samples.NameAutoscale, true
	}
	return "", false
}

// Images maps container images to local commands: the user's mappings
// first, then Knative's sample images to `kgate sample`.
type Images struct {
	kgate string              // the kgate binary that serves the samples
	user  map[string][]string // NAME → argv
}

// NewImages returns the image map for the kgate binary at kgate (usually
// os.Executable()) plus the user's mappings, each "NAME=COMMAND" as
// --image takes it. NAME is the image with or without its registry, its
// leading path and its tag ("app", "team/app:v1",
// "registry.example.com/team/app"); the most specific NAME that matches
// wins. COMMAND is split at white space, without quoting, and may refer to
// the container's environment as $(PORT), as Kubernetes commands do.
func NewImages(kgate string, mappings []string) (*Images, error) {
	m := &Images{kgate: kgate, user: map[string][]string{}}
	for _, s := range mappings {
		name, command, ok := strings.Cut(s, "=")
		argv := strings.Fields(command)
		if !ok || strings.TrimSpace(name) == "" || len(argv) == 0 {
			return nil, fmt.Errorf("--image %q: want NAME=COMMAND, e.g. --image myapp='./myapp --port $(PORT)'", s)
		}
		m.user[strings.TrimSpace(name)] = argv
	}
	return m, nil
}

// DefaultImages maps only the sample images, to this very binary.
func DefaultImages() (*Images, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the kgate binary for the sample images: %w", err)
	}
	return NewImages(exe, nil)
}

// Resolve returns the command that runs image locally, and whether there
// is one.
func (m *Images) Resolve(image string) ([]string, bool) {
	for _, n := range imageNames(image) {
		if argv, ok := m.user[n]; ok {
			return slices.Clone(argv), true
		}
	}
	if sample, ok := sampleOf(lastElement(image)); ok {
		return []string{m.kgate, "sample", sample}, true
	}
	return nil, false
}

// lastElement is the last element of an image's path, without its tag:
// "app" for "registry.example.com/team/app:v1".
func lastElement(image string) string {
	names := imageNames(image)
	return names[len(names)-1]
}

// imageNames returns the names an image reference answers to, most
// specific first: the reference itself, then each shorter suffix of its
// path at a "/", each with and then without its tag or digest. The last
// is the image's last path element alone.
func imageNames(image string) []string {
	repo, ref := image, ""
	if i := strings.IndexByte(repo, '@'); i >= 0 {
		repo, ref = repo[:i], repo[i:]
	}
	// A ":" after the last "/" starts the tag; one before it is a
	// registry's port.
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		repo, ref = repo[:i], repo[i:]+ref
	}
	var names []string
	for {
		if ref != "" {
			names = append(names, repo+ref)
		}
		names = append(names, repo)
		i := strings.IndexByte(repo, '/')
		if i < 0 {
			return names
		}
		repo = repo[i+1:]
	}
}
