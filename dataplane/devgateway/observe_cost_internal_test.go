package devgateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kgate/kgate/translator"
)

// BenchmarkObserveCost is what the access log (the default text format,
// formatted and written to io.Discard) and the metrics add to one request,
// outside any request: the record, the line and the two observations.
func BenchmarkObserveCost(b *testing.B) {
	al, err := compileLogFormat(nil)
	if err != nil {
		b.Fatal(err)
	}
	al.text, _ = parseLogFormat(translator.DefaultAccessLogFormat)
	m, _ := newRequestMetrics(prometheus.NewRegistry())
	p := &proxy{logs: newLogSink(io.Discard), metrics: m}
	cm := &connManager{accessLogs: []*accessLog{al}}
	r := httptest.NewRequest(http.MethodGet, "http://hello.default.example.com/path?q=1", nil)
	r.Header.Set("User-Agent", "hey/0.0.1")
	up := r.Header.Clone()
	up.Set("Knative-Serving-Revision", "hello-00001")
	up.Set("X-Forwarded-For", "10.0.0.1")
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		rec := p.startRecord(cm, w, r)
		rec.cluster, rec.host, rec.upHeader = "default/hello-00001", "10.0.0.7:8080", up
		rec.status, rec.wroteHeader, rec.bytesSent = 200, true, 13
		rec.start = rec.start.Add(-time.Millisecond)
		p.endRecord(cm, r, rec)
	}
}
