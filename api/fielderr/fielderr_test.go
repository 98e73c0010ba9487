package fielderr

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestMessages(t *testing.T) {
	p := field.NewPath("spec")
	errs := field.ErrorList{
		Disallowed(p.Child("b")),
		OutOfBounds(p.Child("percent"), 101, 0, 100),
		Disallowed(p.Child("a")),
		Disallowed(p.Child("a")), // the same path twice is printed once
		Invalid(p.Child("port"), "8012 is a reserved port", "use another", "please"),
		Missing(p.Child("image")),
		field.Duplicate(p.Child("x"), "y"), // not built here: rendered by type
	}
	errs = append(errs, MultipleOneOf(p.Child("revisionName"), p.Child("configurationName"))...)
	errs = append(errs, MissingOneOf(p.Child("c"), p.Child("d"))...)
	want := []string{
		`Duplicate value: "y": spec.x`,
		"expected 0 <= 101 <= 100: spec.percent",
		"expected exactly one, got both: spec.configurationName, spec.revisionName",
		"expected exactly one, got neither: spec.c, spec.d",
		"invalid value: 8012 is a reserved port: spec.port\nuse another, please",
		"missing field(s): spec.image",
		"must not set the field(s): spec.a, spec.b",
	}
	if got := Messages(errs); !reflect.DeepEqual(got, want) {
		t.Errorf("Messages =\n%q\nwant\n%q", got, want)
	}
	if got := String(errs[:2]); got != "expected 0 <= 101 <= 100: spec.percent\nmust not set the field(s): spec.b" {
		t.Errorf("String = %q", got)
	}
	if Messages(nil) == nil || len(Messages(nil)) != 0 {
		t.Errorf("Messages(nil) = %#v, want an empty list", Messages(nil))
	}
}
