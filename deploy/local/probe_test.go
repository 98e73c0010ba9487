//go:build unix

package local

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestNewProbeSettings(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	p := newProbe(nil, log)
	if p.http != nil || p.period != time.Second || p.timeout != time.Second || p.initialDelay != 0 ||
		p.successThreshold != 1 || p.failureThreshold != 3 {
		t.Errorf("default probe: %+v", p)
	}
	p = newProbe(&corev1.Probe{InitialDelaySeconds: 3600, PeriodSeconds: 60, TimeoutSeconds: 30, SuccessThreshold: 2, FailureThreshold: 5}, log)
	if p.initialDelay != time.Minute || p.period != 10*time.Second || p.timeout != 10*time.Second ||
		p.successThreshold != 2 || p.failureThreshold != 5 {
		t.Errorf("a cluster's probe settings are not bounded: %+v", p)
	}
}

// TestProbeCheck probes a server on its port as a replica's probe does.
func TestProbeCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "app.example.com" || r.Header.Get("X-Probe") != "yes" || r.Header.Get("User-Agent") != "kube-probe/kgate" {
			http.Error(w, "wrong request", http.StatusBadRequest)
			return
		}
		switch r.URL.Path {
		case "/ok":
		case "/moved":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		default:
			http.Error(w, "no", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	log := slog.New(slog.DiscardHandler)
	httpGet := func(path string) probe {
		return newProbe(&corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: path, HTTPHeaders: []corev1.HTTPHeader{{Name: "Host", Value: "app.example.com"}, {Name: "X-Probe", Value: "yes"}},
		}}}, log)
	}
	for path, wantOK := range map[string]bool{"/ok": true, "ok": true, "/moved": true, "/fail": false} {
		if err := httpGet(path).check(t.Context(), port); (err == nil) != wantOK {
			t.Errorf("GET %s: %v, want success %v", path, err, wantOK)
		}
	}
	tcp := newProbe(&corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{}}}, log)
	if err := tcp.check(t.Context(), port); err != nil {
		t.Errorf("TCP to a listening port: %v", err)
	}
	srv.Close()
	if err := tcp.check(t.Context(), port); err == nil {
		t.Error("TCP to a closed port succeeded")
	}
}
