// Command crdtrim shrinks the CRDs controller-gen writes for the serving
// types, as Knative shrinks its own: `make generate` runs it on
// deploy/install/serving.knative.dev_*.yaml right after controller-gen.
//
// controller-gen turns the corev1.PodSpec that RevisionSpec embeds into a
// full schema: about 200 kB per CRD, and stricter than Knative (a container
// would need a name, an httpGet probe a port). No marker on our types can
// reach into corev1's, so this step edits the generated schema of each
// RevisionSpec (Service and Configuration spec.template.spec, Revision spec):
//
//   - containers keep their full structural schema, so that the API server
//     still rejects unknown fields there and CEL can read ports, names and
//     images, but without the requirements Knative drops (container name,
//     port containerPort, probe handler port) and without the list-map keys
//     that need them; lifecycle (which Knative does not allow) is opaque;
//     and the list gets a maxItems (maxContainers): the CEL rules on
//     RevisionSpec walk the containers, and without a bound the API server
//     estimates a list as long as a whole request and refuses the rules;
//   - volumes keep their name (a list-map key) and are otherwise opaque;
//   - the other PodSpec fields stay as generated when they are flat
//     (scalars, lists and maps of scalars, objects of scalars), and become
//     x-kubernetes-preserve-unknown-fields objects or lists otherwise;
//   - descriptions copied from corev1 are dropped (kubectl explain still
//     shows ours).
//
// Knative's own fields (containerConcurrency, the timeouts) and every CEL
// rule are untouched. Running it twice gives the same files.
package main

import (
	"bytes"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// maxContainers bounds a revision's containers so that the CEL rules that
// walk them fit the API server's cost budget. Knative sets no such limit;
// a pod's containers share one node, and real revisions have one or two.
const maxContainers = 100

// ownFields are RevisionSpec's own fields, next to the inlined PodSpec.
var ownFields = map[string]bool{
	"containerConcurrency": true, "timeoutSeconds": true,
	"responseStartTimeoutSeconds": true, "idleTimeoutSeconds": true,
}

// revisionSpecPath is where each CRD's RevisionSpec schema sits below the
// root schema; routes have none.
var revisionSpecPath = map[string][]string{
	"services.serving.knative.dev":       {"spec", "template", "spec"},
	"configurations.serving.knative.dev": {"spec", "template", "spec"},
	"revisions.serving.knative.dev":      {"spec"},
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: crdtrim CRD.yaml...")
		os.Exit(2)
	}
	for _, file := range os.Args[1:] {
		if err := trimFile(file); err != nil {
			fmt.Fprintf(os.Stderr, "crdtrim: %s: %v\n", file, err)
			os.Exit(1)
		}
	}
}

func trimFile(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var crd map[string]any
	if err := yaml.Unmarshal(data, &crd); err != nil {
		return err
	}
	name, _ := get(crd, "metadata", "name").(string)
	path, ok := revisionSpecPath[name]
	if !ok {
		return nil
	}
	versions, _ := get(crd, "spec", "versions").([]any)
	for _, v := range versions {
		schema, _ := get(v, "schema", "openAPIV3Schema").(map[string]any)
		node := schema
		for _, p := range path {
			node, _ = get(node, "properties", p).(map[string]any)
		}
		if node == nil {
			return fmt.Errorf("no RevisionSpec schema at %v", path)
		}
		trimRevisionSpec(node)
	}
	out, err := yaml.Marshal(crd)
	if err != nil {
		return err
	}
	// controller-gen starts each file with a document marker; keep it.
	out = append([]byte("---\n"), out...)
	if bytes.Equal(out, data) {
		return nil
	}
	return os.WriteFile(file, out, 0o644)
}

func trimRevisionSpec(spec map[string]any) {
	props, _ := spec["properties"].(map[string]any)
	for name, p := range props {
		if ownFields[name] {
			continue
		}
		prop := p.(map[string]any)
		dropDescriptions(prop)
		switch {
		case name == "containers":
			relaxContainers(prop)
		case name == "volumes":
			// The list stays a map keyed by name, as in Kubernetes and
			// Knative, so name stays declared and required.
			prop["items"] = map[string]any{
				"type":                                 "object",
				"required":                             []any{"name"},
				"properties":                           map[string]any{"name": map[string]any{"type": "string"}},
				"x-kubernetes-preserve-unknown-fields": true,
			}
		case !flat(prop):
			props[name] = opaque(prop)
		}
	}
}

// relaxContainers removes from the containers' schema what Knative does not
// require, and makes lifecycle opaque.
func relaxContainers(containers map[string]any) {
	delete(containers, "x-kubernetes-list-type")
	delete(containers, "x-kubernetes-list-map-keys")
	containers["maxItems"] = maxContainers
	item, _ := containers["items"].(map[string]any)
	delete(item, "required") // name: Knative names containers itself
	props, _ := item["properties"].(map[string]any)
	if ports, ok := props["ports"].(map[string]any); ok {
		// containerPort and protocol are the list-map keys; Knative
		// requires neither (a port may only name its protocol, h2c).
		delete(ports, "x-kubernetes-list-type")
		delete(ports, "x-kubernetes-list-map-keys")
		if pi, ok := ports["items"].(map[string]any); ok {
			delete(pi, "required")
		}
	}
	for _, probe := range []string{"livenessProbe", "readinessProbe", "startupProbe"} {
		pp, _ := get(props, probe, "properties").(map[string]any)
		for _, handler := range []string{"httpGet", "tcpSocket", "grpc"} {
			if h, ok := pp[handler].(map[string]any); ok {
				delete(h, "required") // port: Knative probes the serving port
			}
		}
	}
	if lc, ok := props["lifecycle"].(map[string]any); ok {
		props["lifecycle"] = opaque(lc)
	}
}

// opaque keeps a schema's type and lets anything through below it.
func opaque(s map[string]any) map[string]any {
	if s["type"] == "array" {
		return map[string]any{"type": "array", "items": map[string]any{
			"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
	}
	return map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}
}

// flat reports schemas no deeper than an object or list of scalars, which
// cost little to keep and catch typos.
func flat(s map[string]any) bool {
	if s["x-kubernetes-preserve-unknown-fields"] == true {
		return true // already opaque
	}
	switch s["type"] {
	case "array":
		items, _ := s["items"].(map[string]any)
		return scalar(items) || items["type"] == "object" && scalarProps(items)
	case "object":
		if ap, ok := s["additionalProperties"].(map[string]any); ok {
			return scalar(ap)
		}
		return scalarProps(s)
	}
	return true
}

func scalarProps(s map[string]any) bool {
	props, _ := s["properties"].(map[string]any)
	for _, p := range props {
		if !scalar(p.(map[string]any)) {
			return false
		}
	}
	return true
}

func scalar(s map[string]any) bool {
	switch s["type"] {
	case "string", "integer", "boolean", "number":
		return true
	}
	return s["x-kubernetes-int-or-string"] == true
}

func dropDescriptions(v any) {
	switch v := v.(type) {
	case map[string]any:
		// A property may itself be called "description"; only drop string
		// values, which are the schema keyword's.
		if _, ok := v["description"].(string); ok {
			delete(v, "description")
		}
		for _, x := range v {
			dropDescriptions(x)
		}
	case []any:
		for _, x := range v {
			dropDescriptions(x)
		}
	}
}

// get walks nested maps by key, returning nil when a step is missing.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}
