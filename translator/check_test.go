package translator

import (
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

// isHeaderName must agree with apimachinery's header-name rule, which the
// error messages of CheckService use.
func TestIsHeaderNameAgreesWithApimachinery(t *testing.T) {
	for _, name := range []string{
		"", "Knative-Serving-Revision", "x-kgate-listener", "a", "A1!#$%&'*+-.^_`|~",
		"with space", "colon:", "tab\t", "quote\"", "paren(", "comma,", "slash/", "non-ascii-é", "semi;", "brace{", "at@",
	} {
		want := len(validation.IsHTTPHeaderName(name)) == 0
		if got := isHeaderName(name); got != want {
			t.Errorf("isHeaderName(%q) = %v, apimachinery says %v", name, got, want)
		}
	}
}
