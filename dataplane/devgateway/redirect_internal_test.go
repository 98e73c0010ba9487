package devgateway

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Redirect URLs are built as Envoy's Http::Utility::newUri builds them:
// the scheme, host, port and path each replaced when the action says so
// and kept otherwise; the request's port dropped when the action sets
// one, or when the scheme changes and the port was the old scheme's
// default; the query kept unless strip_query, or a path_redirect with a
// query of its own, says otherwise.
func TestRedirectLocation(t *testing.T) {
	https := &routev3.RedirectAction_HttpsRedirect{HttpsRedirect: true}
	tests := []struct {
		name   string
		action *routev3.RedirectAction
		host   string
		path   string
		proto  string // X-Forwarded-Proto after sanitization
		want   string
		status int
	}{
		{"https with a port", &routev3.RedirectAction{SchemeRewriteSpecifier: https, PortRedirect: 8443},
			"hello.example.com", "/a/b?q=1&r=2", "http", "https://hello.example.com:8443/a/b?q=1&r=2", 301},
		{"the request's port replaced", &routev3.RedirectAction{SchemeRewriteSpecifier: https, PortRedirect: 8443},
			"hello.example.com:8080", "/", "http", "https://hello.example.com:8443/", 301},
		// port_redirect is appended as given: Envoy does not drop :443.
		{"port 443 kept", &routev3.RedirectAction{SchemeRewriteSpecifier: https, PortRedirect: 443},
			"hello.example.com:80", "/x", "http", "https://hello.example.com:443/x", 301},
		{"http's default port dropped", &routev3.RedirectAction{SchemeRewriteSpecifier: https},
			"hello.example.com:80", "/x", "http", "https://hello.example.com/x", 301},
		{"another port kept", &routev3.RedirectAction{SchemeRewriteSpecifier: https},
			"hello.example.com:8080", "/x", "http", "https://hello.example.com:8080/x", 301},
		{"https's default port dropped", &routev3.RedirectAction{SchemeRewriteSpecifier: &routev3.RedirectAction_SchemeRedirect{SchemeRedirect: "http"}},
			"hello.example.com:443", "/", "https", "http://hello.example.com/", 301},
		{"same scheme keeps the default port", &routev3.RedirectAction{SchemeRewriteSpecifier: https},
			"hello.example.com:443", "/", "https", "https://hello.example.com:443/", 301},
		{"IPv6 host", &routev3.RedirectAction{SchemeRewriteSpecifier: https, PortRedirect: 8443},
			"[::1]:8080", "/", "http", "https://[::1]:8443/", 301},
		{"IPv6 host without a port", &routev3.RedirectAction{SchemeRewriteSpecifier: https},
			"[::1]", "/", "http", "https://[::1]/", 301},
		{"host replaced, scheme kept", &routev3.RedirectAction{HostRedirect: "other.example.com", ResponseCode: routev3.RedirectAction_FOUND},
			"hello.example.com:8080", "/p?q", "http", "http://other.example.com/p?q", 302},
		{"path replaced, query kept", &routev3.RedirectAction{PathRewriteSpecifier: pathRedirect("/new"), ResponseCode: routev3.RedirectAction_SEE_OTHER},
			"h", "/old?bar=1", "http", "http://h/new?bar=1", 303},
		{"path replaced, query stripped", &routev3.RedirectAction{PathRewriteSpecifier: pathRedirect("/new"), StripQuery: true, ResponseCode: routev3.RedirectAction_TEMPORARY_REDIRECT},
			"h", "/old?bar=1", "http", "http://h/new", 307},
		{"the path's own query wins and stays", &routev3.RedirectAction{PathRewriteSpecifier: pathRedirect("/new?foo=1"), StripQuery: true, ResponseCode: routev3.RedirectAction_PERMANENT_REDIRECT},
			"h", "/old?bar=1", "http", "http://h/new?foo=1", 308},
		{"a relative path gets its slash", &routev3.RedirectAction{PathRewriteSpecifier: pathRedirect("new")},
			"h", "/old", "http", "http://h/new", 301},
		{"query stripped", &routev3.RedirectAction{SchemeRewriteSpecifier: https, StripQuery: true},
			"h", "/a?b", "http", "https://h/a", 301},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ra, err := compileRedirect(tt.action)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, tt.path, nil)
			r.Host = tt.host
			r.Header.Set("X-Forwarded-Proto", tt.proto)
			if tt.proto == "https" {
				r.TLS = &tls.ConnectionState{}
			}
			if got := ra.location(r); got != tt.want {
				t.Errorf("Location %q, want %q", got, tt.want)
			}
			if ra.status != tt.status {
				t.Errorf("status %d, want %d", ra.status, tt.status)
			}
		})
	}
	for _, refused := range []*routev3.RedirectAction{
		{PathRewriteSpecifier: &routev3.RedirectAction_PrefixRewrite{PrefixRewrite: "/x"}},
		{ResponseCode: 42},
	} {
		if _, err := compileRedirect(refused); err == nil {
			t.Errorf("%v: compiled, want refused", refused)
		}
	}
}

func pathRedirect(p string) *routev3.RedirectAction_PathRedirect {
	return &routev3.RedirectAction_PathRedirect{PathRedirect: p}
}

// X-Forwarded-Proto is set before routing as Envoy's connection manager
// sets it: an edge proxy trusting no hop overwrites the client's with the
// connection's scheme; otherwise the client's stands and a missing one is
// the connection's scheme.
func TestForwardedProto(t *testing.T) {
	tests := []struct {
		name    string
		hcm     *hcmv3.HttpConnectionManager
		tls     bool
		client  []string
		want    string
		wantOut string // :scheme as routes and redirects see it
	}{
		{"edge, plain, forged", &hcmv3.HttpConnectionManager{UseRemoteAddress: wrapperspb.Bool(true)}, false, []string{"https"}, "http", "http"},
		{"edge, TLS, forged", &hcmv3.HttpConnectionManager{UseRemoteAddress: wrapperspb.Bool(true)}, true, []string{"http"}, "https", "https"},
		{"edge, TLS, none", &hcmv3.HttpConnectionManager{UseRemoteAddress: wrapperspb.Bool(true)}, true, nil, "https", "https"},
		{"edge behind a trusted hop", &hcmv3.HttpConnectionManager{UseRemoteAddress: wrapperspb.Bool(true), XffNumTrustedHops: 1}, false, []string{"https"}, "https", "https"},
		{"edge behind a trusted hop, none", &hcmv3.HttpConnectionManager{UseRemoteAddress: wrapperspb.Bool(true), XffNumTrustedHops: 1}, true, nil, "https", "https"},
		{"internal, sent", &hcmv3.HttpConnectionManager{}, false, []string{"https"}, "https", "https"},
		{"internal, none", &hcmv3.HttpConnectionManager{}, false, nil, "http", "http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cm := &connManager{useRemoteAddress: tt.hcm.GetUseRemoteAddress().GetValue(), xffTrustedHops: tt.hcm.GetXffNumTrustedHops()}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			r.Header["X-Forwarded-Proto"] = tt.client
			cm.setForwardedProto(r)
			if got := r.Header.Values("X-Forwarded-Proto"); len(got) != 1 || got[0] != tt.want {
				t.Errorf("X-Forwarded-Proto %q, want [%s]", got, tt.want)
			}
			if got, _ := requestHeader(r, ":scheme"); got != tt.wantOut {
				t.Errorf(":scheme %q, want %q", got, tt.wantOut)
			}
		})
	}
}
