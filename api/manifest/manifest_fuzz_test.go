package manifest

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/api/fielderr"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	servingv1beta1 "github.com/kgate/kgate/api/serving/v1beta1"
)

// FuzzValidate takes a manifest file through everything `kgate validate`
// and the folder watcher do with it: Decode, then the ConfigMaps it
// holds parsed, then every object defaulted and validated against them —
// watcher/knative.Validate's steps, repeated here because api must not
// import watcher. Revisions are validated too, which Validate leaves to
// reconciliation, and DomainMappings. FuzzDecode checks the decoding alone; this target goes
// on into the validators, which see only what decoding let through.
//
// Beyond not panicking, it checks what the callers rely on: defaulting
// twice changes nothing after the first time (the watcher defaults an
// object every round), validation neither changes the object nor depends
// on the order of a map, and every error names a field, so that each
// problem prints as FILE:LINE: Kind ns/name: field: message.
func FuzzValidate(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, _ := Decode("f", data)

		settings := config.Default()
		for _, o := range objs {
			cm, ok := o.Obj.(*corev1.ConfigMap)
			if !ok {
				continue
			}
			_, err := settings.Set(cm.Name, cm.Data)
			if err != nil && !strings.HasPrefix(err.Error(), cm.Name+": ") {
				t.Errorf("%s's error %q does not name it", cm.Name, err)
			}
		}

		v := servingv1.Validator{Defaults: settings.Defaults, Autoscaler: settings.Autoscaler}
		for _, o := range objs {
			switch obj := o.Obj.(type) {
			case *servingv1.Service:
				checkValidation(t, o, obj, settings.Defaults, v.Service)
			case *servingv1.Configuration:
				checkValidation(t, o, obj, settings.Defaults, v.Configuration)
			case *servingv1.Route:
				checkValidation(t, o, obj, settings.Defaults, v.Route)
			case *servingv1.Revision:
				checkValidation(t, o, obj, settings.Defaults, v.Revision)
			case *servingv1beta1.DomainMapping:
				checkValidation(t, o, obj, settings.Defaults, servingv1beta1.ValidateDomainMapping)
			}
		}
	})
}

// apiObject is what checkValidation needs of a decoded serving object.
type apiObject[T any] interface {
	*T
	SetDefaults(config.Defaults)
	DeepCopy() *T
}

// checkValidation defaults obj as the webhook would and validates it,
// checking the properties FuzzValidate documents.
func checkValidation[T any, P apiObject[T]](t *testing.T, o Object, obj P, d config.Defaults, validate func(P) field.ErrorList) {
	t.Helper()
	obj.SetDefaults(d)
	once := P(obj.DeepCopy())
	obj.SetDefaults(d)
	if !equality.Semantic.DeepEqual(once, obj) {
		t.Fatalf("%s %s: defaulting again changed it:\n%+v\n%+v", o.Kind, o.Name, once, obj)
	}

	errs := validate(obj)
	if !equality.Semantic.DeepEqual(once, obj) {
		t.Fatalf("%s %s: validating changed it:\n%+v\n%+v", o.Kind, o.Name, once, obj)
	}
	if again := validate(obj); !reflect.DeepEqual(errs, again) {
		t.Fatalf("%s %s: validation is not deterministic:\n%q\n%q", o.Kind, o.Name, fielderr.Messages(errs), fielderr.Messages(again))
	}
	for _, e := range errs {
		if e.Field == "" {
			t.Errorf("%s %s: error %q names no field", o.Kind, o.Name, e.Error())
		}
	}
}
