package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/localstate"
)

// run executes the kgate command line in-process.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestValidate(t *testing.T) {
	seeds := filepath.Join("..", "..", "api", "manifest", "testdata", "seeds")
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte(`apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: bad
spec:
  template:
    metadata:
      name: other-00001
      annotations:
        autoscaling.knative.dev/maxScale: "2"
        autoscaling.knative.dev/min-scale: "3"
    spec:
      containers:
      - image: example.com/app
  traffic:
  - latestRevision: true
    percent: 60
`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		files   []string
		wantErr string   // the one-line error; "" for success
		want    []string // lines the output must contain
	}{
		{
			name:  "the examples are valid",
			files: []string{"../../examples/hello.yaml", "../../examples/helloworld-go.yaml"},
			want:  []string{"2 file(s) valid"},
		},
		{
			name:  "a traffic target naming a revision yet to exist is not an admission error",
			files: []string{filepath.Join(seeds, "004-hello-knative-v2.yaml")},
			want:  []string{"1 file(s) valid"},
		},
		{
			name:    "seed 002 as its page garbled it: file and line",
			files:   []string{filepath.Join(seeds, "002-helloworld-go-garbled.yaml")},
			wantErr: "1 problem(s) in 1 file(s)",
			want:    []string{"002-helloworld-go-garbled.yaml:4: invalid YAML"},
		},
		{
			name:    "seed 000 case 3 as its page garbled it: the non-breaking spaces are named",
			files:   []string{filepath.Join(seeds, "000-case3-hello-target-utilization-garbled.yaml")},
			wantErr: "1 problem(s) in 1 file(s)",
			want:    []string{"non-breaking spaces (U+00A0)"},
		},
		{
			name:    "every rule broken is reported with its field",
			files:   []string{bad},
			wantErr: "4 problem(s) in 1 file(s)",
			want: []string{
				`Service default/bad: spec.template.metadata.name: invalid value: "other-00001" must have prefix "bad-"`,
				`spec.template.metadata.annotations[autoscaling.knative.dev/maxScale]`,
				`spec.traffic: Traffic targets sum to 60, want 100`,
			},
		},
	}
	huge := filepath.Join(t.TempDir(), "huge.yaml")
	if err := os.WriteFile(huge, []byte(`apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: huge
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/min-scale: "1000000000"
    spec:
      containers:
        - image: ghcr.io/knative/helloworld-go:latest
`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests = append(tests, struct {
		name    string
		files   []string
		wantErr string
		want    []string
	}{
		name: "a min-scale above kgate local's max-scale-limit", files: []string{huge},
		wantErr: "1 problem(s) in 1 file(s)",
		want:    []string{"huge.yaml:1: Service default/huge: spec.template.metadata.annotations[autoscaling.knative.dev/min-scale]: expected 0 <= 1000000000 <= "},
	})
	typo := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(typo, []byte(`apiVersion: v1
kind: ConfigMap
metadata:
  name: config-network
  namespace: knative-serving
data:
  _example: documentation
  domain-tempate: "{{.Name}}.{{.Domain}}"
  ingress-class: kourier.ingress.networking.knative.dev
`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests = append(tests, struct {
		name    string
		files   []string
		wantErr string
		want    []string
	}{
		name: "a ConfigMap key kgate ignores is a warning, not a problem", files: []string{typo},
		want: []string{
			"config.yaml:1: ConfigMap knative-serving/config-network: data[domain-tempate]: warning: unknown ConfigMap key; ignored (did you mean domain-template?)",
			"config.yaml:1: ConfigMap knative-serving/config-network: data[ingress-class]: warning: ConfigMap key not supported by kgate; ignored (kgate is the ingress",
			"1 file(s) valid",
		},
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(t, append([]string{"validate"}, tt.files...)...)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v, want none; output:\n%s", err, out)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Fatalf("error %v, want %q; output:\n%s", err, tt.wantErr, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestValidateUnreadableFile(t *testing.T) {
	_, err := run(t, "validate", filepath.Join(t.TempDir(), "missing.yaml"))
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("error %v, want one naming the file", err)
	}
}

func TestBootstrap(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		decode  func([]byte) ([]byte, error)
		apiType corev3.ApiConfigSource_ApiType
	}{
		{"yaml, delta by default", nil, yaml.YAMLToJSON, corev3.ApiConfigSource_DELTA_GRPC},
		{"json, state of the world", []string{"-o", "json", "--sotw"}, func(b []byte) ([]byte, error) { return b, nil }, corev3.ApiConfigSource_GRPC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(t, append([]string{"bootstrap", "--node-id", "gw-1", "--xds-address", "10.0.0.7:18000"}, tt.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			js, err := tt.decode([]byte(out))
			if err != nil {
				t.Fatalf("decoding the output: %v\n%s", err, out)
			}
			var b bootstrapv3.Bootstrap
			if err := protojson.Unmarshal(js, &b); err != nil {
				t.Fatalf("the output is not an Envoy bootstrap: %v\n%s", err, out)
			}
			if err := b.ValidateAll(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			ads := b.GetDynamicResources().GetAdsConfig()
			if ads.GetApiType() != tt.apiType {
				t.Errorf("ADS api_type %v, want %v", ads.GetApiType(), tt.apiType)
			}
			if b.GetDynamicResources().GetLdsConfig().GetAds() == nil || b.GetDynamicResources().GetCdsConfig().GetAds() == nil {
				t.Error("LDS and CDS must come over ADS")
			}
			if b.GetNode().GetId() != "gw-1" {
				t.Errorf("node id %q, want gw-1", b.GetNode().GetId())
			}
			addr := b.GetStaticResources().GetClusters()[0].GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
			if addr.GetAddress() != "10.0.0.7" || addr.GetPortValue() != 18000 {
				t.Errorf("xDS cluster reaches %s:%d, want 10.0.0.7:18000", addr.GetAddress(), addr.GetPortValue())
			}
		})
	}
}

func TestBootstrapBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--xds-address", "no-port"},
		{"--xds-address", "127.0.0.1:0"},
		{"--admin-address", "127.0.0.1:70000"},
		{"-o", "toml"},
		{"--node-id", ""},
	} {
		if _, err := run(t, append([]string{"bootstrap"}, args...)...); err == nil {
			t.Errorf("bootstrap %v: no error", args)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("bootstrap %v: error spans lines: %q", args, err)
		}
	}
}

// A port in use stops kgate local at once with the flag to change.
func TestLocalPortInUse(t *testing.T) {
	busy := testrun.Listen(t)
	_, err := run(t, "local", "-f", filepath.Join("..", "..", "examples"), "--http-address", busy.Addr().String())
	if err == nil || !strings.Contains(err.Error(), "--http-address "+busy.Addr().String()) || strings.Contains(err.Error(), "\n") {
		t.Errorf("error %v, want one line naming --http-address", err)
	}
}

// A state folder another kgate local uses stops this one at once, with one
// line naming the folder.
func TestLocalStateInUse(t *testing.T) {
	dir := t.TempDir()
	st, err := localstate.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	free := func() string {
		l := testrun.Listen(t)
		l.Close()
		return l.Addr().String()
	}
	_, err = run(t, "local", "-f", filepath.Join("..", "..", "examples"), "--state-dir", dir,
		"--http-address", free(), "--internal-address", free(), "--https-address", free(), "--internal-https-address", free())
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "another kgate local is using it") || strings.Contains(err.Error(), "\n") {
		t.Errorf("error %v, want one line naming the state folder in use", err)
	}
}
