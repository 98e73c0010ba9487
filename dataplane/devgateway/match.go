package devgateway

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// requestHeader returns a request header as Envoy's header map holds it:
// the pseudo-headers from the request line (HTTP/1.1's Host is
// :authority), other headers with their values joined by ",", as Envoy's
// header matchers see them. ok is false when the request has no such
// header.
func requestHeader(r *http.Request, name string) (value string, ok bool) {
	switch strings.ToLower(name) {
	case ":authority", "host":
		return r.Host, r.Host != ""
	case ":path":
		return requestPath(r), true
	case ":method":
		return r.Method, true
	case ":scheme":
		return requestScheme(r), true
	}
	vs := r.Header.Values(name)
	if len(vs) == 0 {
		return "", false
	}
	return strings.Join(vs, ","), true
}

// requestPath is :path, the path and query as the client sent them.
func requestPath(r *http.Request) string {
	return r.URL.RequestURI()
}

// stringMatcher is a compiled StringMatcher.
type stringMatcher func(string) bool

func compileStringMatcher(m *matcherv3.StringMatcher) (stringMatcher, error) {
	if err := onlyFields(m, "exact", "prefix", "suffix", "contains", "safe_regex", "ignore_case"); err != nil {
		return nil, err
	}
	fold := m.GetIgnoreCase()
	normalize := func(s string) string {
		if fold {
			return strings.ToLower(s)
		}
		return s
	}
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		want := normalize(p.Exact)
		return func(s string) bool { return normalize(s) == want }, nil
	case *matcherv3.StringMatcher_Prefix:
		want := normalize(p.Prefix)
		return func(s string) bool { return strings.HasPrefix(normalize(s), want) }, nil
	case *matcherv3.StringMatcher_Suffix:
		want := normalize(p.Suffix)
		return func(s string) bool { return strings.HasSuffix(normalize(s), want) }, nil
	case *matcherv3.StringMatcher_Contains:
		want := normalize(p.Contains)
		return func(s string) bool { return strings.Contains(normalize(s), want) }, nil
	case *matcherv3.StringMatcher_SafeRegex:
		re, err := compileRegex(p.SafeRegex)
		if err != nil {
			return nil, err
		}
		return re.MatchString, nil
	}
	return nil, errors.New("a string matcher has no pattern")
}

// compileRegex compiles a RegexMatcher, which must match the whole string.
// Envoy's engine is RE2, whose syntax Go's regexp shares.
func compileRegex(m *matcherv3.RegexMatcher) (*regexp.Regexp, error) {
	if err := onlyFields(m, "regex", "google_re2"); err != nil {
		return nil, err
	}
	re, err := regexp.Compile(`^(?:` + m.GetRegex() + `)$`)
	if err != nil {
		return nil, fmt.Errorf("regex %q: %w", m.GetRegex(), err)
	}
	return re, nil
}

// headerMatcher is a compiled HeaderMatcher.
type headerMatcher struct {
	name string
	// present is the match of a present_match (or of a matcher naming no
	// pattern, which Envoy takes for "is present"); nil for a string
	// match.
	present *bool
	match   stringMatcher
	invert  bool
	// missingAsEmpty matches a missing header as the empty string.
	missingAsEmpty bool
}

func compileHeaderMatcher(h *routev3.HeaderMatcher) (headerMatcher, error) {
	if err := onlyFields(h, "name", "string_match", "present_match", "invert_match", "treat_missing_header_as_empty"); err != nil {
		return headerMatcher{}, err
	}
	hm := headerMatcher{name: h.GetName(), invert: h.GetInvertMatch(), missingAsEmpty: h.GetTreatMissingHeaderAsEmpty()}
	switch spec := h.GetHeaderMatchSpecifier().(type) {
	case *routev3.HeaderMatcher_StringMatch:
		m, err := compileStringMatcher(spec.StringMatch)
		if err != nil {
			return headerMatcher{}, fmt.Errorf("header %s: %w", h.GetName(), err)
		}
		hm.match = m
	case *routev3.HeaderMatcher_PresentMatch:
		hm.present = &spec.PresentMatch
	default:
		present := true
		hm.present = &present
	}
	return hm, nil
}

// matches follows Envoy's HeaderUtility::matchHeaders, down to its
// handling of a missing header under invert_match.
func (m headerMatcher) matches(r *http.Request) bool {
	value, ok := requestHeader(r, m.name)
	if !ok && !m.missingAsEmpty {
		if m.present == nil {
			return false
		}
		return *m.present == m.invert
	}
	var match bool
	if m.present != nil {
		match = *m.present
	} else {
		match = m.match(value)
	}
	return match != m.invert
}
