package folder

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kgate/kgate/watcher/knative"
)

// kgate local warns of each config-network key it ignores once, naming the
// key and the ConfigMap, at load and when the file changes: not again on
// every pass while the key stays, again when its value changes or it comes
// back after it was removed.
func TestFolderWarnsOfUnsupportedConfigMapKeysOnce(t *testing.T) {
	const (
		unknown    = `msg="unknown ConfigMap key; ignored" configmap=default/config-network key=domain-tempate`
		notByKgate = `msg="ConfigMap key not supported by kgate; ignored" configmap=default/config-network key=ingress-class`
	)
	// Each step's file, and how many times each warning is logged in all
	// once the step's pass has run. The domain template differs at each
	// step, so that the test knows when the step is applied.
	steps := []struct {
		name string
		keys string
		want map[string]int
	}{
		{
			name: "at load, once each",
			keys: "domain-tempate: first\n  ingress-class: kourier.ingress.networking.knative.dev\n  _example: anything",
			want: map[string]int{unknown + " did_you_mean=domain-template": 1, notByKgate + ` why="kgate is the ingress`: 1, "key=_example": 0},
		},
		{
			name: "an edit elsewhere in the ConfigMap warns of nothing again",
			keys: "domain-tempate: first\n  ingress-class: kourier.ingress.networking.knative.dev",
			want: map[string]int{unknown: 1, notByKgate: 1},
		},
		{
			name: "a new value warns again",
			keys: "domain-tempate: second\n  ingress-class: kourier.ingress.networking.knative.dev",
			want: map[string]int{unknown: 2, notByKgate: 1},
		},
		{
			name: "removed",
			keys: "ingress-class: kourier.ingress.networking.knative.dev",
			want: map[string]int{unknown: 2, notByKgate: 1},
		},
		{
			name: "back with a value warned of before: warned again",
			keys: "domain-tempate: second\n  ingress-class: kourier.ingress.networking.knative.dev",
			want: map[string]int{unknown: 3, notByKgate: 1},
		},
	}
	file := func(step int) string {
		return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-network\ndata:\n  domain-template: \"{{.Name}}.%d.{{.Domain}}\"\n  %s\n", step, steps[step].keys)
	}
	applied := func(step int) func(*knative.Result) bool {
		return func(r *knative.Result) bool {
			return r.Config.Network.DomainTemplate == fmt.Sprintf("{{.Name}}.%d.{{.Domain}}", step)
		}
	}
	h := startFolder(t, dirOnly, false, map[string]string{"config.yaml": file(0)})
	for i, step := range steps {
		if i > 0 {
			h.write("config.yaml", file(i))
			h.await(step.name, applied(i))
		}
		// More passes with nothing changed log nothing more.
		h.pipe.Refresh()
		h.await("a pass with nothing changed", func(*knative.Result) bool { return true })
		for line, n := range step.want {
			if got := strings.Count(h.logs.String(), line); got != n {
				t.Errorf("%s: %d lines with %s, want %d; logs:\n%s", step.name, got, line, n, h.logs.String())
			}
		}
	}
	if got := h.logs.lines("key=domain-tempate", "file=", "config.yaml", "line=1"); len(got) == 0 {
		t.Errorf("the warnings do not name the file and line of the ConfigMap; logs:\n%s", h.logs.String())
	}
}
