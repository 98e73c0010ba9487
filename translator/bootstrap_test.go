package translator

import (
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"
)

// TestBootstrapGolden pins the bootstrap a local Envoy starts with (delta
// ADS to 127.0.0.1:18000, default admin).
func TestBootstrapGolden(t *testing.T) {
	b, err := Bootstrap(BootstrapOptions{NodeID: "gateway-0", NodeCluster: "kgate-gateway", XDSAddress: "127.0.0.1", XDSPort: 18000, Delta: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.ValidateAll(); err != nil {
		t.Fatalf("bootstrap invalid: %v", err)
	}
	for _, c := range b.GetStaticResources().GetClusters() {
		assertAnysValid(t, c)
	}
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(js, &v); err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	compareGolden(t, "testdata/out/bootstrap.yaml", out)
}

func TestBootstrapOptions(t *testing.T) {
	valid := BootstrapOptions{NodeID: "n", XDSAddress: "127.0.0.1", XDSPort: 18000}
	tests := []struct {
		name    string
		mutate  func(*BootstrapOptions)
		wantErr string // substring; "" means success
		check   func(t *testing.T, o BootstrapOptions)
	}{
		{name: "state of the world by default", mutate: func(*BootstrapOptions) {}, check: func(t *testing.T, o BootstrapOptions) {
			b, _ := Bootstrap(o)
			if got := b.GetDynamicResources().GetAdsConfig().GetApiType().String(); got != "GRPC" {
				t.Errorf("api_type = %s, want GRPC", got)
			}
			if got := b.GetAdmin().GetAddress().GetSocketAddress(); got.GetAddress() != "127.0.0.1" || got.GetPortValue() != 9901 {
				t.Errorf("admin = %v, want 127.0.0.1:9901", got)
			}
		}},
		{name: "a DNS name resolves with STRICT_DNS", mutate: func(o *BootstrapOptions) { o.XDSAddress = "kgate.kgate-system.svc" }, check: func(t *testing.T, o BootstrapOptions) {
			b, _ := Bootstrap(o)
			if got := b.GetStaticResources().GetClusters()[0].GetType().String(); got != "STRICT_DNS" {
				t.Errorf("xds cluster type = %s, want STRICT_DNS", got)
			}
		}},
		{name: "admin elsewhere", mutate: func(o *BootstrapOptions) { o.AdminAddress, o.AdminPort = "0.0.0.0", 19000 }, check: func(t *testing.T, o BootstrapOptions) {
			b, _ := Bootstrap(o)
			if got := b.GetAdmin().GetAddress().GetSocketAddress(); got.GetAddress() != "0.0.0.0" || got.GetPortValue() != 19000 {
				t.Errorf("admin = %v, want 0.0.0.0:19000", got)
			}
		}},
		{name: "node id required", mutate: func(o *BootstrapOptions) { o.NodeID = "" }, wantErr: "nodeID: Required"},
		{name: "xds address required", mutate: func(o *BootstrapOptions) { o.XDSAddress = "" }, wantErr: "xdsAddress: Required"},
		{name: "xds port required", mutate: func(o *BootstrapOptions) { o.XDSPort = 0 }, wantErr: "xdsPort: Invalid value: 0"},
		{name: "port out of range", mutate: func(o *BootstrapOptions) { o.XDSPort = 70000 }, wantErr: "must be between 1 and 65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid
			tt.mutate(&o)
			b, err := Bootstrap(o)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := b.ValidateAll(); err != nil {
				t.Fatal(err)
			}
			tt.check(t, o)
		})
	}
}
