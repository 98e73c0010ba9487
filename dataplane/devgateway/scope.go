package devgateway

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// Scoped routing, as Envoy's SRDS does it: a connection manager builds a
// key from request headers (ScopeKeyBuilder), the ScopedRouteConfiguration
// with that key names the RouteConfiguration to route with. Every scope
// received over SRDS is in one table shared by the scoped connection
// managers, as in Envoy, where they all get every scope over ADS.

// scopeKey is an encoded list of key fragments: each is prefixed with its
// length, so that no two lists encode alike.
type scopeKey string

func encodeKey(fragments []string) scopeKey {
	var b strings.Builder
	for _, f := range fragments {
		b.WriteString(strconv.Itoa(len(f)))
		b.WriteByte(':')
		b.WriteString(f)
	}
	return scopeKey(b.String())
}

// keyBuilder computes a request's scope key.
type keyBuilder []fragmentBuilder

// fragmentBuilder is a HeaderValueExtractor: one header's value, split on
// a separator, and one element of it, by index or by key.
type fragmentBuilder struct {
	header    string
	separator string
	index     int
	// byKey, when set, picks the element "<key><kvSeparator><value>".
	byKey       bool
	key         string
	kvSeparator string
}

func compileKeyBuilder(b *hcmv3.ScopedRoutes_ScopeKeyBuilder) (keyBuilder, error) {
	if len(b.GetFragments()) == 0 {
		return nil, errors.New("the scope key builder has no fragments")
	}
	kb := make(keyBuilder, 0, len(b.GetFragments()))
	for i, f := range b.GetFragments() {
		x := f.GetHeaderValueExtractor()
		if x == nil {
			return nil, fmt.Errorf("scope key fragment %d: only header_value_extractor is supported by the dev gateway", i)
		}
		fb := fragmentBuilder{header: x.GetName(), separator: x.GetElementSeparator()}
		switch t := x.GetExtractType().(type) {
		case *hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor_Index:
			fb.index = int(t.Index)
		case *hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor_Element:
			fb.byKey, fb.key, fb.kvSeparator = true, t.Element.GetKey(), t.Element.GetSeparator()
		default:
			return nil, fmt.Errorf("scope key fragment %d: no extract type", i)
		}
		kb = append(kb, fb)
	}
	return kb, nil
}

// key returns r's scope key; ok is false when a fragment is missing, and
// then no scope applies.
func (kb keyBuilder) key(r *http.Request) (scopeKey, bool) {
	fragments := make([]string, 0, len(kb))
	for _, fb := range kb {
		f, ok := fb.fragment(r)
		if !ok {
			return "", false
		}
		fragments = append(fragments, f)
	}
	return encodeKey(fragments), true
}

// fragment follows Envoy's HeaderValueExtractorImpl: the first value of
// the header only (the header comes from the client and is not trusted to
// be single), split when a separator is set.
func (fb fragmentBuilder) fragment(r *http.Request) (string, bool) {
	value, ok := firstValue(r, fb.header)
	if !ok {
		return "", false
	}
	elements := []string{value}
	if fb.separator != "" {
		elements = strings.Split(value, fb.separator)
	}
	if !fb.byKey {
		if fb.index < len(elements) {
			return elements[fb.index], true
		}
		return "", false
	}
	for _, e := range elements {
		k, v, _ := strings.Cut(e, fb.kvSeparator)
		if k == fb.key {
			return v, true
		}
	}
	return "", false
}

// firstValue is the first value of a request header, pseudo-headers
// included.
func firstValue(r *http.Request, name string) (string, bool) {
	if strings.HasPrefix(name, ":") || strings.EqualFold(name, "host") {
		return requestHeader(r, name)
	}
	vs := r.Header.Values(name)
	if len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

// scope is a compiled ScopedRouteConfiguration.
type scope struct {
	name string
	key  scopeKey
	// routeName is the RouteConfiguration to fetch over RDS, empty when
	// the scope carries its route configuration inline.
	routeName string
	inline    *routeTable
}

// rdsName is the route configuration s fetches over RDS; "" for a nil s.
func (s *scope) rdsName() string {
	if s == nil {
		return ""
	}
	return s.routeName
}

func compileScope(s *routev3.ScopedRouteConfiguration) (*scope, error) {
	if err := onlyFields(s, "name", "key", "route_configuration_name", "route_configuration", "on_demand"); err != nil {
		return nil, err
	}
	var fragments []string
	for i, f := range s.GetKey().GetFragments() {
		k, ok := f.GetType().(*routev3.ScopedRouteConfiguration_Key_Fragment_StringKey)
		if !ok {
			return nil, fmt.Errorf("key fragment %d is not a string key", i)
		}
		fragments = append(fragments, k.StringKey)
	}
	if len(fragments) == 0 {
		return nil, errors.New("the scope has no key")
	}
	sc := &scope{name: s.GetName(), key: encodeKey(fragments), routeName: s.GetRouteConfigurationName()}
	if rc := s.GetRouteConfiguration(); rc != nil {
		rt, err := compileRouteTable(rc)
		if err != nil {
			return nil, fmt.Errorf("inline route configuration: %w", err)
		}
		sc.inline, sc.routeName = rt, ""
	}
	if sc.routeName == "" && sc.inline == nil {
		return nil, errors.New("the scope names no route configuration")
	}
	return sc, nil
}
