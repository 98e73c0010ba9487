package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReadinessNamesEachPartNotReady(t *testing.T) {
	for _, tc := range []struct {
		name   string
		checks map[string]error
		code   int
		body   []string
	}{
		{"nothing registered", nil, http.StatusOK, []string{"ok"}},
		{"every part ready", map[string]error{"activator": nil, "dev gateway": nil}, http.StatusOK, []string{"ok"}},
		{"one part not", map[string]error{"activator": nil, "dev gateway": errors.New("ResourceExhausted")},
			http.StatusServiceUnavailable, []string{"dev gateway: ResourceExhausted"}},
		{"two parts not", map[string]error{"activator": errors.New("no revisions yet"), "dev gateway": errors.New("too large")},
			http.StatusServiceUnavailable, []string{"activator: no revisions yet", "dev gateway: too large"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &readiness{}
			for part, err := range tc.checks {
				r.set(part, func() error { return err })
			}
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != tc.code {
				t.Errorf("code %d, want %d", rec.Code, tc.code)
			}
			for _, want := range tc.body {
				if !strings.Contains(rec.Body.String(), want) {
					t.Errorf("body %q lacks %q", rec.Body.String(), want)
				}
			}
		})
	}
}
