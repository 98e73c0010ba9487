//go:build ignore

// gen writes kgate.json, the Grafana dashboard of deploy/grafana: go run
// gen.go > kgate.json (dashboard_test.go checks the file is what gen makes).
package main

import (
	"encoding/json"
	"fmt"
	"os"
)

// panel is one time series panel of the dashboard.
type panel struct {
	title, unit string
	exprs       []string // PromQL, one series each
	legend      []string
}

// rows of panels, golden signals first, then the autoscaler and the control
// plane. Every metric named here is one docs/observability.md lists.
var rows = []struct {
	title  string
	panels []panel
}{
	{"Traffic (Envoy gateways and the activator)", []panel{
		{"Gateway requests per second, by response class", "reqps",
			[]string{`sum by (envoy_response_code_class) (rate(envoy_cluster_upstream_rq_xx{envoy_cluster_name=~"$namespace/.*"}[1m]))`},
			[]string{"{{envoy_response_code_class}}xx"}},
		{"Activator requests per second, by revision and class", "reqps",
			[]string{`sum by (revision_name, response_code_class) (rate(activator_request_count{namespace_name=~"$namespace"}[1m]))`},
			[]string{"{{revision_name}} {{response_code_class}}"}},
		{"Activator latency p50 / p99", "ms",
			[]string{
				`histogram_quantile(0.5, sum by (le, revision_name) (rate(activator_request_latencies_bucket{namespace_name=~"$namespace"}[1m])))`,
				`histogram_quantile(0.99, sum by (le, revision_name) (rate(activator_request_latencies_bucket{namespace_name=~"$namespace"}[1m])))`,
			},
			[]string{"p50 {{revision_name}}", "p99 {{revision_name}}"}},
		{"Requests held by the activator", "short",
			[]string{`sum by (revision_name) (kgate_activator_requests_held{namespace_name=~"$namespace"})`},
			[]string{"{{revision_name}}"}},
	}},
	{"Autoscaler", []panel{
		{"Desired and actual pods", "short",
			[]string{
				`sum by (revision_name) (autoscaler_desired_pods{namespace_name=~"$namespace"})`,
				`sum by (revision_name) (autoscaler_actual_pods{namespace_name=~"$namespace"})`,
			},
			[]string{"desired {{revision_name}}", "actual {{revision_name}}"}},
		{"Observed concurrency (stable / panic) and target per pod", "short",
			[]string{
				`sum by (revision_name) (autoscaler_stable_request_concurrency{namespace_name=~"$namespace"})`,
				`sum by (revision_name) (autoscaler_panic_request_concurrency{namespace_name=~"$namespace"})`,
				`sum by (revision_name) (autoscaler_target_concurrency_per_pod{namespace_name=~"$namespace"})`,
			},
			[]string{"stable {{revision_name}}", "panic {{revision_name}}", "target {{revision_name}}"}},
		{"Panic mode", "short",
			[]string{`max by (revision_name) (autoscaler_panic_mode{namespace_name=~"$namespace"})`},
			[]string{"{{revision_name}}"}},
		{"Routing mode (1 = through the activator)", "short",
			[]string{`max by (revision_name) (kgate_revision_routing_mode{namespace_name=~"$namespace", mode="Proxy"})`},
			[]string{"{{revision_name}}"}},
	}},
	{"Control plane (xDS)", []panel{
		{"Connected clients by role", "short",
			[]string{`sum by (role) (kgate_xds_connected_clients)`},
			[]string{"{{role}}"}},
		{"Push latency p99 by type", "s",
			[]string{`histogram_quantile(0.99, sum by (le, type_url) (rate(kgate_xds_push_latency_seconds_bucket[5m])))`},
			[]string{"{{type_url}}"}},
		{"Pushes and NACKs per second", "ops",
			[]string{`sum by (type_url) (rate(kgate_xds_pushes_total[1m]))`, `sum by (type_url) (rate(kgate_xds_nacks_total[1m]))`},
			[]string{"push {{type_url}}", "NACK {{type_url}}"}},
		{"Refused control-plane requests", "ops",
			[]string{`sum by (reason) (rate(kgate_control_plane_refusals_total[5m]))`},
			[]string{"{{reason}}"}},
	}},
}

func main() {
	var panels []any
	id, y := 1, 0
	for _, r := range rows {
		panels = append(panels, map[string]any{"id": id, "type": "row", "title": r.title, "collapsed": false,
			"gridPos": map[string]int{"h": 1, "w": 24, "x": 0, "y": y}})
		id++
		y++
		for i, p := range r.panels {
			var targets []any
			for j, e := range p.exprs {
				targets = append(targets, map[string]any{"refId": string(rune('A' + j)), "expr": e, "legendFormat": p.legend[j],
					"datasource": map[string]string{"type": "prometheus", "uid": "${datasource}"}})
			}
			panels = append(panels, map[string]any{
				"id": id, "type": "timeseries", "title": p.title,
				"datasource":  map[string]string{"type": "prometheus", "uid": "${datasource}"},
				"gridPos":     map[string]int{"h": 8, "w": 12, "x": 12 * (i % 2), "y": y + 8*(i/2)},
				"fieldConfig": map[string]any{"defaults": map[string]any{"unit": p.unit}, "overrides": []any{}},
				"targets":     targets,
			})
			id++
		}
		y += 8 * ((len(r.panels) + 1) / 2)
	}
	dash := map[string]any{
		"title": "kgate", "uid": "kgate-overview", "schemaVersion": 39, "version": 1, "editable": true,
		"tags": []string{"kgate", "knative"}, "time": map[string]string{"from": "now-1h", "to": "now"}, "refresh": "30s",
		"templating": map[string]any{"list": []any{
			map[string]any{"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
			map[string]any{"name": "namespace", "type": "query", "label": "Namespace", "includeAll": true, "multi": true,
				"allValue": ".*", "datasource": map[string]string{"type": "prometheus", "uid": "${datasource}"},
				"query": "label_values(autoscaler_desired_pods, namespace_name)", "refresh": 2},
		}},
		"panels": panels,
	}
	b, err := json.MarshalIndent(dash, "", "  ")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(string(b))
}
