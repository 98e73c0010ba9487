package manifest

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/api/fielderr"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	servingv1beta1 "github.com/kgate/kgate/api/serving/v1beta1"
)

// TestSeeds pins what happens to every YAML of the user scenarios, copied
// verbatim from the tutorials they come from.
func TestSeeds(t *testing.T) {
	nbspHint := "contains non-breaking spaces (U+00A0), a common copy-paste accident; replace them with plain spaces"
	runLatest := "serving.knative.dev/v1alpha1 is deprecated: converted to serving.knative.dev/v1 (spec.runLatest → spec.template + traffic [latestRevision 100%]; container → containers[0]); write serving.knative.dev/v1"
	release := "serving.knative.dev/v1alpha1 is deprecated: converted to serving.knative.dev/v1 (spec.release → spec.template + traffic [current: helloworld-csharp-00001 80%, candidate: helloworld-csharp-00004 20%, latest: latestRevision 0%]; container → containers[0]); write serving.knative.dev/v1"
	tests := []struct {
		file    string
		service string // name of the one Service it holds when it decodes
		warning string // its one warning, if any
		err     string // the one error it yields otherwise
	}{
		{file: "000-case1-hello.yaml", service: "hello"},
		{file: "000-case2-hello-target.yaml", service: "hello"},
		{file: "000-case3-hello-target-utilization-garbled.yaml",
			err: "testdata/seeds/000-case3-hello-target-utilization-garbled.yaml:10: invalid YAML: did not find expected key; line 11 " + nbspHint},
		{file: "000-case3-hello-target-utilization-repaired.yaml", service: "hello"},
		{file: "000-case4-hello-traffic.yaml", service: "hello"},
		{file: "002-helloworld-go-garbled.yaml",
			err: "testdata/seeds/002-helloworld-go-garbled.yaml:4: invalid YAML: mapping values are not allowed in this context"},
		{file: "002-helloworld-go-repaired.yaml", service: "helloworld-go"},
		// serving.knative.dev/v1alpha1, converted (see TestV1alpha1Seeds).
		{file: "003-helloworld-csharp-v1alpha1.yaml", service: "helloworld-csharp", warning: runLatest},
		{file: "003-helloworld-csharp-release-v1alpha1.yaml", service: "helloworld-csharp", warning: release},
		{file: "003-twilio-csharp-v1alpha1.yaml", service: "twilio-csharp", warning: runLatest},
		{file: "004-hello.yaml", service: "hello"},
		{file: "004-hello-knative-v2.yaml", service: "hello"},
		{file: "004-hello-knative-v3.yaml", service: "hello"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			file := filepath.Join("testdata", "seeds", tt.file)
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			objs, errs := Decode(filepath.ToSlash(file), data)
			if tt.err != "" {
				if len(objs) != 0 || len(errs) != 1 || errs[0].Error() != tt.err {
					t.Fatalf("Decode = %d objects, errors %q; want only error %q", len(objs), errs, tt.err)
				}
				return
			}
			if len(errs) != 0 || len(objs) != 1 {
				t.Fatalf("Decode = %d objects, errors %q; want one object", len(objs), errs)
			}
			o := objs[0]
			svc, ok := o.Obj.(*servingv1.Service)
			if !ok || o.Name != tt.service || o.Namespace != "default" || o.Line != 1 {
				t.Fatalf("object = %+v; want Service default/%s at line 1", o, tt.service)
			}
			var want []string
			if tt.warning != "" {
				want = []string{tt.warning}
			}
			if !reflect.DeepEqual(o.Warnings, want) {
				t.Errorf("warnings = %q\nwant       %q", o.Warnings, want)
			}
			svc.SetDefaults(config.DefaultDefaults())
			if verrs := servingv1.ValidateService(svc); len(verrs) != 0 {
				t.Errorf("ValidateService: %s", fielderr.String(verrs))
			}
		})
	}
	// Every seed file is covered above.
	files, err := filepath.Glob(filepath.Join("testdata", "seeds", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("seed %s has no expectation", f)
		}
	}
}

// TestRepairedSeedsKeepContent checks that a repaired seed differs from its
// garbled original only in white space, so the repair changed no content.
func TestRepairedSeedsKeepContent(t *testing.T) {
	squash := func(s string) string {
		return strings.Join(strings.FieldsFunc(s, func(r rune) bool {
			return r == ' ' || r == '\n' || r == '\t' || r == '\u00a0'
		}), "")
	}
	for _, garbled := range []string{"000-case3-hello-target-utilization-garbled.yaml", "002-helloworld-go-garbled.yaml"} {
		repaired := strings.Replace(garbled, "garbled", "repaired", 1)
		g, err := os.ReadFile(filepath.Join("testdata", "seeds", garbled))
		if err != nil {
			t.Fatal(err)
		}
		r, err := os.ReadFile(filepath.Join("testdata", "seeds", repaired))
		if err != nil {
			t.Fatal(err)
		}
		if squash(string(g)) != squash(string(r)) {
			t.Errorf("%s and %s differ in more than white space", garbled, repaired)
		}
		if strings.ContainsRune(string(r), '\u00a0') {
			t.Errorf("%s still holds U+00A0", repaired)
		}
	}
}

func TestDecode(t *testing.T) {
	type want struct {
		kind, name, namespace string
		line                  int
		warnings              []string
	}
	tests := []struct {
		name  string
		input string
		objs  []want
		errs  []string
	}{{
		name: "several documents, each decoded; empty ones ignored",
		input: `# leading comment
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: a
  namespace: team
spec:
  template:
    spec:
      containers:
      - image: x
---
---   # an empty document
apiVersion: v1
kind: ConfigMap
metadata:
  name: config-domain
data:
  example.org: ""
`,
		objs: []want{
			{kind: "Service", name: "a", namespace: "team", line: 3},
			{kind: "ConfigMap", name: "config-domain", namespace: "default", line: 15},
		},
	}, {
		name: "other kinds are skipped with a warning",
		input: `apiVersion: v1
kind: Pod
metadata:
  name: p
`,
		objs: []want{{kind: "Pod", name: "p", namespace: "default", line: 1,
			warnings: []string{"skipped v1 Pod: kgate reads only serving.knative.dev/v1 objects, serving.knative.dev/v1beta1 DomainMappings, networking.internal.knative.dev/v1alpha1 ClusterDomainClaims and v1 ConfigMaps"}}},
	}, {
		name: "a bad document does not stop the next",
		input: `apiVersion: serving.knative.dev/v1
kind: Route
metadata:
  name: r
spec:
  trafic: []
---
apiVersion: serving.knative.dev/v1
kind: Route
metadata:
  name: ok
`,
		objs: []want{{kind: "Route", name: "ok", namespace: "default", line: 8}},
		errs: []string{"f.yaml:6: must not set the field(s): spec.trafic"},
	}, {
		name: "unknown fields deep in the template are located",
		input: `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: s
spec:
  template:
    spec:
      containers:
      - image: x
        imagePolicy: Always
        port: 8080
`,
		errs: []string{"f.yaml:10: must not set the field(s): spec.template.spec.containers[0].imagePolicy, spec.template.spec.containers[0].port"},
	}, {
		name: "wrong types name the field",
		input: `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: s
spec:
  template:
    spec:
      containerConcurrency: ten
`,
		errs: []string{"f.yaml:8: cannot decode string into int64: spec.template.spec.containerConcurrency"},
	}, {
		name: "duplicate keys are syntax errors",
		input: `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: s
  name: t
`,
		errs: []string{`f.yaml:5: invalid YAML: key "name" already set in map`},
	}, {
		name:  "missing kind and apiVersion",
		input: "metadata:\n  name: x\n",
		errs:  []string{"f.yaml:1: missing field(s): apiVersion, kind"},
	}, {
		name:  "missing name",
		input: "\n\napiVersion: serving.knative.dev/v1\nkind: Service\n",
		errs:  []string{"f.yaml:3: missing field(s): metadata.name"},
	}, {
		name:  "YAML booleans in names",
		input: "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: no\n",
		errs:  []string{"f.yaml:1: metadata.name must be a string, got false (YAML reads unquoted y, n, yes, no, on and off as booleans; quote the value)"},
	}, {
		name:  "unknown serving kind",
		input: "apiVersion: serving.knative.dev/v1\nkind: DomainMapping\nmetadata:\n  name: x\n",
		errs:  []string{`f.yaml:1: unknown kind "DomainMapping" in serving.knative.dev/v1: want Service, Configuration, Route or Revision`},
	}, {
		name:  "unknown v1alpha1 kind",
		input: "apiVersion: serving.knative.dev/v1alpha1\nkind: DomainMapping\nmetadata:\n  name: x\n",
		errs:  []string{`f.yaml:1: unknown kind "DomainMapping" in serving.knative.dev/v1alpha1: want Service, Configuration, Route or Revision`},
	}, {
		name:  "other serving versions",
		input: "apiVersion: serving.knative.dev/v1beta1\nkind: Service\nmetadata:\n  name: x\n",
		errs:  []string{"f.yaml:1: serving.knative.dev/v1beta1 is not supported; use serving.knative.dev/v1"},
	}, {
		name: "a DomainMapping is read at serving.knative.dev/v1beta1",
		input: `apiVersion: serving.knative.dev/v1beta1
kind: DomainMapping
metadata:
  name: hello.localtest.me
spec:
  ref:
    name: hello
    kind: Service
    apiVersion: serving.knative.dev/v1
`,
		objs: []want{{kind: "DomainMapping", name: "hello.localtest.me", namespace: "default", line: 1}},
	}, {
		name:  "serving.knative.dev/v1beta1 is read for DomainMapping alone",
		input: "apiVersion: serving.knative.dev/v1beta1\nkind: Route\nmetadata:\n  name: x\n",
		errs:  []string{"f.yaml:1: serving.knative.dev/v1beta1 is not supported; use serving.knative.dev/v1"},
	}, {
		name: "unknown DomainMapping fields are located",
		input: `apiVersion: serving.knative.dev/v1beta1
kind: DomainMapping
metadata:
  name: hello.localtest.me
spec:
  ref:
    name: hello
    kind: Service
    apiVersion: serving.knative.dev/v1
  tls:
    secret: hello-tls
`,
		errs: []string{"f.yaml:11: must not set the field(s): spec.tls.secret"},
	}, {
		name:  "wrong types in a DomainMapping name the field",
		input: "apiVersion: serving.knative.dev/v1beta1\nkind: DomainMapping\nmetadata:\n  name: a.example.com\nspec:\n  ref:\n    address: [x]\n",
		errs:  []string{"f.yaml:7: cannot decode array into string: spec.ref.address"},
	}, {
		name:  "a list is not an object",
		input: "- a\n- b\n",
		errs:  []string{"f.yaml:1: document is not a mapping (an object with apiVersion, kind and metadata)"},
	}, {
		name:  "syntax errors name the file line, past earlier documents",
		input: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [c\n",
		objs:  []want{{kind: "ConfigMap", name: "c", namespace: "default", line: 1}},
		errs:  []string{"f.yaml:9: invalid YAML: did not find expected ',' or ']'"},
	}, {
		name:  "non-breaking spaces that change the shape are named",
		input: "apiVersion: serving.knative.dev/v1\nkind: Route\nmetadata:\n  name: r\nspec:\n\u00a0 traffic: []\n",
		errs:  []string{`f.yaml:6: must not set the field(s): "\u00a0 traffic"; line 6 contains non-breaking spaces (U+00A0), a common copy-paste accident; replace them with plain spaces`},
	}, {
		name:  "non-breaking spaces inside values only warn",
		input: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: \"a\u00a0b\"\n",
		objs: []want{{kind: "ConfigMap", name: "c", namespace: "default", line: 1,
			warnings: []string{"line 6 contains non-breaking spaces (U+00A0), a common copy-paste accident; replace them with plain spaces"}}},
	}, {
		name:  "JSON",
		input: `{"apiVersion": "serving.knative.dev/v1", "kind": "Configuration", "metadata": {"name": "c"}, "spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}`,
		objs:  []want{{kind: "Configuration", name: "c", namespace: "default", line: 1}},
	}, {
		name:  "CRLF line ends",
		input: "apiVersion: serving.knative.dev/v1\r\nkind: Revision\r\nmetadata:\r\n  name: r\r\n",
		objs:  []want{{kind: "Revision", name: "r", namespace: "default", line: 1}},
	}, {
		// The steps of decodeDocument (checks.go), and their order.

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
		objs:  []want{{kind: "Deployment", namespace: "default", line: 1, warnings: []string{"skipped apps/v1 Deployment: kgate reads only serving.knative.dev/v1 objects, serving.knative.dev/v1beta1 DomainMappings, networking.internal.knative.dev/v1alpha1 ClusterDomainClaims and v1 ConfigMaps"}}},
	}, {
		name:  "skipForeign: a v1 kind other than ConfigMap",
		input: "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n",
		objs:  []want{{kind: "Secret", name: "s", namespace: "default", line: 1, warnings: []string{"skipped v1 Secret: kgate reads only serving.knative.dev/v1 objects, serving.knative.dev/v1beta1 DomainMappings, networking.internal.knative.dev/v1alpha1 ClusterDomainClaims and v1 ConfigMaps"}}},
	}, {
		name:  "a ClusterDomainClaim is read",
		input: "apiVersion: networking.internal.knative.dev/v1alpha1\nkind: ClusterDomainClaim\nmetadata:\n  name: hello.example.org\nspec:\n  namespace: team-a\n",
		objs:  []want{{kind: "ClusterDomainClaim", name: "hello.example.org", namespace: "default", line: 1}},
	}, {
		name:  "a ClusterDomainClaim is decoded strictly",
		input: "apiVersion: networking.internal.knative.dev/v1alpha1\nkind: ClusterDomainClaim\nmetadata:\n  name: hello.example.org\nspec:\n  namespaces: team-a\n",
		errs:  []string{"f.yaml:6: must not set the field(s): spec.namespaces"},
	}, {
		name:  "another networking.internal.knative.dev kind is skipped",
		input: "apiVersion: networking.internal.knative.dev/v1alpha1\nkind: Ingress\nmetadata:\n  name: i\n",
		objs:  []want{{kind: "Ingress", name: "i", namespace: "default", line: 1, warnings: []string{"skipped networking.internal.knative.dev/v1alpha1 Ingress: kgate reads only serving.knative.dev/v1 objects, serving.knative.dev/v1beta1 DomainMappings, networking.internal.knative.dev/v1alpha1 ClusterDomainClaims and v1 ConfigMaps"}}},
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
		objs: []want{{kind: "Route", name: "r", namespace: "default", line: 1, warnings: []string{
			"serving.knative.dev/v1alpha1 is deprecated: read as serving.knative.dev/v1, whose fields are the same here; change apiVersion to serving.knative.dev/v1",
			"line 6 contains non-breaking spaces (U+00A0), a common copy-paste accident; replace them with plain spaces"}}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, errs := Decode("f.yaml", []byte(tt.input))
			var got []want
			for _, o := range objs {
				got = append(got, want{kind: o.Kind, name: o.Name, namespace: o.Namespace, line: o.Line, warnings: o.Warnings})
				if o.Obj != nil && o.File != "f.yaml" {
					t.Errorf("File = %q", o.File)
				}
			}
			if !reflect.DeepEqual(got, tt.objs) {
				t.Errorf("objects = %+v\nwant      %+v", got, tt.objs)
			}
			var gotErrs []string
			for _, e := range errs {
				if _, ok := e.(*Error); !ok {
					t.Errorf("error %v is a %T, want *Error", e, e)
				}
				gotErrs = append(gotErrs, e.Error())
			}
			if !reflect.DeepEqual(gotErrs, tt.errs) {
				t.Errorf("errors = %q\nwant     %q", gotErrs, tt.errs)
			}
		})
	}
}

// TestDecodeTypes checks each accepted kind decodes into its Go type, with
// the object's namespace set.
func TestDecodeTypes(t *testing.T) {
	tests := []struct {
		kind, apiVersion string
		want             any
	}{
		{"Service", servingv1.APIVersion, &servingv1.Service{}},
		{"Configuration", servingv1.APIVersion, &servingv1.Configuration{}},
		{"Route", servingv1.APIVersion, &servingv1.Route{}},
		{"Revision", servingv1.APIVersion, &servingv1.Revision{}},
		{"DomainMapping", servingv1beta1.APIVersion, &servingv1beta1.DomainMapping{}},
		{"ConfigMap", "v1", &corev1.ConfigMap{}},
	}
	for _, tt := range tests {
		objs, errs := Decode("f", []byte("apiVersion: "+tt.apiVersion+"\nkind: "+tt.kind+"\nmetadata:\n  name: obj\n"))
		if len(errs) != 0 || len(objs) != 1 {
			t.Fatalf("%s: %d objects, errors %v", tt.kind, len(objs), errs)
		}
		if reflect.TypeOf(objs[0].Obj) != reflect.TypeOf(tt.want) {
			t.Errorf("%s decoded into %T, want %T", tt.kind, objs[0].Obj, tt.want)
		}
		type namespaced interface{ GetNamespace() string }
		if ns := objs[0].Obj.(namespaced).GetNamespace(); ns != "default" {
			t.Errorf("%s namespace = %q, want default", tt.kind, ns)
		}
	}
}

// A document larger than the API server takes is refused before it is
// parsed; the documents around it still decode.
func TestDecodeRefusesOversizedDocuments(t *testing.T) {
	big := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  x: " + strings.Repeat("a", MaxDocumentBytes) + "\n"
	small := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: small\n"
	objs, errs := Decode("big.yaml", []byte(small+"---\n"+big))
	if len(objs) != 1 || objs[0].Name != "small" {
		t.Errorf("decoded %d objects, want only ConfigMap small", len(objs))
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "big.yaml:6: document is") || !strings.Contains(errs[0].Error(), "at most 3145728 (3 MiB)") {
		t.Errorf("errors %v, want one naming the document's size and the 3 MiB limit at big.yaml:6", errs)
	}
}

// TestDomainMappingRoundTrip takes Knative's DomainMapping example through
// what kgate local does with a file: Decode, then SetDefaults and
// ValidateDomainMapping, as the webhook would. The decoded object keeps every
// field of the file.
func TestDomainMappingRoundTrip(t *testing.T) {
	const file = `apiVersion: serving.knative.dev/v1beta1
kind: DomainMapping
metadata:
  name: hello.localtest.me
  namespace: team
spec:
  ref:
    name: hello
    kind: Service
    apiVersion: serving.knative.dev/v1
  tls:
    secretName: hello-tls
---
apiVersion: serving.knative.dev/v1beta1
kind: DomainMapping
metadata:
  name: other.localtest.me
  namespace: team
spec:
  ref: {name: hello, kind: Service, apiVersion: serving.knative.dev/v1, namespace: default}
`
	objs, errs := Decode("dm.yaml", []byte(file))
	if len(errs) != 0 || len(objs) != 2 {
		t.Fatalf("Decode = %d objects, errors %v; want 2 objects", len(objs), errs)
	}
	o := objs[0]
	if o.File != "dm.yaml" || o.Line != 1 || o.APIVersion != "serving.knative.dev/v1beta1" || o.Kind != "DomainMapping" ||
		o.Namespace != "team" || o.Name != "hello.localtest.me" || len(o.Warnings) != 0 {
		t.Errorf("object = %+v", o)
	}
	dm, ok := o.Obj.(*servingv1beta1.DomainMapping)
	if !ok {
		t.Fatalf("Obj is a %T", o.Obj)
	}
	want := servingv1beta1.DomainMappingSpec{
		Ref: servingv1beta1.KReference{Name: "hello", Kind: "Service", APIVersion: "serving.knative.dev/v1"},
		TLS: &servingv1beta1.SecretTLS{SecretName: "hello-tls"},
	}
	if dm.Name != "hello.localtest.me" || dm.Namespace != "team" || !reflect.DeepEqual(dm.Spec, want) {
		t.Errorf("decoded %s/%s %+v, want team/hello.localtest.me %+v", dm.Namespace, dm.Name, dm.Spec, want)
	}

	dm.SetDefaults(config.DefaultDefaults())
	if dm.Spec.Ref.Namespace != "team" {
		t.Errorf("ref namespace defaulted to %q, want the mapping's, team", dm.Spec.Ref.Namespace)
	}
	if verrs := servingv1beta1.ValidateDomainMapping(dm); len(verrs) != 0 {
		t.Errorf("ValidateDomainMapping: %s", fielderr.String(verrs))
	}

	// The second names a namespace of its own, which Knative refuses.
	other := objs[1].Obj.(*servingv1beta1.DomainMapping)
	other.SetDefaults(config.DefaultDefaults())
	got := fielderr.String(servingv1beta1.ValidateDomainMapping(other))
	if wantErr := "mismatched namespaces: spec.ref.namespace\n" + `parent namespace: "team" does not match ref: "default"`; got != wantErr {
		t.Errorf("ValidateDomainMapping = %q, want %q", got, wantErr)
	}
}
