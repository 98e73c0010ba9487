package v1beta1

import (
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/api/fielderr"
)

// valid is a defaulted mapping of hello.localtest.me to the Service hello,
// which each case below breaks in one way.
func valid(mutate func(*DomainMapping)) *DomainMapping {
	dm := &DomainMapping{
		ObjectMeta: metav1.ObjectMeta{Name: "hello.localtest.me", Namespace: "ns"},
		Spec:       DomainMappingSpec{Ref: KReference{APIVersion: "serving.knative.dev/v1", Kind: "Service", Name: "hello"}},
	}
	if mutate != nil {
		mutate(dm)
	}
	dm.SetDefaults(config.DefaultDefaults())
	return dm
}

// dns1123 is apimachinery's message for a name that is not a DNS-1123
// subdomain.
const dns1123 = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', " +
	"and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is " +
	`'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`

// kgateRef is kgate's message for a ref it cannot route.
const kgateRef = "a DomainMapping's ref must be a serving.knative.dev/v1 Service or Route"

func TestValidateDomainMapping(t *testing.T) {
	long := strings.Repeat("a", 64)
	tests := []struct {
		name   string
		mutate func(*DomainMapping)
		want   []string // fielderr.Messages
	}{
		{name: "valid: a Service"},
		{name: "valid: a Route, with the user's certificate", mutate: func(dm *DomainMapping) {
			dm.Spec.Ref.Kind = "Route"
			dm.Spec.TLS = &SecretTLS{SecretName: "hello-tls"}
		}},
		{name: "valid: the ref names the mapping's namespace", mutate: func(dm *DomainMapping) { dm.Spec.Ref.Namespace = "ns" }},
		{name: "valid: an empty address is no address", mutate: func(dm *DomainMapping) { dm.Spec.Ref.Address = ptr("") }},
		{name: "valid: a name of the cluster domain itself, as Knative", mutate: func(dm *DomainMapping) { dm.Name = "cluster.local" }},
		{name: "valid: labels of 63 characters", mutate: func(dm *DomainMapping) { dm.Name = long[:63] + ".example.com" }},

		// Knative's metadata rules, with its messages.
		{name: "one label", mutate: func(dm *DomainMapping) { dm.Name = "invalid" },
			want: []string{`invalid name "invalid": name: Invalid value: "invalid": should be a domain with at least two segments separated by dots: metadata.name`}},
		{name: "generateName rather than name", mutate: func(dm *DomainMapping) { dm.Name, dm.GenerateName = "", "cant-use-this" },
			want: []string{
				`invalid name "": name: Required value: metadata.name`,
				"must not set the field(s): metadata.generateName",
			}},
		{name: "a wildcard is not a domain", mutate: func(dm *DomainMapping) { dm.Name = "*.example.com" },
			want: []string{`invalid name "*.example.com": name: Invalid value: "*.example.com": ` + dns1123 + ": metadata.name"}},
		{name: "upper case", mutate: func(dm *DomainMapping) { dm.Name = "Hello.example.com" },
			want: []string{`invalid name "Hello.example.com": name: Invalid value: "Hello.example.com": ` + dns1123 + ": metadata.name"}},
		{name: "a label over 63 characters", mutate: func(dm *DomainMapping) { dm.Name = long + ".example.com" },
			want: []string{`invalid name "` + long + `.example.com": name: Invalid value: "` + long + `": must be no more than 63 characters: metadata.name`}},
		{name: "under the cluster-local domain", mutate: func(dm *DomainMapping) { dm.Name = "notallowed.svc.cluster.local" },
			want: []string{`invalid name "notallowed.svc.cluster.local": must not be a subdomain of cluster local domain "cluster.local": metadata.name`}},

		// Knative's KReference rules.
		{name: "ref in another namespace", mutate: func(dm *DomainMapping) { dm.Spec.Ref.Namespace = "bad-namespace" },
			want: []string{"mismatched namespaces: spec.ref.namespace\n" + `parent namespace: "ns" does not match ref: "bad-namespace"`}},
		{name: "ref without kind", mutate: func(dm *DomainMapping) { dm.Spec.Ref.Kind = "" },
			want: []string{"missing field(s): spec.ref.kind"}},
		{name: "ref without apiVersion", mutate: func(dm *DomainMapping) { dm.Spec.Ref.APIVersion = "" },
			want: []string{"missing field(s): spec.ref.apiVersion"}},
		{name: "no ref at all", mutate: func(dm *DomainMapping) { dm.Spec.Ref = KReference{} },
			want: []string{"missing field(s): spec.ref.apiVersion, spec.ref.kind, spec.ref.name"}},
		{name: "ref by group, Knative's experimental alternative", mutate: func(dm *DomainMapping) { dm.Spec.Ref.Group = "serving.knative.dev" },
			want: []string{"must not set the field(s): spec.ref.group"}},

		// The API server's limits, so that kgate local refuses what a cluster would.
		{name: "a trailing dot, which Knative's domain check takes", mutate: func(dm *DomainMapping) { dm.Name = "hello.example.com." },
			want: []string{`invalid value: hello.example.com.: metadata.name` + "\n" + dns1123}},
		{name: "annotations over 256 KiB", mutate: func(dm *DomainMapping) {
			dm.Annotations = map[string]string{"a": strings.Repeat("x", 256<<10)}
		}, want: []string{"may not be more than 262144 bytes: metadata.annotations"}},

		// What kgate can serve.
		{name: "a Configuration is not addressable", mutate: func(dm *DomainMapping) { dm.Spec.Ref.Kind = "Configuration" },
			want: []string{"invalid value: Configuration: spec.ref.kind\n" + kgateRef}},
		{name: "a Kubernetes Service", mutate: func(dm *DomainMapping) { dm.Spec.Ref.APIVersion = "v1" },
			want: []string{"invalid value: v1: spec.ref.apiVersion\n" + kgateRef}},
		{name: "a v1alpha1 Service", mutate: func(dm *DomainMapping) { dm.Spec.Ref.APIVersion = "serving.knative.dev/v1alpha1" },
			want: []string{"invalid value: serving.knative.dev/v1alpha1: spec.ref.apiVersion\n" + kgateRef}},
		{name: "a named address", mutate: func(dm *DomainMapping) { dm.Spec.Ref.Address = ptr("private") },
			want: []string{"invalid value: private: spec.ref.address\na Knative Service or Route has one unnamed address; leave address out"}},
		{name: "tls without a secret", mutate: func(dm *DomainMapping) { dm.Spec.TLS = &SecretTLS{} },
			want: []string{"missing field(s): spec.tls.secretName"}},
		{name: "tls secret name no Secret can have", mutate: func(dm *DomainMapping) { dm.Spec.TLS = &SecretTLS{SecretName: "Hello_TLS"} },
			want: []string{"invalid value: Hello_TLS: spec.tls.secretName\n" + dns1123}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dm := valid(tt.mutate)
			before := dm.DeepCopy()
			errs := ValidateDomainMapping(dm)
			if got := fielderr.Messages(errs); !reflect.DeepEqual(got, tt.want) && len(got)+len(tt.want) > 0 {
				t.Errorf("messages:\n%q\nwant\n%q", got, tt.want)
			}
			if !reflect.DeepEqual(before, dm) {
				t.Error("validation changed the mapping")
			}
		})
	}
}
