package dashboard

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/watcher/knative"
)

func service(name, url string, ready corev1.ConditionStatus, reason string) *servingv1.Service {
	s := &servingv1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
	s.Status.Conditions = []servingv1.Condition{{Type: servingv1.ConditionReady, Status: ready, Reason: reason}}
	if url != "" {
		u, err := servingv1.ParseURL(url)
		if err != nil {
			panic(err)
		}
		s.Status.URL = u
	}
	s.Status.LatestReadyRevisionName = name + "-00001"
	return s
}

func revision(svc, name string, actual int32, desired *int32, mode string) *servingv1.Revision {
	r := &servingv1.Revision{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{knative.LabelService: svc}}}
	r.Status.Conditions = []servingv1.Condition{{Type: servingv1.ConditionReady, Status: corev1.ConditionTrue}}
	r.Status.ActualReplicas, r.Status.DesiredReplicas = &actual, desired
	if mode != "" {
		r.Status.Annotations = map[string]string{knative.AnnotationRoutingMode: mode}
	}
	return r
}

// fakeClock is a clock a test moves.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func testPage(objs *Objects, reqs map[string]float64, clock *fakeClock, opts Options) *Page {
	opts.Objects = func() Objects { return *objs }
	opts.Requests = func() map[string]float64 { out := reqs; reqs = nil; return out }
	opts.Now = clock.Now
	return New(opts)
}

func get(t *testing.T, h http.Handler, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestPageRendersObjectsAndCharts(t *testing.T) {
	two := int32(2)
	objs := &Objects{
		Services: []*servingv1.Service{
			service("hello", "http://hello.default.127.0.0.1.nip.io", corev1.ConditionTrue, ""),
			service("bad", "javascript:alert(1)", corev1.ConditionFalse, `<script>alert("x")</script>`),
		},
		Revisions: []*servingv1.Revision{revision("hello", "hello-00001", 1, &two, "Serve"), revision("bad", "bad-00001", 0, nil, "")},
	}
	clock := &fakeClock{now: t0}
	p := testPage(objs, map[string]float64{"default/hello-00001": 30}, clock, Options{})
	p.Sample()
	clock.now = clock.now.Add(time.Second)
	p.Sample()

	res, body := get(t, p, "/")
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	for _, want := range []string{
		`<tr class="svc" data-key="default/hello">`,
		`<a href="http://hello.default.127.0.0.1.nip.io">http://hello.default.127.0.0.1.nip.io</a>`,
		`<tr class="rev" data-key="default/hello-00001">`,
		`<td class="mode" data-mode="Serve">Serve</td>`,
		`<span class="actual">1</span> / <span class="desired">2</span>`,
		`<span class="actual">0</span> / <span class="desired">-</span>`,
		`0 rps (max 50)`,                                  // the label: 30 requests in the first second, none in the next
		`points="239.2,19.4 240.0,47.0"`,                  // the rate: 30 then 0 of 50
		`&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`, // escaped
		`href="#ZgotmplZ"`,                                // an unsafe URL is not a link
		`<script src="/ui/app.js" defer></script>`,
		`<template id="rev-row">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if strings.Contains(body, `<script>alert`) {
		t.Error("the page has an unescaped script")
	}

	res, body = get(t, p, "/ui/data")
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /ui/data = %d %v", res.StatusCode, res.Header)
	}
	var v View
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Services) != 2 || v.Services[0].Name != "bad" || v.Services[1].URL != "http://hello.default.127.0.0.1.nip.io" || v.Services[1].Ready != "True" {
		t.Errorf("services %+v", v.Services)
	}
	if len(v.Revisions) != 2 {
		t.Fatalf("revisions %+v", v.Revisions)
	}
	hello := v.Revisions[1]
	if hello.Key != "default/hello-00001" || hello.Service != "hello" || hello.Mode != "Serve" || hello.Actual != "1" || hello.Desired != "2" {
		t.Errorf("hello's row %+v", hello)
	}
	if hello.Rate.Last != 0 || hello.Rate.Max != 50 || len(hello.Rate.Lines) != 1 || strings.Count(hello.Rate.Lines[0], ",") != 2 {
		t.Errorf("hello's rate chart %+v", hello.Rate)
	}
	if hello.Pods.Max != 5 || len(hello.Pods.Lines) != 2 || hello.Pods.Lines[1] == "" {
		t.Errorf("hello's pods chart %+v", hello.Pods)
	}
	if bad := v.Revisions[0]; bad.Pods.Lines[1] != "" {
		t.Errorf("no decision yet, yet a desired line: %q", bad.Pods.Lines[1])
	}
	if v.WindowSeconds != 300 {
		t.Errorf("window %d s, want 300", v.WindowSeconds)
	}
}

func TestPageBoundsWhatItShows(t *testing.T) {
	objs := &Objects{}
	for i := range 7 {
		name := fmt.Sprintf("s%d", i)
		objs.Services = append(objs.Services, service(name, "", corev1.ConditionUnknown, ""))
		objs.Revisions = append(objs.Revisions, revision(name, name+"-00001", 1, nil, "Proxy"))
	}
	clock := &fakeClock{now: t0}
	p := testPage(objs, nil, clock, Options{MaxServices: 3, MaxRevisions: 2, Length: 10})
	for range 20 {
		p.Sample()
		clock.now = clock.now.Add(time.Second)
	}
	if p.sampler.Len() != 2 {
		t.Errorf("%d revisions sampled, want 2", p.sampler.Len())
	}
	if n := len(p.sampler.Series("default/s0-00001")); n != 10 {
		t.Errorf("%d points kept, want 10", n)
	}
	v := p.View()
	if len(v.Services) != 3 || len(v.Revisions) != 2 || v.Hidden.Services != 4 || v.Hidden.Revisions != 5 {
		t.Errorf("%d services, %d revisions, hidden %+v", len(v.Services), len(v.Revisions), v.Hidden)
	}
	if v.WindowSeconds != 10 {
		t.Errorf("window %d s, want 10", v.WindowSeconds)
	}
	_, body := get(t, p, "/")
	if !strings.Contains(body, `<span class="n">5</span> more revisions not shown`) {
		t.Error("the page does not say how many revisions it leaves out")
	}
	// A revision gone is dropped with its points.
	objs.Revisions = objs.Revisions[1:]
	p.Sample()
	if p.sampler.Series("default/s0-00001") != nil {
		t.Error("the points of a revision gone are kept")
	}
}

func TestPageAssetsAndErrors(t *testing.T) {
	p := testPage(&Objects{}, nil, &fakeClock{now: t0}, Options{})
	for path, want := range map[string]string{"/ui/app.js": "text/javascript", "/ui/style.css": "text/css", "/ui": "text/html", "/ui/": "text/html"} {
		res, body := get(t, p, path)
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), want) || body == "" {
			t.Errorf("GET %s = %d %q", path, res.StatusCode, res.Header.Get("Content-Type"))
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", path)
		}
	}
	if res, _ := get(t, p, "/ui/nothing"); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /ui/nothing = %d", res.StatusCode)
	}
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/ui/data", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST = %d", rec.Code)
	}
	_, body := get(t, p, "/ui/data")
	if !strings.Contains(body, `"services":[]`) || !strings.Contains(body, `"revisions":[]`) {
		t.Errorf("empty data %s", body)
	}
}

func TestNiceCeil(t *testing.T) {
	for in, want := range map[float64]float64{0: 1, 0.5: 1, 1: 1, 1.2: 2, 2: 2, 3: 5, 7: 10, 10: 10, 11: 20, 30: 50, 51: 100, 999: 1000} {
		if got := niceCeil(in); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", in, got, want)
		}
	}
}
