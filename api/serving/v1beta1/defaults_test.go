package v1beta1

import (
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kgate/kgate/api/config"
)

func TestSetDefaults(t *testing.T) {
	tests := []struct {
		name          string
		ns, refNS     string
		wantNS, wantR string
	}{
		{name: "ref namespace is the mapping's", ns: "team", wantNS: "team", wantR: "team"},
		{name: "a given ref namespace stays, even a wrong one (validation reports it)", ns: "team", refNS: "other", wantNS: "team", wantR: "other"},
		{name: "no namespace at all: default, for both", wantNS: "default", wantR: "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dm := &DomainMapping{
				ObjectMeta: metav1.ObjectMeta{Name: "hello.localtest.me", Namespace: tt.ns},
				Spec:       DomainMappingSpec{Ref: KReference{APIVersion: "serving.knative.dev/v1", Kind: "Service", Name: "hello", Namespace: tt.refNS}},
			}
			dm.SetDefaults(config.DefaultDefaults())
			if dm.Namespace != tt.wantNS || dm.Spec.Ref.Namespace != tt.wantR {
				t.Errorf("namespace %q, ref namespace %q; want %q, %q", dm.Namespace, dm.Spec.Ref.Namespace, tt.wantNS, tt.wantR)
			}
			once := dm.DeepCopy()
			dm.SetDefaults(config.DefaultDefaults())
			if !reflect.DeepEqual(dm, once) {
				t.Errorf("defaulting again changed it: %+v, then %+v", once, dm)
			}
		})
	}
}
