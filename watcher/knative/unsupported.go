package knative

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/api/manifest"
)

// UnsupportedKey is a key of a declared ConfigMap that kgate ignores
// (config.Unsupported), with where the ConfigMap is declared.
type UnsupportedKey struct {
	// File and Line are where the ConfigMap is declared (local mode).
	File string
	Line int
	// Namespace and ConfigMap name the ConfigMap.
	Namespace, ConfigMap string
	config.UnsupportedKey
}

// Unsupported returns the keys kgate ignores in the ConfigMaps among objs,
// in their order: of each name, the first declared, as the reconciler reads
// them (configMaps; the others are reported as ignored whole). Apart from
// the reconciler's pass because it says nothing about any object's status,
// only what a pipeline logs.
func Unsupported(objs []manifest.Object) []UnsupportedKey {
	var out []UnsupportedKey
	seen := map[string]bool{}
	for _, o := range objs {
		cm, ok := o.Obj.(*corev1.ConfigMap)
		if !ok || seen[cm.Name] {
			continue
		}
		seen[cm.Name] = true
		for _, u := range config.Unsupported(cm.Name, cm.Data) {
			out = append(out, UnsupportedKey{File: o.File, Line: o.Line, Namespace: o.Namespace, ConfigMap: cm.Name, UnsupportedKey: u})
		}
	}
	return out
}
