package devgateway

import (
	"fmt"
	"net/http"
	"strings"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// headerOps is one level's header mutation (a route configuration, a
// virtual host, a route, a weighted cluster, an early header mutation):
// steps applied in order. Levels built from request_headers_to_remove and
// request_headers_to_add remove first, as Envoy's header parser does.
type headerOps []headerStep

// headerStep removes a header, or adds one as a HeaderValueOption says.
type headerStep struct {
	name   string
	remove bool
	value  string
	action corev3.HeaderValueOption_HeaderAppendAction
	// keepEmpty adds the header even with an empty value, which Envoy
	// skips otherwise.
	keepEmpty bool
}

// apply mutates h.
func (o headerOps) apply(h http.Header) {
	for _, s := range o {
		if s.remove {
			h.Del(s.name)
			continue
		}
		if s.value == "" && !s.keepEmpty {
			continue
		}
		_, present := h[http.CanonicalHeaderKey(s.name)]
		switch s.action {
		case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
			h.Add(s.name, s.value)
		case corev3.HeaderValueOption_ADD_IF_ABSENT:
			if !present {
				h.Set(s.name, s.value)
			}
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
			if present {
				h.Set(s.name, s.value)
			}
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
			h.Set(s.name, s.value)
		}
	}
}

// compileHeaderOps reads a pair of *_headers_to_add and *_headers_to_remove
// fields.
func compileHeaderOps(add []*corev3.HeaderValueOption, remove []string) (headerOps, error) {
	var ops headerOps
	for _, name := range remove {
		if err := checkMutable(name); err != nil {
			return nil, err
		}
		ops = append(ops, headerStep{name: name, remove: true})
	}
	for _, hv := range add {
		s, err := compileHeaderAdd(hv)
		if err != nil {
			return nil, err
		}
		ops = append(ops, s)
	}
	return ops, nil
}

// compileEarlyMutations reads an early header mutation's rules, applied in
// their order.
func compileEarlyMutations(rules []*mutationrulesv3.HeaderMutation) (headerOps, error) {
	var ops headerOps
	for _, m := range rules {
		switch action := m.GetAction().(type) {
		case *mutationrulesv3.HeaderMutation_Remove:
			if err := checkMutable(action.Remove); err != nil {
				return nil, err
			}
			ops = append(ops, headerStep{name: action.Remove, remove: true})
		case *mutationrulesv3.HeaderMutation_Append:
			s, err := compileHeaderAdd(action.Append)
			if err != nil {
				return nil, err
			}
			ops = append(ops, s)
		default:
			return nil, fmt.Errorf("early header mutation %T is not supported by the dev gateway", action)
		}
	}
	return ops, nil
}

func compileHeaderAdd(hv *corev3.HeaderValueOption) (headerStep, error) {
	if err := onlyFields(hv, "header", "append", "append_action", "keep_empty_value"); err != nil {
		return headerStep{}, err
	}
	if err := onlyFields(hv.GetHeader(), "key", "value", "raw_value"); err != nil {
		return headerStep{}, err
	}
	name := hv.GetHeader().GetKey()
	if err := checkMutable(name); err != nil {
		return headerStep{}, err
	}
	raw := hv.GetHeader().GetValue()
	if raw == "" {
		raw = string(hv.GetHeader().GetRawValue())
	}
	value, err := literal(raw)
	if err != nil {
		return headerStep{}, fmt.Errorf("header %s: %w", name, err)
	}
	action := hv.GetAppendAction()
	if hv.GetAppend() != nil {
		// The deprecated field wins when set, as in Envoy.
		action = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		if hv.GetAppend().GetValue() {
			action = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
		}
	}
	return headerStep{name: name, value: value, action: action, keepEmpty: hv.GetKeepEmptyValue()}, nil
}

// checkMutable refuses what Envoy refuses to mutate: pseudo-headers and
// Host.
func checkMutable(name string) error {
	if name == "" || strings.HasPrefix(name, ":") || strings.EqualFold(name, "host") {
		return fmt.Errorf("header %q may not be mutated", name)
	}
	return nil
}

// literal reads a header value as Envoy's formatter would: "%%" is a
// percent sign, and any other "%COMMAND%" is a substitution the gateway
// does not implement.
func literal(v string) (string, error) {
	if !strings.Contains(v, "%") {
		return v, nil
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '%' {
			b.WriteByte(v[i])
			continue
		}
		if i+1 < len(v) && v[i+1] == '%' {
			b.WriteByte('%')
			i++
			continue
		}
		return "", fmt.Errorf("value %q: header formatters (%%COMMAND%%) are not supported by the dev gateway", v)
	}
	return b.String(), nil
}
