package translator

import (
	"encoding/json"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	downstreamconnsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/downstream_connections/v3"
	fixedheapv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/fixed_heap/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"
)

// TestBootstrapGolden pins the bootstraps Envoy starts with: a local Envoy
// (delta ADS to 127.0.0.1:18000 in plaintext, default admin), and a
// gateway in a cluster with mutual TLS, its certificates inline or over
// file-based SDS, and the stats listener on 9000.
func TestBootstrapGolden(t *testing.T) {
	local := BootstrapOptions{NodeID: "gateway-0", NodeCluster: "kgate-gateway", XDSAddress: "127.0.0.1", XDSPort: 18000, Delta: true}
	cluster := BootstrapOptions{NodeID: "gateway-0", NodeCluster: "kgate-gateway", XDSAddress: "kgate-controller.kgate-system.svc.cluster.local", XDSPort: 18000, Delta: true,
		StatsPort: DefaultStatsPort}
	inline, sds := cluster, cluster
	inline.XDSTLS = &BootstrapTLS{CAFile: "/etc/kgate/xds-tls/ca.crt", CertFile: "/etc/kgate/xds-tls/tls.crt", KeyFile: "/etc/kgate/xds-tls/tls.key"}
	sds.XDSTLS = &BootstrapTLS{CAFile: "/etc/kgate/xds-tls/ca.crt", CertFile: "/etc/kgate/xds-tls/tls.crt", KeyFile: "/etc/kgate/xds-tls/tls.key",
		SDSDirectory: "/etc/envoy", WatchedDirectory: "/etc/kgate/xds-tls"}
	for _, tt := range []struct {
		golden string
		opts   BootstrapOptions
	}{
		{"bootstrap.yaml", local},
		{"bootstrap-tls-inline.yaml", inline},
		{"bootstrap-tls-sds.yaml", sds},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			b, err := Bootstrap(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.ValidateAll(); err != nil {
				t.Fatalf("bootstrap invalid: %v", err)
			}
			assertAnysValid(t, b)
			compareGolden(t, filepath.Join("testdata/out", tt.golden), toYAML(t, b))
		})
	}
}

// TestXDSTLSSecretFilesGolden pins the SDS files the TLS bootstrap reads
// its certificates through.
func TestXDSTLSSecretFilesGolden(t *testing.T) {
	files, err := XDSTLSSecretFiles(BootstrapTLS{CAFile: "/etc/kgate/xds-tls/ca.crt", CertFile: "/etc/kgate/xds-tls/tls.crt",
		KeyFile: "/etc/kgate/xds-tls/tls.key", SDSDirectory: "/etc/envoy", WatchedDirectory: "/etc/kgate/xds-tls"})
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(files)); !slices.Equal(got, []string{XDSTLSCertificateFile, XDSTLSValidationFile}) {
		t.Fatalf("files %v", got)
	}
	for name, f := range files {
		assertAnysValid(t, f)
		compareGolden(t, filepath.Join("testdata/out", name), toYAML(t, f))
	}
}

// toYAML prints m as YAML in Envoy's own field names.
func toYAML(t *testing.T, m proto.Message) []byte {
	t.Helper()
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
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
	return out
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
		{name: "edge overload defaults", mutate: func(*BootstrapOptions) {}, check: func(t *testing.T, o BootstrapOptions) {
			b, _ := Bootstrap(o)
			if heap, conns := overloadLimits(t, b); heap != DefaultMaxHeapBytes || conns != DefaultMaxDownstreamConnections {
				t.Errorf("overload limits %d bytes, %d connections; want the defaults", heap, conns)
			}
			if !b.GetAdmin().GetIgnoreGlobalConnLimit() {
				t.Error("the admin interface must stay reachable at the connection limit")
			}
			if b.GetStaticResources().GetClusters()[0].GetTransportSocket() != nil {
				t.Error("no XDSTLS: the xDS cluster must be plaintext")
			}
		}},
		{name: "overload limits set", mutate: func(o *BootstrapOptions) { o.MaxHeapBytes, o.MaxDownstreamConnections = 2<<30, 1000 }, check: func(t *testing.T, o BootstrapOptions) {
			b, _ := Bootstrap(o)
			if heap, conns := overloadLimits(t, b); heap != 2<<30 || conns != 1000 {
				t.Errorf("overload limits %d bytes, %d connections; want 2 GiB, 1000", heap, conns)
			}
		}},
		{name: "negative connection limit", mutate: func(o *BootstrapOptions) { o.MaxDownstreamConnections = -1 }, wantErr: "maxDownstreamConnections: Invalid value: -1"},
		{name: "tls needs every file", mutate: func(o *BootstrapOptions) { o.XDSTLS = &BootstrapTLS{CAFile: "ca.crt"} }, wantErr: "xdsTLS.certFile: Required"},
		{name: "a watched directory needs SDS", mutate: func(o *BootstrapOptions) {
			o.XDSTLS = &BootstrapTLS{CAFile: "ca.crt", CertFile: "tls.crt", KeyFile: "tls.key", WatchedDirectory: "/certs"}
		}, wantErr: "xdsTLS.watchedDirectory: Invalid value"},
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

// overloadLimits returns the fixed heap and the connection limit of b's
// overload manager.
func overloadLimits(t *testing.T, b *bootstrapv3.Bootstrap) (heap uint64, conns int64) {
	t.Helper()
	for _, m := range b.GetOverloadManager().GetResourceMonitors() {
		inner, err := m.GetTypedConfig().UnmarshalNew()
		if err != nil {
			t.Fatal(err)
		}
		switch c := inner.(type) {
		case *fixedheapv3.FixedHeapConfig:
			heap = c.GetMaxHeapSizeBytes()
		case *downstreamconnsv3.DownstreamConnectionsConfig:
			conns = c.GetMaxActiveDownstreamConnections()
		}
	}
	return heap, conns
}

func TestXDSTLSSecretFilesNeedSDS(t *testing.T) {
	_, err := XDSTLSSecretFiles(BootstrapTLS{CAFile: "ca.crt", CertFile: "tls.crt", KeyFile: "tls.key"})
	if err == nil || !strings.Contains(err.Error(), "xdsTLS.sdsDirectory: Required") {
		t.Fatalf("err = %v, want sdsDirectory required", err)
	}
}

// TestBootstrapStatsListener: the stats listener routes only the stats and
// readiness paths, to the admin interface on loopback even when the admin
// interface binds every address; none without a port.
func TestBootstrapStatsListener(t *testing.T) {
	base := BootstrapOptions{NodeID: "n", XDSAddress: "127.0.0.1", XDSPort: 18000}
	b, err := Bootstrap(base)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(b.GetStaticResources().GetListeners()); n != 0 {
		t.Errorf("no stats port: %d static listeners", n)
	}
	opts := base
	opts.StatsPort, opts.AdminAddress, opts.AdminPort = 9100, "0.0.0.0", 9902
	if b, err = Bootstrap(opts); err != nil {
		t.Fatal(err)
	}
	ls := b.GetStaticResources().GetListeners()
	if len(ls) != 1 || ls[0].GetName() != StatsListener || ls[0].GetAddress().GetSocketAddress().GetPortValue() != 9100 ||
		ls[0].GetAddress().GetSocketAddress().GetAddress() != DefaultAddress {
		t.Fatalf("static listeners %v", ls)
	}
	var hcm hcmv3.HttpConnectionManager
	if err := ls[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, r := range hcm.GetRouteConfig().GetVirtualHosts()[0].GetRoutes() {
		paths = append(paths, r.GetMatch().GetPath())
		if c := r.GetRoute().GetCluster(); c != AdminCluster {
			t.Errorf("%s goes to %q", r.GetMatch().GetPath(), c)
		}
	}
	if !slices.Equal(paths, []string{StatsPath, ReadyPath}) {
		t.Errorf("paths %v", paths)
	}
	var admin *clusterv3.Cluster
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() == AdminCluster {
			admin = c
		}
	}
	sa := admin.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
	if sa.GetAddress() != "127.0.0.1" || sa.GetPortValue() != 9902 {
		t.Errorf("admin cluster reaches %v", sa)
	}
	opts.StatsPort = 70000
	if _, err := Bootstrap(opts); err == nil {
		t.Error("stats port 70000 accepted")
	}
}
