package main

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/api/serving/v1beta1"
)

// The admin API serves the objects of a running kgate, Knative-shaped, for
// `kgate get`. Its paths follow the Kubernetes API's:
//
//	GET /apis/serving.knative.dev/v1/{resource}                        every namespace
//	GET /apis/serving.knative.dev/v1/namespaces/{ns}/{resource}        a List
//	GET /apis/serving.knative.dev/v1/namespaces/{ns}/{resource}/{name} one object
//
// with resource services, configurations, revisions or routes.
const adminPrefix = "/apis/" + servingv1.GroupName + "/v1/"

// defaultAdminAddress is loopback: the admin API has no authentication.
const defaultAdminAddress = "127.0.0.1:9090"

// objects is what the admin API serves: the objects with their status.
type objects struct {
	Services       []*servingv1.Service
	Configurations []*servingv1.Configuration
	Revisions      []*servingv1.Revision
	Routes         []*servingv1.Route
	DomainMappings []*v1beta1.DomainMapping
}

// named is what the admin API needs of an object.
type named interface {
	GetNamespace() string
	GetName() string
}

// list is a Kubernetes-style List.
type list struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Items      []any  `json:"items"`
}

// adminHandler serves snapshot's objects.
func adminHandler(snapshot func() objects) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			adminError(w, http.StatusMethodNotAllowed, "only GET is served")
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path, adminPrefix)
		if !ok {
			adminError(w, http.StatusNotFound, "no such path; try "+adminPrefix+"services")
			return
		}
		parts := strings.Split(strings.Trim(rest, "/"), "/")
		var ns, resource, name string
		switch {
		case len(parts) == 1:
			resource = parts[0]
		case len(parts) >= 3 && len(parts) <= 4 && parts[0] == "namespaces":
			ns, resource = parts[1], parts[2]
			if len(parts) == 4 {
				name = parts[3]
			}
		default:
			adminError(w, http.StatusNotFound, "no such path: "+r.URL.Path)
			return
		}
		items, ok := pick(snapshot(), resource)
		if !ok {
			adminError(w, http.StatusNotFound, "unknown resource "+resource+": one of services, configurations, revisions, routes, domainmappings")
			return
		}
		var out []any
		for _, it := range items {
			if (ns == "" || it.GetNamespace() == ns) && (name == "" || it.GetName() == name) {
				out = append(out, it)
			}
		}
		if name != "" {
			if len(out) == 0 {
				adminError(w, http.StatusNotFound, resource+" "+ns+"/"+name+" not found")
				return
			}
			writeJSON(w, http.StatusOK, out[0])
			return
		}
		if out == nil {
			out = []any{}
		}
		writeJSON(w, http.StatusOK, list{APIVersion: "v1", Kind: "List", Items: out})
	})
}

// pick returns the objects of one resource.
func pick(o objects, resource string) ([]named, bool) {
	switch resource {
	case "services":
		return asNamed(o.Services), true
	case "configurations":
		return asNamed(o.Configurations), true
	case "revisions":
		return asNamed(o.Revisions), true
	case "routes":
		return asNamed(o.Routes), true
	case "domainmappings":
		return asNamed(o.DomainMappings), true
	}
	return nil, false
}

func asNamed[T named](xs []T) []named {
	out := make([]named, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

// adminError answers with a Kubernetes-style Status.
func adminError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": msg, "code": code})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away: nothing to do
}

// metricsPath serves the process's Prometheus metrics.
const metricsPath = "/metrics"

// adminMux serves the objects, the readiness at /readyz and, at
// metricsPath, the metrics of reg, the process's own registry (never the
// global one).
func adminMux(objects, ready http.Handler, reg prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/readyz", ready)
	mux.Handle(metricsPath, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", objects)
	return mux
}
