package kingress

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"knative.dev/networking/pkg/apis/networking/v1alpha1"
	"sigs.k8s.io/yaml"

	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/out")

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// readInput decodes a case file: YAML documents of KIngresses, Services,
// EndpointSlices and config-network (whose ingress-class is
// Input.DefaultClass), decoded strictly so that a misspelt field fails.
func readInput(t *testing.T, data []byte) Input {
	t.Helper()
	in := Input{Services: map[string]*corev1.Service{}}
	for i, doc := range docSep.Split(string(data), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var obj any
		switch tm.Kind {
		case "Ingress":
			ing := &v1alpha1.Ingress{}
			in.Ingresses, obj = append(in.Ingresses, ing), ing
		case "Service":
			svc := &corev1.Service{}
			obj = svc
			defer func() { in.Services[svc.Namespace+"/"+svc.Name] = svc }()
		case "EndpointSlice":
			s := &discoveryv1.EndpointSlice{}
			in.EndpointSlices, obj = append(in.EndpointSlices, s), s
		case "ConfigMap":
			cm := &corev1.ConfigMap{}
			if err := yaml.UnmarshalStrict([]byte(doc), cm); err != nil {
				t.Fatalf("document %d: %v", i, err)
			}
			if cm.Name == "config-network" {
				in.DefaultClass = cm.Data["ingress-class"]
			}
			continue
		default:
			t.Fatalf("document %d: unexpected kind %q", i, tm.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("document %d (%s): %v", i, tm.Kind, err)
		}
	}
	return in
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// TestGolden translates every testdata/in case and compares the Result
// with testdata/out (go test ./watcher/kingress -update rewrites them).
func TestGolden(t *testing.T) {
	ins, err := filepath.Glob("testdata/in/*.yaml")
	if err != nil || len(ins) == 0 {
		t.Fatalf("no cases in testdata/in: %v", err)
	}
	for _, inPath := range ins {
		name := strings.TrimSuffix(filepath.Base(inPath), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(inPath)
			if err != nil {
				t.Fatal(err)
			}
			in := readInput(t, data)
			res := Translate(in)
			checkInvariants(t, res)
			// A second call gives the same Result: nothing is kept.
			again, _ := yaml.Marshal(Translate(in))
			got, err := yaml.Marshal(res)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, again) {
				t.Error("Translate is not deterministic")
			}
			golden := filepath.Join("testdata", "out", name+".yaml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./watcher/kingress -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from Translate's output; diff the files after go test ./watcher/kingress -update:\n%s", golden, lineDiff(string(want), string(got)))
			}
		})
	}
}

// checkInvariants checks what the translator relies on: every split names
// a Revision of the model, every Revision has endpoints or an ExternalName,
// every Service is an Ingress of ours, each host is once per Service, and
// the DomainConflict outcomes are the translator's host index's conflicts.
func checkInvariants(t *testing.T, res Result) {
	t.Helper()
	idx := translator.NewHostIndex()
	for _, s := range res.Model.Services {
		idx.Set(s)
	}
	for _, s := range res.Model.Services {
		o := res.Ingresses[s.Key()]
		c, lost := idx.Conflict(s.Key())
		want := Outcome{Configured: true}
		if lost {
			want = Outcome{Reason: ReasonDomainConflict,
				Message: fmt.Sprintf("host %q is already claimed by Ingress %q", c.Host, c.Owner)}
		}
		if o != want {
			t.Errorf("service %q: outcome %+v, the host index says %+v", s.Key(), o, want)
		}
	}
	revs := map[string]model.Revision{}
	for _, r := range res.Model.Revisions {
		revs[r.Key()] = r
	}
	eps := map[string]bool{}
	for _, e := range res.Model.Endpoints {
		if _, ok := revs[e.Revision]; !ok {
			t.Errorf("endpoints of unknown revision %q", e.Revision)
		}
		eps[e.Revision] = true
	}
	for k, r := range revs {
		if (r.ExternalName != nil) == eps[k] {
			t.Errorf("revision %q: ExternalName %v and endpoints %v", k, r.ExternalName, eps[k])
		}
	}
	for _, s := range res.Model.Services {
		if _, ok := res.Ingresses[s.Key()]; !ok {
			t.Errorf("service %q has no outcome", s.Key())
		}
		hosts := map[string]bool{}
		for _, vh := range s.VirtualHosts {
			if hosts[vh.Host] {
				t.Errorf("service %q: host %q twice", s.Key(), vh.Host)
			}
			hosts[vh.Host] = true
			for _, r := range vh.Routes {
				for _, sp := range r.Splits {
					if _, ok := revs[sp.Revision]; !ok {
						t.Errorf("service %q: split to unknown revision %q", s.Key(), sp.Revision)
					}
				}
			}
		}
	}
}

// lineDiff shows the first differing lines of two texts.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n- %s\n+ %s\n", i+1, wl, gl)
			if shown++; shown == 10 {
				break
			}
		}
	}
	return b.String()
}

func TestOurs(t *testing.T) {
	const (
		kgate = DefaultClass
		istio = KnativeDefaultClass
		new   = "networking.knative.dev/ingress.class"
		old   = "networking.knative.dev/ingress-class"
	)
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		def         string
		want        bool
	}{
		{"annotation ours", map[string]string{new: kgate}, istio, true},
		{"annotation other", map[string]string{new: istio}, kgate, false},
		{"older annotation ours", map[string]string{old: kgate}, istio, true},
		{"older annotation other", map[string]string{old: istio}, kgate, false},
		{"new annotation wins over older", map[string]string{new: istio, old: kgate}, kgate, false},
		{"new annotation wins over older, ours", map[string]string{new: kgate, old: istio}, istio, true},
		{"no annotation, default ours", nil, kgate, true},
		{"no annotation, default other", nil, istio, false},
		{"empty annotation is a class", map[string]string{new: ""}, kgate, false},
		{"unrelated annotations", map[string]string{"serving.knative.dev/creator": "x"}, kgate, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ing := &v1alpha1.Ingress{ObjectMeta: metav1.ObjectMeta{Annotations: tc.annotations}}
			if got := Ours(ing, kgate, tc.def); got != tc.want {
				t.Errorf("Ours = %v, want %v", got, tc.want)
			}
		})
	}
	if Ours(nil, kgate, kgate) {
		t.Error("Ours(nil) = true")
	}
}

// TestEmptyClasses: Input's empty Class and DefaultClass are kgate's class
// and Knative's default (Istio's), so an Ingress without annotation is not
// ours.
func TestEmptyClasses(t *testing.T) {
	ing := func(name string, ann map[string]string) *v1alpha1.Ingress {
		return &v1alpha1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Annotations: ann},
			Spec: v1alpha1.IngressSpec{Rules: []v1alpha1.IngressRule{{
				Hosts: []string{name + ".example.com"},
				HTTP: &v1alpha1.HTTPIngressRuleValue{Paths: []v1alpha1.HTTPIngressPath{{
					Splits: []v1alpha1.IngressBackendSplit{{IngressBackend: v1alpha1.IngressBackend{
						ServiceNamespace: "default", ServiceName: "s", ServicePort: intstr.FromInt32(80)}}},
				}}},
			}}},
		}
	}
	res := Translate(Input{
		Ingresses: []*v1alpha1.Ingress{
			ing("plain", nil),
			ing("ours", map[string]string{"networking.knative.dev/ingress.class": DefaultClass}),
		},
		Services: map[string]*corev1.Service{"default/s": {
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "s"},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
		}},
	})
	if _, ok := res.Ingresses["default/plain"]; ok || len(res.Ingresses) != 1 || !res.Ingresses["default/ours"].Configured {
		t.Errorf("Ingresses = %v, want only default/ours, configured", res.Ingresses)
	}
	if len(res.Model.Services) != 1 || res.Model.Services[0].VirtualHosts[0].Routes[0].Splits[0].Percent != 100 {
		t.Errorf("Model = %+v, want one Service, its single split at 100%%", res.Model)
	}
}

// FuzzTranslate: no Ingress spec makes Translate panic, and what it
// returns keeps the invariants.
func FuzzTranslate(f *testing.F) {
	ins, _ := filepath.Glob("testdata/in/*.yaml")
	for _, p := range ins {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		for _, doc := range docSep.Split(string(data), -1) {
			if !strings.Contains(doc, "kind: Ingress") {
				continue
			}
			if j, err := yaml.YAMLToJSON([]byte(doc)); err == nil {
				f.Add(j)
			}
		}
	}
	f.Add([]byte(`{"spec":{"rules":[{"http":null}]}}`))
	f.Add([]byte(`{"spec":{"rules":[{"hosts":[],"http":{"paths":[{"splits":[{"serviceNamespace":"default","serviceName":"s","servicePort":"h2c","percent":-5}]}]}}]}}`))
	ptr := func(s string) *string { return &s }
	services := map[string]*corev1.Service{
		"default/s": {ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "s"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
			{Name: "http", Port: 80}, {Name: "h2c", Port: 81, AppProtocol: ptr("kubernetes.io/h2c")}}}},
		"default/x": {ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "x"}, Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeExternalName, ExternalName: "x.example.com", Ports: []corev1.ServicePort{{Port: 80}}}},
	}
	port := int32(8012)
	slicesIn := []*discoveryv1.EndpointSlice{{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "s-1", Labels: map[string]string{discoveryv1.LabelServiceName: "s"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: &port}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}}},
	}}
	f.Fuzz(func(t *testing.T, data []byte) {
		ing := &v1alpha1.Ingress{}
		if err := json.Unmarshal(data, ing); err != nil {
			return
		}
		if ing.Namespace == "" {
			ing.Namespace = "default"
		}
		ing.Annotations = map[string]string{"networking.knative.dev/ingress.class": DefaultClass}
		other := ing.DeepCopy()
		other.Name += "-other"
		res := Translate(Input{
			Ingresses:      []*v1alpha1.Ingress{ing, other, nil},
			Services:       services,
			EndpointSlices: append(slicesIn, nil),
		})
		checkInvariants(t, res)
	})
}
