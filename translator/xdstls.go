package translator

import (
	"net"
	"path"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// XDSServerSANPrefix starts the URI SAN of every control-plane server
// certificate (spiffe://kgate.internal/xds-server/<id>). Envoy accepts a
// server only with such a SAN: a certificate the same CA issued to a
// gateway or an activator (spiffe://kgate.internal/<role>/<node-id>)
// cannot pose as the control plane.
const XDSServerSANPrefix = "spiffe://kgate.internal/xds-server/"

// The SDS files a bootstrap with BootstrapTLS.SDSDirectory names, in that
// directory, and the secrets they hold.
const (
	XDSTLSCertificateFile = "xds-tls-certificate.yaml"
	XDSTLSValidationFile  = "xds-tls-validation.yaml"

	xdsCertificateSecret = "xds-tls-certificate"
	xdsValidationSecret  = "xds-tls-validation"
	tlsTransportSocket   = "envoy.transport_sockets.tls"
)

// BootstrapTLS is Envoy's side of mutual TLS with the control plane: its
// client certificate, and the CA that signs the control plane's.
type BootstrapTLS struct {
	// CAFile holds the CA certificates that sign the control plane's
	// server certificates; CertFile and KeyFile are this Envoy's client
	// certificate chain and private key. All three are required.
	CAFile, CertFile, KeyFile string
	// SDSDirectory, when set, makes the certificates rotate without a
	// restart: the bootstrap then takes them through two file-based SDS
	// resources in that directory (XDSTLSCertificateFile and
	// XDSTLSValidationFile, whose contents XDSTLSSecretFiles returns), and
	// Envoy re-reads the three files whenever they change. Envoy watches
	// certificate files only when they come over SDS: certificates set
	// inline in the bootstrap are read once, at start. Empty sets them
	// inline: rotating them then needs an Envoy restart.
	SDSDirectory string
	// WatchedDirectory is the directory whose moves trigger the re-read
	// (a Kubernetes Secret volume swaps its "..data" link there on every
	// update); empty watches the files' own directories. It needs
	// SDSDirectory.
	WatchedDirectory string
}

func (t *BootstrapTLS) validate(p *field.Path) field.ErrorList {
	if t == nil {
		return nil
	}
	var errs field.ErrorList
	for _, f := range []struct{ name, value string }{{"caFile", t.CAFile}, {"certFile", t.CertFile}, {"keyFile", t.KeyFile}} {
		if f.value == "" {
			errs = append(errs, field.Required(p.Child(f.name), "mutual TLS needs it"))
		}
	}
	if t.WatchedDirectory != "" && t.SDSDirectory == "" {
		errs = append(errs, field.Invalid(p.Child("watchedDirectory"), t.WatchedDirectory,
			"needs sdsDirectory: Envoy watches certificate files only when they come over SDS"))
	}
	return errs
}

// xdsTransportSocket is the xDS cluster's mutual TLS: ALPN h2 (gRPC), the
// client certificate, and a server certificate that must chain to the CA
// and carry a control-plane SAN. A DNS address is also sent as SNI.
func xdsTransportSocket(address string, t *BootstrapTLS) *corev3.TransportSocket {
	common := &tlsv3.CommonTlsContext{AlpnProtocols: []string{"h2"}}
	serverSAN := &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
		SanType: tlsv3.SubjectAltNameMatcher_URI,
		Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: XDSServerSANPrefix}},
	}}}
	if t.SDSDirectory == "" {
		common.TlsCertificates = []*tlsv3.TlsCertificate{clientCertificate(t)}
		serverSAN.TrustedCa = fileSource(t.CAFile)
		common.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: serverSAN}
	} else {
		common.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{sdsFromFile(xdsCertificateSecret, t.SDSDirectory, XDSTLSCertificateFile)}
		common.ValidationContextType = &tlsv3.CommonTlsContext_CombinedValidationContext{
			CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
				DefaultValidationContext:         serverSAN,
				ValidationContextSdsSecretConfig: sdsFromFile(xdsValidationSecret, t.SDSDirectory, XDSTLSValidationFile),
			},
		}
	}
	upstream := &tlsv3.UpstreamTlsContext{CommonTlsContext: common}
	if net.ParseIP(address) == nil {
		upstream.Sni = address
	}
	return &corev3.TransportSocket{
		Name:       tlsTransportSocket,
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(upstream)},
	}
}

// sdsFromFile names a secret Envoy reads from dir/file, and reads again
// when an entry of dir is moved (a Kubernetes ConfigMap update).
func sdsFromFile(secret, dir, file string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{
		Name: secret,
		SdsConfig: &corev3.ConfigSource{
			ResourceApiVersion: corev3.ApiVersion_V3,
			ConfigSourceSpecifier: &corev3.ConfigSource_PathConfigSource{PathConfigSource: &corev3.PathConfigSource{
				Path:             path.Join(dir, file),
				WatchedDirectory: &corev3.WatchedDirectory{Path: dir},
			}},
		},
	}
}

// XDSTLSSecretFiles returns, by file name, the SDS files a bootstrap with
// t.SDSDirectory set reads its certificates through: each holds one Secret
// naming the certificate files (and t.WatchedDirectory). Write them in
// t.SDSDirectory beside the bootstrap; Envoy refuses to start without them.
func XDSTLSSecretFiles(t BootstrapTLS) (map[string]*discoveryv3.DiscoveryResponse, error) {
	p := field.NewPath("xdsTLS")
	errs := t.validate(p)
	if t.SDSDirectory == "" {
		errs = append(errs, field.Required(p.Child("sdsDirectory"), "the SDS files are for certificates that rotate"))
	}
	if err := errs.ToAggregate(); err != nil {
		return nil, err
	}
	ca := &tlsv3.CertificateValidationContext{TrustedCa: fileSource(t.CAFile), WatchedDirectory: watched(t.WatchedDirectory)}
	files := map[string]*discoveryv3.DiscoveryResponse{
		XDSTLSCertificateFile: sdsFile(&tlsv3.Secret{Name: xdsCertificateSecret, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: clientCertificate(&t)}}),
		XDSTLSValidationFile:  sdsFile(&tlsv3.Secret{Name: xdsValidationSecret, Type: &tlsv3.Secret_ValidationContext{ValidationContext: ca}}),
	}
	for name, f := range files {
		for _, r := range f.GetResources() {
			if err := validateAny(r); err != nil {
				return nil, field.Invalid(p.Child(name), r.GetTypeUrl(), err.Error())
			}
		}
	}
	return files, nil
}

func sdsFile(s *tlsv3.Secret) *discoveryv3.DiscoveryResponse {
	return &discoveryv3.DiscoveryResponse{Resources: []*anypb.Any{mustAny(s)}}
}

func clientCertificate(t *BootstrapTLS) *tlsv3.TlsCertificate {
	return &tlsv3.TlsCertificate{
		CertificateChain: fileSource(t.CertFile),
		PrivateKey:       fileSource(t.KeyFile),
		WatchedDirectory: watched(t.WatchedDirectory),
	}
}

func watched(dir string) *corev3.WatchedDirectory {
	if dir == "" {
		return nil
	}
	return &corev3.WatchedDirectory{Path: dir}
}

func fileSource(name string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: name}}
}
