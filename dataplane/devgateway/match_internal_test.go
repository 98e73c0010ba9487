package devgateway

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Virtual hosts are searched as Envoy does: exact, then suffix
// wildcards, then prefix wildcards (longest first), then "*".
func TestVirtualHostSearch(t *testing.T) {
	vh := func(name string, domains ...string) *routev3.VirtualHost {
		return &routev3.VirtualHost{Name: name, Domains: domains}
	}
	rt, err := compileRouteTable(&routev3.RouteConfiguration{Name: "r", VirtualHosts: []*routev3.VirtualHost{
		vh("exact", "a.example.com", "a.example.com:*"),
		vh("suffix", "*.example.com"),
		vh("longer-suffix", "*.b.example.com"),
		vh("prefix", "c.*"),
		vh("any", "*"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{
		"a.example.com":      "exact",
		"A.Example.com:8080": "exact",
		"x.example.com":      "suffix",
		"x.b.example.com":    "longer-suffix",
		".example.com":       "any", // a wildcard stands for one character at least
		"c.other":            "prefix",
		"elsewhere":          "any",
	} {
		if got := rt.virtualHost(host); got == nil || got.name != want {
			t.Errorf("%s: got %v, want %s", host, got, want)
		}
	}
}

// The scope key fragments follow Envoy's header value extractor.
func TestScopeKeyFragments(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Host = "hello.example.com:8080"
	req.Header.Add("X-Pairs", "a=1;b=2")
	req.Header.Add("X-Pairs", "c=3")
	for _, tc := range []struct {
		fb     fragmentBuilder
		want   string
		wantOK bool
	}{
		{fragmentBuilder{header: ":authority", separator: ":"}, "hello.example.com", true},
		{fragmentBuilder{header: ":authority"}, "hello.example.com:8080", true},
		{fragmentBuilder{header: ":authority", separator: ":", index: 1}, "8080", true},
		{fragmentBuilder{header: ":authority", separator: ":", index: 2}, "", false},
		{fragmentBuilder{header: "x-pairs", separator: ";", byKey: true, key: "b", kvSeparator: "="}, "2", true},
		// Only the header's first value counts.
		{fragmentBuilder{header: "x-pairs", separator: ";", byKey: true, key: "c", kvSeparator: "="}, "", false},
		{fragmentBuilder{header: "x-missing"}, "", false},
	} {
		got, ok := tc.fb.fragment(req)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("%+v: got %q %v, want %q %v", tc.fb, got, ok, tc.want, tc.wantOK)
		}
	}
}

// Header matchers follow HeaderUtility::matchHeaders, missing headers
// included.
func TestHeaderMatchers(t *testing.T) {
	exact := func(v string) *routev3.HeaderMatcher_StringMatch {
		return &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
			MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v}}}
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Add("X-Tag", "a")
	req.Header.Add("X-Tag", "b")
	for _, tc := range []struct {
		m    *routev3.HeaderMatcher
		want bool
	}{
		{&routev3.HeaderMatcher{Name: "x-tag", HeaderMatchSpecifier: exact("a,b")}, true}, // values joined
		{&routev3.HeaderMatcher{Name: "x-tag", HeaderMatchSpecifier: exact("a")}, false},
		{&routev3.HeaderMatcher{Name: "x-tag", HeaderMatchSpecifier: exact("a"), InvertMatch: true}, true},
		{&routev3.HeaderMatcher{Name: "x-none", HeaderMatchSpecifier: exact("a"), InvertMatch: true}, false},
		{&routev3.HeaderMatcher{Name: "x-none", HeaderMatchSpecifier: exact(""), TreatMissingHeaderAsEmpty: true}, true},
		{&routev3.HeaderMatcher{Name: "x-none", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}, InvertMatch: true}, true},
		{&routev3.HeaderMatcher{Name: "x-none", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: false}}, true},
		{&routev3.HeaderMatcher{Name: "x-tag"}, true}, // no pattern: present
		{&routev3.HeaderMatcher{Name: ":method", HeaderMatchSpecifier: exact("GET")}, true},
	} {
		hm, err := compileHeaderMatcher(tc.m)
		if err != nil {
			t.Fatal(err)
		}
		if got := hm.matches(req); got != tc.want {
			t.Errorf("%v: got %v, want %v", tc.m, got, tc.want)
		}
	}
}

// Header additions follow their append actions.
func TestHeaderActions(t *testing.T) {
	opt := func(name, value string, action corev3.HeaderValueOption_HeaderAppendAction) *corev3.HeaderValueOption {
		return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: name, Value: value}, AppendAction: action}
	}
	ops, err := compileHeaderOps([]*corev3.HeaderValueOption{
		opt("x-append", "new", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD),
		opt("x-absent", "new", corev3.HeaderValueOption_ADD_IF_ABSENT),
		opt("x-kept", "new", corev3.HeaderValueOption_ADD_IF_ABSENT),
		opt("x-overwrite", "new", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
		opt("x-only-if", "new", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS),
		opt("x-empty", "", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
		{Header: &corev3.HeaderValue{Key: "x-legacy", Value: "new"}, Append: wrapperspb.Bool(false)},
		opt("x-percent", "100%%", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
	}, []string{"x-removed"})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"X-Append": {"old"}, "X-Kept": {"old"}, "X-Overwrite": {"old"}, "X-Removed": {"old"},
		"X-Empty": {"old"}, "X-Legacy": {"old"}}
	ops.apply(h)
	want := http.Header{"X-Append": {"old", "new"}, "X-Absent": {"new"}, "X-Kept": {"old"}, "X-Overwrite": {"new"},
		"X-Empty": {"old"}, "X-Legacy": {"new"}, "X-Percent": {"100%"}}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("got %v, want %v", h, want)
	}
}
