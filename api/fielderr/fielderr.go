// Package fielderr builds field.Errors that carry Knative's own validation
// messages, and renders a field.ErrorList the way Knative's webhook prints its
// errors ("MESSAGE: PATH, PATH"), so users see the texts Knative documents.
package fielderr

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The Detail of every error built here is Knative's message, optionally
// followed by a newline and further details, as Knative prints them.

func detail(msg string, details []string) string {
	if d := strings.Join(details, ", "); d != "" {
		return msg + "\n" + d
	}
	return msg
}

// Invalid is Knative's ErrInvalidValue: "invalid value: VALUE".
func Invalid(p *field.Path, value any, details ...string) *field.Error {
	return field.Invalid(p, value, detail(fmt.Sprint("invalid value: ", value), details))
}

// OutOfBounds is Knative's ErrOutOfBoundsValue: "expected LOWER <= VALUE <= UPPER".
func OutOfBounds(p *field.Path, value, lower, upper any) *field.Error {
	return field.Invalid(p, value, fmt.Sprintf("expected %v <= %v <= %v", lower, value, upper))
}

// Disallowed is Knative's ErrDisallowedFields: "must not set the field(s)".
func Disallowed(p *field.Path) *field.Error {
	return field.Forbidden(p, "must not set the field(s)")
}

// Missing is Knative's ErrMissingField: "missing field(s)".
func Missing(p *field.Path) *field.Error {
	return field.Required(p, "missing field(s)")
}

// MissingOneOf is Knative's ErrMissingOneOf: "expected exactly one, got
// neither", reported on every candidate path.
func MissingOneOf(paths ...*field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, p := range paths {
		errs = append(errs, field.Required(p, "expected exactly one, got neither"))
	}
	return errs
}

// MultipleOneOf is Knative's ErrMultipleOneOf: "expected exactly one, got
// both", reported on every path that was set.
func MultipleOneOf(paths ...*field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, p := range paths {
		errs = append(errs, field.Invalid(p, nil, "expected exactly one, got both"))
	}
	return errs
}

// Generic is Knative's ErrGeneric: a free-form message on a path whose value
// is value.
func Generic(p *field.Path, value any, msg string, details ...string) *field.Error {
	return field.Invalid(p, value, detail(msg, details))
}

// Messages renders errs as Knative does: one line per distinct message, its
// paths merged, sorted and joined by ", ", any details on the next line.
// Errors not built by this package render their Detail (or, without one,
// apimachinery's text) the same way.
func Messages(errs field.ErrorList) []string {
	paths := map[string][]string{}
	var order []string
	for _, e := range errs {
		msg := e.Detail
		if msg == "" {
			msg = e.ErrorBody()
		}
		if _, ok := paths[msg]; !ok {
			order = append(order, msg)
		}
		if !contains(paths[msg], e.Field) {
			paths[msg] = append(paths[msg], e.Field)
		}
	}
	out := make([]string, 0, len(order))
	for _, msg := range order {
		ps := paths[msg]
		sort.Strings(ps)
		head, details, _ := strings.Cut(msg, "\n")
		line := head + ": " + strings.Join(ps, ", ")
		if details != "" {
			line += "\n" + details
		}
		out = append(out, line)
	}
	sort.Strings(out)
	return out
}

// String is Messages joined by newlines, as in a Knative webhook denial.
func String(errs field.ErrorList) string {
	return strings.Join(Messages(errs), "\n")
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
