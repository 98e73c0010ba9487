package main

import (
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	downstreamconnsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/downstream_connections/v3"
	fixedheapv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/fixed_heap/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"
)

// bootstrapOf runs `kgate bootstrap` with args and decodes its YAML.
func bootstrapOf(t *testing.T, args ...string) *bootstrapv3.Bootstrap {
	t.Helper()
	var b bootstrapv3.Bootstrap
	decodeOutput(t, &b, append([]string{"bootstrap"}, args...)...)
	if err := b.ValidateAll(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return &b
}

func decodeOutput(t *testing.T, m proto.Message, args ...string) {
	t.Helper()
	out, err := run(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON([]byte(out))
	if err != nil {
		t.Fatalf("decoding the output: %v\n%s", err, out)
	}
	if err := protojson.Unmarshal(js, m); err != nil {
		t.Fatalf("the output is not a %s: %v\n%s", proto.MessageName(m), err, out)
	}
}

// xdsTLS returns the xDS cluster's TLS context, nil when it has none.
func xdsTLS(t *testing.T, b *bootstrapv3.Bootstrap) *tlsv3.UpstreamTlsContext {
	t.Helper()
	ts := b.GetStaticResources().GetClusters()[0].GetTransportSocket()
	if ts == nil {
		return nil
	}
	var tls tlsv3.UpstreamTlsContext
	if err := ts.GetTypedConfig().UnmarshalTo(&tls); err != nil {
		t.Fatal(err)
	}
	return &tls
}

// The TLS flags: certificates from --xds-tls-dir through SDS files in
// --xds-tls-sds-dir by default, inline with an empty --xds-tls-sds-dir,
// none with --plaintext.
func TestBootstrapXDSTLS(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, tls *tlsv3.UpstreamTlsContext)
	}{
		{"mutual TLS over SDS files by default", nil, func(t *testing.T, tls *tlsv3.UpstreamTlsContext) {
			common := tls.GetCommonTlsContext()
			certs := common.GetTlsCertificateSdsSecretConfigs()
			if len(certs) != 1 || certs[0].GetSdsConfig().GetPathConfigSource().GetPath() != "/etc/envoy/xds-tls-certificate.yaml" {
				t.Errorf("client certificate from %v, want the SDS file /etc/envoy/xds-tls-certificate.yaml", certs)
			}
			combined := common.GetCombinedValidationContext()
			if got := combined.GetValidationContextSdsSecretConfig().GetSdsConfig().GetPathConfigSource().GetPath(); got != "/etc/envoy/xds-tls-validation.yaml" {
				t.Errorf("CA from %q, want the SDS file /etc/envoy/xds-tls-validation.yaml", got)
			}
			if sans := combined.GetDefaultValidationContext().GetMatchTypedSubjectAltNames(); len(sans) != 1 ||
				sans[0].GetMatcher().GetPrefix() != "spiffe://kgate.internal/xds-server/" || sans[0].GetSanType() != tlsv3.SubjectAltNameMatcher_URI {
				t.Errorf("server SANs %v, want a URI prefix spiffe://kgate.internal/xds-server/", sans)
			}
			if got := common.GetAlpnProtocols(); len(got) != 1 || got[0] != "h2" {
				t.Errorf("ALPN %v, want h2", got)
			}
		}},
		{"inline certificates", []string{"--xds-tls-dir", "/certs", "--xds-tls-sds-dir", ""}, func(t *testing.T, tls *tlsv3.UpstreamTlsContext) {
			common := tls.GetCommonTlsContext()
			certs := common.GetTlsCertificates()
			if len(certs) != 1 || certs[0].GetCertificateChain().GetFilename() != "/certs/tls.crt" || certs[0].GetPrivateKey().GetFilename() != "/certs/tls.key" {
				t.Errorf("client certificate %v, want /certs/tls.crt and /certs/tls.key", certs)
			}
			if got := common.GetValidationContext().GetTrustedCa().GetFilename(); got != "/certs/ca.crt" {
				t.Errorf("trusted CA %q, want /certs/ca.crt", got)
			}
		}},
		{"plaintext to loopback", []string{"--plaintext", "--xds-address", "127.0.0.1:18000"}, func(t *testing.T, tls *tlsv3.UpstreamTlsContext) {
			if tls != nil {
				t.Errorf("--plaintext: the xDS cluster has TLS %v", tls)
			}
		}},
		{"plaintext to localhost", []string{"--plaintext", "--xds-address", "localhost:18000"}, func(t *testing.T, tls *tlsv3.UpstreamTlsContext) {
			if tls != nil {
				t.Errorf("--plaintext: the xDS cluster has TLS %v", tls)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, xdsTLS(t, bootstrapOf(t, append([]string{"--xds-address", "kgate.example:18000"}, tt.args...)...)))
		})
	}
}

// --file prints the SDS files the bootstrap names, with the certificate
// files of --xds-tls-dir, watched there.
func TestBootstrapSDSFiles(t *testing.T) {
	for _, tt := range []struct{ file, want string }{
		{"xds-tls-certificate.yaml", "/certs/tls.crt"},
		{"xds-tls-validation.yaml", "/certs/ca.crt"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			var f discoveryv3.DiscoveryResponse
			decodeOutput(t, &f, "bootstrap", "--xds-tls-dir", "/certs", "--file", tt.file)
			if len(f.GetResources()) != 1 {
				t.Fatalf("%d resources, want 1 secret", len(f.GetResources()))
			}
			var s tlsv3.Secret
			if err := f.GetResources()[0].UnmarshalTo(&s); err != nil {
				t.Fatal(err)
			}
			if err := s.ValidateAll(); err != nil {
				t.Fatal(err)
			}
			files := s.GetTlsCertificate().GetCertificateChain().GetFilename() + s.GetValidationContext().GetTrustedCa().GetFilename()
			watched := s.GetTlsCertificate().GetWatchedDirectory().GetPath() + s.GetValidationContext().GetWatchedDirectory().GetPath()
			if files != tt.want || watched != "/certs" {
				t.Errorf("secret reads %q watching %q, want %q watching /certs", files, watched, tt.want)
			}
		})
	}
}

// The overload flags reach the overload manager.
func TestBootstrapOverload(t *testing.T) {
	for _, tt := range []struct {
		name      string
		args      []string
		heap      uint64
		conns     int64
		wantError string
	}{
		{"defaults", nil, 768 << 20, 50_000, ""},
		{"set", []string{"--max-heap", "2Gi", "--max-downstream-connections", "1000"}, 2 << 30, 1000, ""},
		{"plain bytes", []string{"--max-heap", "1000000"}, 1_000_000, 50_000, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := bootstrapOf(t, append([]string{"--plaintext"}, tt.args...)...)
			var heap uint64
			var conns int64
			for _, m := range b.GetOverloadManager().GetResourceMonitors() {
				switch c := mustUnpack(t, m.GetTypedConfig()).(type) {
				case *fixedheapv3.FixedHeapConfig:
					heap = c.GetMaxHeapSizeBytes()
				case *downstreamconnsv3.DownstreamConnectionsConfig:
					conns = c.GetMaxActiveDownstreamConnections()
				}
			}
			if heap != tt.heap || conns != tt.conns {
				t.Errorf("heap %d, connections %d; want %d, %d", heap, conns, tt.heap, tt.conns)
			}
		})
	}
}

func mustUnpack(t *testing.T, a interface{ UnmarshalNew() (proto.Message, error) }) proto.Message {
	t.Helper()
	m, err := a.UnmarshalNew()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Flags that cannot make a bootstrap fail with one line naming the flag.
func TestBootstrapTLSBadFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--plaintext", "--xds-address", "10.0.0.7:18000"}, "--plaintext is allowed only on a loopback address"},
		{[]string{"--plaintext", "--xds-address", "kgate-controller.kgate-system.svc:18000"}, "--plaintext is allowed only on a loopback address"},
		{[]string{"--max-heap", "lots"}, "--max-heap"},
		{[]string{"--max-heap", "0"}, "--max-heap"},
		{[]string{"--max-downstream-connections", "-1"}, "maxDownstreamConnections"},
		{[]string{"--file", "other.yaml"}, "--file"},
		{[]string{"--plaintext", "--file", "xds-tls-certificate.yaml"}, "names no SDS file"},
		{[]string{"--xds-tls-sds-dir", "", "--file", "xds-tls-validation.yaml"}, "names no SDS file"},
	} {
		_, err := run(t, append([]string{"bootstrap"}, tt.args...)...)
		switch {
		case err == nil:
			t.Errorf("bootstrap %v: no error", tt.args)
		case strings.Contains(err.Error(), "\n"):
			t.Errorf("bootstrap %v: error spans lines: %q", tt.args, err)
		case !strings.Contains(err.Error(), tt.want):
			t.Errorf("bootstrap %v: %v, want it to mention %q", tt.args, err, tt.want)
		}
	}
}
