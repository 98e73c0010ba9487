package manifest

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestChecks covers steps of decodeDocument, and their order, that TestDecode
// does not.
func TestChecks(t *testing.T) {
	type want struct {
		kind, name string
		warnings   []string
	}
	tests := []struct {
		name  string
		input string
		objs  []want
		errs  []string
	}{{
		name:  "notNull: a null document is empty",
		input: "~\n---\nnull\n",
	}, {
		name:  "stringHeader: a number is not a string",
		input: "apiVersion: serving.knative.dev/v1\nkind: 3\nmetadata:\n  name: x\n",
		errs:  []string{"f.yaml:1: kind must be a string, got 3"},
	}, {
		name:  "stringHeader: metadata is an object",
		input: "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: [x]\n",
		errs:  []string{"f.yaml:1: metadata must be an object"},
	}, {
		name:  "stringHeader: every problem at once",
		input: "apiVersion: 1\nkind: true\nmetadata:\n  name: 2\n  namespace: off\n",
		errs: []string{"f.yaml:1: apiVersion must be a string, got 1; kind must be a string, got true (YAML reads unquoted y, n, yes, no, on and off as booleans; quote the value); " +
			"metadata.name must be a string, got 2; metadata.namespace must be a string, got false (YAML reads unquoted y, n, yes, no, on and off as booleans; quote the value)"},
	}, {
		name:  "apiVersionAndKind: apiVersion alone",
		input: "kind: Service\nmetadata:\n  name: x\n",
		errs:  []string{"f.yaml:1: missing field(s): apiVersion"},
	}, {
		name:  "skipForeign: before named, so a nameless foreign object is only skipped",
		input: "apiVersion: apps/v1\nkind: Deployment\n",
		objs:  []want{{kind: "Deployment", warnings: []string{"skipped apps/v1 Deployment: kgate reads only serving.knative.dev/v1 objects and v1 ConfigMaps"}}},
	}, {
		name:  "skipForeign: a v1 kind other than ConfigMap",
		input: "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n",
		objs:  []want{{kind: "Secret", name: "s", warnings: []string{"skipped v1 Secret: kgate reads only serving.knative.dev/v1 objects and v1 ConfigMaps"}}},
	}, {
		name:  "servingVersion: before knownKind and named",
		input: "apiVersion: serving.knative.dev/v2\nkind: Thing\n",
		errs:  []string{"f.yaml:1: serving.knative.dev/v2 is not supported; use serving.knative.dev/v1"},
	}, {
		name:  "knownKind: before named",
		input: "apiVersion: serving.knative.dev/v1\nkind: Thing\n",
		errs:  []string{`f.yaml:1: unknown kind "Thing" in serving.knative.dev/v1: want Service, Configuration, Route or Revision`},
	}, {
		name:  "named: ConfigMaps too",
		input: "apiVersion: v1\nkind: ConfigMap\ndata: {}\n",
		errs:  []string{"f.yaml:1: missing field(s): metadata.name"},
	}, {
		name:  "fieldTypes: before knownFieldsOnce",
		input: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\nspec: {}\ndata: []\n",
		errs:  []string{"f.yaml:6: cannot decode array into map[string]string: data"},
	}, {
		name:  "knownFieldsOnce: on the first unknown field's line",
		input: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labelz: {}\nspec: {}\n",
		errs:  []string{"f.yaml:5: must not set the field(s): metadata.labelz, spec"},
	}, {
		name:  "warnNBSP: after the deprecation warning",
		input: "apiVersion: serving.knative.dev/v1alpha1\nkind: Route\nmetadata:\n  name: r\n  labels:\n    a: \"b\u00a0c\"\n",
		objs: []want{{kind: "Route", name: "r", warnings: []string{
			"serving.knative.dev/v1alpha1 is deprecated: read as serving.knative.dev/v1, whose fields are the same here; change apiVersion to serving.knative.dev/v1",
			"line 6 contains non-breaking spaces (U+00A0), a common copy-paste accident; replace them with plain spaces"}}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, errs := Decode("f.yaml", []byte(tt.input))
			var got []want
			for _, o := range objs {
				got = append(got, want{kind: o.Kind, name: o.Name, warnings: o.Warnings})
			}
			if !reflect.DeepEqual(got, tt.objs) {
				t.Errorf("objects = %+v\nwant      %+v", got, tt.objs)
			}
			var gotErrs []string
			for _, e := range errs {
				gotErrs = append(gotErrs, e.Error())
			}
			if !reflect.DeepEqual(gotErrs, tt.errs) {
				t.Errorf("errors = %q\nwant     %q", gotErrs, tt.errs)
			}
		})
	}
}

// FuzzDecode checks that no input makes Decode panic, and that what it
// returns is well formed: *Errors and objects on a line of the file.
func FuzzDecode(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "seeds", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range seeds {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n---\n~\n---\n- a\n---\napiVersion: apps/v1\nkind: Deployment\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, errs := Decode("f", data)
		for _, e := range errs {
			if e, ok := e.(*Error); !ok || e.Line < 1 {
				t.Errorf("error %#v: want an *Error on a line", e)
			}
		}
		for _, o := range objs {
			if o.Line < 1 || o.Obj != nil && o.Name == "" {
				t.Errorf("object %+v: want a line, and a name if decoded", o)
			}
		}
	})
}
