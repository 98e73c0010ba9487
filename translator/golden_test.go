package translator

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"

	"github.com/kgate/kgate/translator/model"
)

var update = flag.Bool("update", false, "rewrite testdata/out from the current translator")

// TestGolden translates every testdata/in/<case>.yaml (a model.Config) and
// compares the result with testdata/out/<case>.yaml; the tls-* cases have
// the HTTPS listeners, the tracing-* cases tracing.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/in/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			cfg := readConfig(t, in)
			opts := Options{}
			if strings.HasPrefix(name, "tls-") {
				// The HTTPS listeners, redirecting to 8443 as kgate local.
				opts = Options{ExternalTLSPort: DefaultExternalTLSPort, InternalTLSPort: DefaultInternalTLSPort, HTTPSRedirectPort: DefaultExternalTLSPort}
			}
			if strings.HasPrefix(name, "tracing-") {
				// Envoy's OpenTelemetry tracer and the collector's cluster.
				opts.Tracing = Tracing{CollectorHost: "otel-collector.observability", CollectorPort: 4317, SampleRate: 0.1}
			}
			out := Translate(cfg, opts)
			assertValid(t, out)
			compareGolden(t, filepath.Join("testdata/out", name+".yaml"), render(t, out))
		})
	}
}

// TestTranslateOrderIndependent: the input order of Services, Revisions and
// endpoints does not change a byte of the output.
func TestTranslateOrderIndependent(t *testing.T) {
	inputs, _ := filepath.Glob("testdata/in/*.yaml")
	for _, in := range inputs {
		cfg := readConfig(t, in)
		want := render(t, Translate(cfg, Options{}))
		rng := rand.New(rand.NewPCG(1, 2))
		for range 5 {
			rng.Shuffle(len(cfg.Services), func(i, j int) { cfg.Services[i], cfg.Services[j] = cfg.Services[j], cfg.Services[i] })
			rng.Shuffle(len(cfg.Revisions), func(i, j int) { cfg.Revisions[i], cfg.Revisions[j] = cfg.Revisions[j], cfg.Revisions[i] })
			rng.Shuffle(len(cfg.Endpoints), func(i, j int) { cfg.Endpoints[i], cfg.Endpoints[j] = cfg.Endpoints[j], cfg.Endpoints[i] })
			for i := range cfg.Services {
				vhs := cfg.Services[i].VirtualHosts
				rng.Shuffle(len(vhs), func(a, b int) { vhs[a], vhs[b] = vhs[b], vhs[a] })
			}
			if got := render(t, Translate(cfg, Options{})); string(got) != string(want) {
				t.Fatalf("%s: output depends on input order", in)
			}
		}
	}
}

func readConfig(t testing.TB, path string) model.Config {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg model.Config
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cfg
}

// assertValid runs Envoy's proto validation rules on every resource.
func assertValid(t *testing.T, out Output) {
	t.Helper()
	type validator interface{ ValidateAll() error }
	var all []proto.Message
	for _, r := range out.Listeners {
		all = append(all, r)
	}
	for _, r := range out.APIListeners {
		all = append(all, r)
	}
	for _, r := range out.ScopedRoutes {
		all = append(all, r)
	}
	for _, r := range out.Routes {
		all = append(all, r)
	}
	for _, r := range out.Clusters {
		all = append(all, r)
	}
	for _, r := range out.Endpoints {
		all = append(all, r)
	}
	for _, m := range all {
		if err := m.(validator).ValidateAll(); err != nil {
			t.Errorf("%s is invalid: %v", proto.MessageName(m), err)
		}
		assertAnysValid(t, m)
	}
}

// assertAnysValid validates the messages packed in Any fields too (the
// generated ValidateAll does not look inside an Any).
func assertAnysValid(t *testing.T, m proto.Message) {
	t.Helper()
	for _, inner := range packed(t, m) {
		v, ok := inner.(interface{ ValidateAll() error })
		if !ok {
			t.Errorf("%s has no validation", proto.MessageName(inner))
			continue
		}
		if err := v.ValidateAll(); err != nil {
			t.Errorf("%s (in %s) is invalid: %v", proto.MessageName(inner), proto.MessageName(m), err)
		}
	}
}

// render prints an Output as YAML grouped by kind, resources in Envoy's own
// field names.
func render(t testing.TB, out Output) []byte {
	t.Helper()
	doc := map[string]any{}
	add := func(kind string, m proto.Message) {
		b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		list, _ := doc[kind].([]any)
		doc[kind] = append(list, v)
	}
	for _, r := range out.Listeners {
		add("listeners", r)
	}
	for _, r := range out.APIListeners {
		add("apiListeners", r)
	}
	for _, r := range out.ScopedRoutes {
		add("scopedRoutes", r)
	}
	for _, r := range out.Routes {
		add("routes", r)
	}
	for _, r := range out.Clusters {
		add("clusters", r)
	}
	for _, r := range out.Endpoints {
		add("endpoints", r)
	}
	if len(out.Conflicts) > 0 {
		var cs []map[string]string
		for _, c := range out.Conflicts {
			cs = append(cs, map[string]string{"service": c.Service, "host": c.Host, "owner": c.Owner})
		}
		doc["conflicts"] = cs
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./translator -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the translation (run go test ./translator -update and review the diff):\n%s",
			path, firstDiff(string(want), string(got)))
	}
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, a, b)
		}
	}
	return ""
}

// packed returns every message packed in an Any anywhere inside m, at any
// depth.
func packed(t *testing.T, m proto.Message) []proto.Message {
	t.Helper()
	var out []proto.Message
	var walk func(protoreflect.Message)
	walk = func(msg protoreflect.Message) {
		if a, ok := msg.Interface().(*anypb.Any); ok {
			inner, err := a.UnmarshalNew()
			if err != nil {
				t.Errorf("unpack %s: %v", a.GetTypeUrl(), err)
				return
			}
			out = append(out, inner)
			walk(inner.ProtoReflect())
			return
		}
		msg.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Message() != nil:
				for i := 0; i < v.List().Len(); i++ {
					walk(v.List().Get(i).Message())
				}
			case fd.IsMap() && fd.MapValue().Message() != nil:
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					walk(mv.Message())
					return true
				})
			case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
				walk(v.Message())
			}
			return true
		})
	}
	walk(m.ProtoReflect())
	return out
}
