package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/dashboard"
	"github.com/kgate/kgate/translator/model"
)

type noLoad struct{}

func (noLoad) Collect(time.Time) map[string]model.Stat { return nil }

// The live page is served at / and under /ui/ beside the admin API, which
// keeps every other path.
func TestLivePageBesideTheAdminAPI(t *testing.T) {
	snapshot := func() objects {
		return objects{Services: []*servingv1.Service{{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hello"}}}}
	}
	h := withLivePage(adminMux(adminHandler(snapshot), &readiness{}, prometheus.NewRegistry()), newLivePage(snapshot, dashboard.Tap(noLoad{})))
	for path, want := range map[string]string{
		"/":                      `data-key="default/hello"`,
		"/ui/":                   `data-key="default/hello"`,
		"/ui/data":               `"key":"default/hello"`,
		adminPrefix + "services": `"kind": "List"`,
		"/nothing":               `no such path`,
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		body, _ := io.ReadAll(rec.Result().Body)
		if !strings.Contains(string(body), want) {
			t.Errorf("GET %s = %d %s, want %s", path, rec.Code, body, want)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, metricsPath, nil))
	if rec.Code != http.StatusOK || strings.Contains(rec.Header().Get("Content-Type"), "html") {
		t.Errorf("GET /metrics = %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
}
