package main

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kgate/kgate/api/manifest"
	"github.com/kgate/kgate/watcher/knative"
)

// examplesSnapshot reconciles the examples as kgate serves them, with a
// revision's replicas and routing mode filled in as kgate local does.
func examplesSnapshot(t *testing.T) objects {
	t.Helper()
	var objs []manifest.Object
	for _, name := range []string{"hello.yaml", "helloworld-go.yaml"} {
		path := filepath.Join("..", "..", "examples", name)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		decoded, errs := manifest.Decode(path, data)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		objs = append(objs, decoded...)
	}
	created := time.Now().Add(-90 * time.Second)
	res := knative.NewReconciler(func() time.Time { return created }).Reconcile(knative.Input{Objects: objs})
	one, two := int32(1), int32(2)
	rev := res.Revisions[0]
	rev.Status.ActualReplicas, rev.Status.DesiredReplicas = &one, &two
	rev.Status.Annotations = map[string]string{knative.AnnotationRoutingMode: "Proxy"}
	return objects{Services: res.Services, Configurations: res.Configurations, Revisions: res.Revisions, Routes: res.Routes}
}

func TestGet(t *testing.T) {
	snap := examplesSnapshot(t)
	srv := httptest.NewServer(adminHandler(func() objects { return snap }))
	t.Cleanup(srv.Close)
	admin := strings.TrimPrefix(srv.URL, "http://")

	tests := []struct {
		args    []string
		want    []string // lines, whitespace folded
		wantErr string
	}{
		{args: []string{"ksvc"}, want: []string{
			"NAME URL LATESTCREATED LATESTREADY READY REASON",
			"hello http://hello.default.example.com hello-00001 hello-00001 True",
			"helloworld-go http://helloworld-go.default.example.com helloworld-go-00001 helloworld-go-00001 True",
		}},
		{args: []string{"revisions"}, want: []string{
			"NAME CONFIG NAME GENERATION AGE READY REASON ACTUAL DESIRED MODE",
			"hello-00001 hello 1 1m True 1 2 Proxy",
		}},
		{args: []string{"rt", "hello"}, want: []string{"NAME URL READY REASON", "hello http://hello.default.example.com True"}},
		{args: []string{"cfg", "-A"}, want: []string{"NAME LATESTCREATED LATESTREADY READY REASON", "hello hello-00001 hello-00001 True"}},
		{args: []string{"ksvc", "-n", "other"}, want: []string{"No services found."}},
		{args: []string{"ksvc", "nope"}, wantErr: "services default/nope not found"},
		{args: []string{"pods"}, wantErr: `unknown resource "pods": use ksvc, configurations, revisions, routes or domainmappings`},
		{args: []string{"ksvc", "-o", "xml"}, wantErr: `--output "xml": must be table, json or yaml`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, err := run(t, append(append([]string{"get"}, tt.args...), "--admin-address", admin)...)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSpace(out), "\n")
			for i := range got {
				got[i] = strings.Join(strings.Fields(got[i]), " ")
			}
			for _, w := range tt.want {
				found := false
				for _, g := range got {
					found = found || g == w
				}
				if !found {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// JSON and YAML are the Knative-shaped objects.
func TestGetStructured(t *testing.T) {
	snap := examplesSnapshot(t)
	srv := httptest.NewServer(adminHandler(func() objects { return snap }))
	t.Cleanup(srv.Close)
	admin := strings.TrimPrefix(srv.URL, "http://")

	out, err := run(t, "get", "ksvc", "hello", "-o", "json", "--admin-address", admin)
	if err != nil {
		t.Fatal(err)
	}
	var svc struct {
		Kind   string
		Status struct {
			URL                       string
			LatestCreatedRevisionName string
			Address                   struct{ URL string }
			Traffic                   []struct {
				RevisionName string
				Percent      int
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &svc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if svc.Kind != "Service" || svc.Status.URL != "http://hello.default.example.com" || svc.Status.LatestCreatedRevisionName != "hello-00001" ||
		svc.Status.Address.URL == "" || len(svc.Status.Traffic) != 1 || svc.Status.Traffic[0].Percent != 100 {
		t.Errorf("service JSON lacks Knative's status fields:\n%s", out)
	}

	out, err = run(t, "get", "revisions", "-o", "yaml", "--admin-address", admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"kind: List", "actualReplicas: 1", "desiredReplicas: 2", "kgate.dev/routing-mode: Proxy"} {
		if !strings.Contains(out, w) {
			t.Errorf("YAML lacks %q:\n%s", w, out)
		}
	}
}

func TestGetWithoutKgate(t *testing.T) {
	_, err := run(t, "get", "ksvc", "--admin-address", "127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "is `kgate local` running?") {
		t.Errorf("error %v, want one saying no kgate answers", err)
	}
}
