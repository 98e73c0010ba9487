// Package promtest reads Prometheus metrics in tests as Prometheus does:
// over HTTP, in the text exposition format, parsed by prometheus/common's
// own parser.
package promtest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are scraped metric families by name.
type Families map[string]*dto.MetricFamily

// Scrape GETs url and parses the answer with expfmt's TextParser. It asks
// for the text format, as a Prometheus server falls back to.
func Scrape(t testing.TB, url string) Families {
	t.Helper()
	f, err := ScrapeErr(url)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// ScrapeErr is Scrape returning its error, for polling.
func ScrapeErr(url string) (Families, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", url, err)
	}
	return fams, nil
}

// Serve serves a registry's /metrics for the test's duration and returns
// its URL.
func Serve(t testing.TB, g prometheus.Gatherer) string {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	return srv.URL + "/metrics"
}

// Find returns the series of the family name whose labels include every
// one of labels.
func (f Families) Find(name string, labels map[string]string) []*dto.Metric {
	fam, ok := f[name]
	if !ok {
		return nil
	}
	var out []*dto.Metric
	for _, m := range fam.GetMetric() {
		if matches(m, labels) {
			out = append(out, m)
		}
	}
	return out
}

// Value returns the value of the one series of name matching labels: a
// counter's or gauge's value, a histogram's sample count. ok is false when
// no series or several match.
func (f Families) Value(name string, labels map[string]string) (v float64, ok bool) {
	ms := f.Find(name, labels)
	if len(ms) != 1 {
		return 0, false
	}
	m := ms[0]
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue(), true
	case m.Gauge != nil:
		return m.GetGauge().GetValue(), true
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount()), true
	case m.Untyped != nil:
		return m.GetUntyped().GetValue(), true
	}
	return 0, false
}

// Label returns a series' label value.
func Label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func matches(m *dto.Metric, labels map[string]string) bool {
	for k, v := range labels {
		if Label(m, k) != v {
			return false
		}
	}
	return true
}
