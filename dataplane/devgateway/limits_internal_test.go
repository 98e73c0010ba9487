package devgateway

import (
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// A listener keeping its address with other server limits hands its
// socket to a new server: the address stays, a request under way finishes
// on the old server, and new connections get the new limits.
func TestLimitsChangeHandsOverTheSocket(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	var holding atomic.Int64
	backend := heldBackend(t, release, &holding)
	t.Cleanup(letGo) // before the backend's: a failure must not leave it holding
	g := serving(t, backend)
	addr := g.Addr("web")
	held := inBackground(addr, "/hold")
	waitHeld(t, &holding, 1)

	if err := g.feed.onListeners(update(httpListener(t, "web", "0.0.0.0", 8080, func(h *hcmv3.HttpConnectionManager) {
		h.RequestHeadersTimeout = durationpb.New(3 * time.Second)
	}))); err != nil {
		t.Fatal(err)
	}
	if got := g.Addr("web"); got != addr {
		t.Fatalf("the limits changed and the listener moved from %s to %s", addr, got)
	}
	g.mu.Lock()
	limits := g.listeners["web"].limits
	g.mu.Unlock()
	if limits.readHeaderTimeout != 3*time.Second {
		t.Fatalf("server limits %+v, want a 3s header timeout", limits)
	}
	if got, err := fetch(addr, "/"); err != nil || got != "200 ok" {
		t.Fatalf("GET after the change: %q %v", got, err)
	}
	letGo()
	if got := <-held; got != "200 ok" {
		t.Errorf("request under way during the change: %q, want 200 ok", got)
	}
}

// The connection manager's limits, and Envoy's defaults where it sets none.
func TestCompileLimits(t *testing.T) {
	tests := []struct {
		name    string
		hcm     *hcmv3.HttpConnectionManager
		server  serverLimits
		request requestLimits
	}{
		{"Envoy's defaults", &hcmv3.HttpConnectionManager{},
			serverLimits{idleTimeout: time.Hour, maxHeaderBytes: 60 << 10},
			requestLimits{maxHeaderBytes: 60 << 10, maxHeadersCount: 100}},
		{"the translator's edge", &hcmv3.HttpConnectionManager{
			RequestHeadersTimeout: durationpb.New(10 * time.Second),
			MaxRequestHeadersKb:   wrapperspb.UInt32(60),
			CommonHttpProtocolOptions: &corev3.HttpProtocolOptions{IdleTimeout: durationpb.New(0), MaxHeadersCount: wrapperspb.UInt32(100),
				HeadersWithUnderscoresAction: corev3.HttpProtocolOptions_REJECT_REQUEST},
			Http2ProtocolOptions: &corev3.Http2ProtocolOptions{MaxConcurrentStreams: wrapperspb.UInt32(100),
				InitialStreamWindowSize: wrapperspb.UInt32(64 << 10), InitialConnectionWindowSize: wrapperspb.UInt32(1 << 20)},
			NormalizePath: wrapperspb.Bool(true), MergeSlashes: true,
			PathWithEscapedSlashesAction: hcmv3.HttpConnectionManager_REJECT_REQUEST,
		},
			serverLimits{readHeaderTimeout: 10 * time.Second, maxHeaderBytes: 60 << 10,
				maxConcurrentStreams: 100, streamWindowBytes: 64 << 10, connectionWindowBytes: 1 << 20},
			requestLimits{maxHeaderBytes: 60 << 10, maxHeadersCount: 100, underscores: corev3.HttpProtocolOptions_REJECT_REQUEST,
				paths: pathRules{normalize: true, mergeSlashes: true, rejectEscapedSlashes: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, req, err := compileLimits(tt.hcm)
			if err != nil {
				t.Fatal(err)
			}
			if srv != tt.server || req != tt.request {
				t.Errorf("got %+v %+v, want %+v %+v", srv, req, tt.server, tt.request)
			}
		})
	}
}

// Paths are normalized before routing as Envoy's normalize_path,
// merge_slashes and path_with_escaped_slashes_action say.
func TestPathRules(t *testing.T) {
	all := pathRules{normalize: true, mergeSlashes: true}
	tests := []struct {
		name    string
		rules   pathRules
		in      string
		want    string // the escaped path routed and forwarded
		wantErr bool
	}{
		{"nothing to do", all, "/a/b?x=/../", "/a/b", false},
		{"dot segments", all, "/a/./b/../c", "/a/c", false},
		{"dot segments escaped", all, "/a/%2e%2E/c", "/c", false},
		{"above the root", all, "/../../etc/passwd", "/etc/passwd", false},
		{"a trailing ..", all, "/a/b/..", "/a/", false},
		{"slashes merged", all, "//a///b", "/a/b", false},
		{"slashes kept", pathRules{normalize: true}, "//a//b", "//a//b", false},
		{"off", pathRules{}, "/a/../b", "/a/../b", false},
		{"escaped slash kept", all, "/a%2Fb", "/a%2Fb", false},
		{"escaped slash rejected", pathRules{rejectEscapedSlashes: true}, "/a%2fb", "", true},
		{"escaped backslash rejected", pathRules{rejectEscapedSlashes: true}, "/a%5Cb", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.ParseRequestURI(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			r := &http.Request{URL: u}
			err = tt.rules.apply(r)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && r.URL.EscapedPath() != tt.want {
				t.Errorf("path %q, want %q", r.URL.EscapedPath(), tt.want)
			}
		})
	}
}

// Header names with an underscore: allowed, dropped or rejected.
func TestUnderscores(t *testing.T) {
	for _, tt := range []struct {
		action  corev3.HttpProtocolOptions_HeadersWithUnderscoresAction
		wantErr bool
		kept    bool
	}{
		{corev3.HttpProtocolOptions_ALLOW, false, true},
		{corev3.HttpProtocolOptions_DROP_HEADER, false, false},
		{corev3.HttpProtocolOptions_REJECT_REQUEST, true, true},
	} {
		t.Run(tt.action.String(), func(t *testing.T) {
			h := http.Header{"X_user": {"admin"}, "X-Other": {"1"}}
			err := requestLimits{underscores: tt.action}.checkUnderscores(h)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if _, kept := h["X_user"]; kept != tt.kept || h.Get("X-Other") != "1" {
				t.Errorf("headers left: %v", h)
			}
		})
	}
}
