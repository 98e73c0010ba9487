package grafana

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// kgate.json is what gen.go writes (regenerate: go run gen.go > kgate.json).
func TestDashboardIsGenerated(t *testing.T) {
	out, err := exec.Command("go", "run", "gen.go").Output()
	if err != nil {
		t.Fatalf("go run gen.go: %v", err)
	}
	have, err := os.ReadFile("kgate.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bytes.TrimSpace(out), bytes.TrimSpace(have)) {
		t.Error("kgate.json is not what gen.go writes: go run gen.go > kgate.json")
	}
}

// metricName is a metric a query names (kgate's, Knative's or Envoy's).
var metricName = regexp.MustCompile(`\b((?:kgate|autoscaler|activator|envoy)_[a-z_]+)\b`)

// Every query names metrics kgate exports, as docs/observability.md lists
// them (histograms by their _bucket series), or Envoy's own; every panel
// has queries, every query a legend, and panel ids are unique.
func TestDashboardQueriesKnownMetrics(t *testing.T) {
	b, err := os.ReadFile("kgate.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			ID      int
			Type    string
			Title   string
			Targets []struct{ Expr, LegendFormat string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("kgate.json: %v", err)
	}
	doc, err := os.ReadFile("../../docs/observability.md")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[int]bool{}
	queries := 0
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			queries++
			if q.LegendFormat == "" || strings.Count(q.Expr, "(") != strings.Count(q.Expr, ")") {
				t.Errorf("panel %q: query %q (legend %q)", p.Title, q.Expr, q.LegendFormat)
			}
			names := metricName.FindAllString(q.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q names no metric", p.Title, q.Expr)
			}
			for _, n := range names {
				if strings.HasPrefix(n, "envoy_") {
					continue // Envoy's own stats, served on the gateway's stats port
				}
				n = strings.TrimSuffix(n, "_bucket")
				if !bytes.Contains(doc, []byte("`"+n+"`")) {
					t.Errorf("panel %q: %s is not a metric docs/observability.md lists", p.Title, n)
				}
			}
		}
	}
	if queries < 10 {
		t.Errorf("%d queries: the dashboard lost its panels", queries)
	}
}
