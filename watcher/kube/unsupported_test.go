package kube

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/watcher"
)

// kgate controller warns of each key it ignores in the ConfigMaps of the
// system namespace once, naming the key and the ConfigMap, at the first
// round and when the ConfigMap changes: not again on every round while the
// key stays, again when its value changes or it comes back after removal.
func TestControllerWarnsOfUnsupportedConfigMapKeysOnce(t *testing.T) {
	const (
		unknown  = `msg="unknown ConfigMap key; ignored" configmap=kgate-system/config-autoscaler key=enableScaleToZero did_you_mean=enable-scale-to-zero`
		features = `msg="ConfigMap key not supported by kgate; ignored" configmap=kgate-system/config-features key=kubernetes.podspec-fieldref why="kgate does not read config-features`
	)
	// Each step's data of config-autoscaler (config-features stays), and
	// how many times each warning is logged in all after it.
	steps := []struct {
		name       string
		autoscaler map[string]string
		want       map[string]int
	}{
		{
			name:       "first round: once each",
			autoscaler: map[string]string{"enableScaleToZero": "false", "stable-window": "60s", "_example": "x"},
			// config-certmanager is read, by the controller itself.
			want: map[string]int{unknown: 1, features: 1, "key=_example": 0, "key=stable-window": 0, "configmap=kgate-system/config-certmanager": 0},
		},
		{
			name:       "an edit of another key warns of nothing again",
			autoscaler: map[string]string{"enableScaleToZero": "false", "stable-window": "30s"},
			want:       map[string]int{unknown: 1, features: 1},
		},
		{
			name:       "a new value warns again",
			autoscaler: map[string]string{"enableScaleToZero": "true", "stable-window": "30s"},
			want:       map[string]int{unknown: 2, features: 1},
		},
		{
			name:       "removed",
			autoscaler: map[string]string{"stable-window": "30s"},
			want:       map[string]int{unknown: 2, features: 1},
		},
		{
			name:       "back with a value warned of before: warned again",
			autoscaler: map[string]string{"enableScaleToZero": "true", "stable-window": "30s"},
			want:       map[string]int{unknown: 3, features: 1},
		},
	}
	cm := func(name string, data map[string]string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kgate-system", Name: name}, Data: data}
	}
	c, _ := newTestController(t, cm("config-autoscaler", steps[0].autoscaler),
		cm("config-features", map[string]string{"kubernetes.podspec-fieldref": "enabled"}),
		cm(ConfigCertManager, map[string]string{"issuerRef": "kind: ClusterIssuer\nname: letsencrypt"}))
	var logs testrun.Buffer
	c.pipe = watcher.New(watcher.Options{Routing: nopRouting{}, Deployed: true, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Now: func() time.Time { return statusTime }})
	for i, step := range steps {
		if i > 0 {
			o := cm("config-autoscaler", nil)
			if err := c.client.Get(t.Context(), client.ObjectKeyFromObject(o), o); err != nil {
				t.Fatal(err)
			}
			o.Data = step.autoscaler
			if err := c.client.Update(t.Context(), o); err != nil {
				t.Fatal(err)
			}
		}
		for range 3 { // rounds with nothing changed log nothing more
			if err := c.round(t.Context()); err != nil {
				t.Fatalf("%s: %v", step.name, err)
			}
		}
		if got := c.pipe.Current().Config.Autoscaler.StableWindow; got != mustDuration(t, step.autoscaler["stable-window"]) {
			t.Fatalf("%s: stable window %v: the round did not read the ConfigMap", step.name, got)
		}
		for line, n := range step.want {
			if got := strings.Count(logs.String(), line); got != n {
				t.Errorf("%s: %d lines with %s, want %d; logs:\n%s", step.name, got, line, n, logs.String())
			}
		}
	}
	if strings.Contains(logs.String(), "file=") {
		t.Errorf("the warnings name a file in Kubernetes mode; logs:\n%s", logs.String())
	}
}

func mustDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
