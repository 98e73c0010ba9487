package devgateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	sniv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/cert_mappers/sni/v3"
	ondemandv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/cert_selectors/on_demand_secret/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// TLS at the listener, as Envoy's TLS transport socket with the on-demand
// certificate selector does it: the certificate of a handshake is the SDS
// secret named by the client's SNI (the SNI mapper's default_value when
// the client sends none), fetched over the gateway's ADS stream the first
// time a handshake asks for it (certStore), the handshake waiting for it.

// Extension names the gateway knows in a listener's TLS config.
const (
	tlsTransportSocketName = "envoy.transport_sockets.tls"
	onDemandSecretSelector = "envoy.tls.certificate_selectors.on_demand_secret"
	sniCertificateMapper   = "envoy.tls.certificate_mappers.sni"
)

// defaultSecretFetchTimeout is Envoy's initial_fetch_timeout when a config
// source sets none: how long a handshake waits for a secret the control
// plane has not answered for.
const defaultSecretFetchTimeout = 15 * time.Second

// envoyServerCipherSuites are Envoy's default server cipher suites for
// TLS 1.0 to 1.2 (non-FIPS builds; TLS 1.3's are not configurable), in
// its order; Go's own defaults add CBC suites Envoy no longer offers.
var envoyServerCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
}

// envoyCurves are Envoy's default ECDH curves (non-FIPS builds).
var envoyCurves = []tls.CurveID{tls.X25519, tls.CurveP256}

// tlsVersions maps Envoy's protocol versions to Go's; TLS_AUTO is the
// server default, TLS 1.2 to 1.3.
var tlsVersions = map[tlsv3.TlsParameters_TlsProtocol]uint16{
	tlsv3.TlsParameters_TLSv1_0: tls.VersionTLS10,
	tlsv3.TlsParameters_TLSv1_1: tls.VersionTLS11,
	tlsv3.TlsParameters_TLSv1_2: tls.VersionTLS12,
	tlsv3.TlsParameters_TLSv1_3: tls.VersionTLS13,
}

// tlsContext is a compiled DownstreamTlsContext: the tls.Config of the
// listener's handshakes, whose GetCertificate asks certs for the secret
// the SNI names.
type tlsContext struct {
	config *tls.Config
	// defaultName is the secret a client sending no SNI gets.
	defaultName string
	// wait bounds how long a handshake waits for a secret the control
	// plane has not answered for yet.
	wait time.Duration
	// prefetch are the secrets fetched as soon as the listener is served
	// (prefetch_secret_names).
	prefetch []string
	certs    *certStore
}

// compileListenerFilters accepts the TLS inspector, which only reads the
// ClientHello, as Go's TLS server does anyway: with one filter chain there
// is nothing to match its findings against.
func compileListenerFilters(filters []*listenerv3.ListenerFilter) error {
	for _, f := range filters {
		if err := onlyFields(f, "name", "typed_config"); err != nil {
			return err
		}
		if err := unpack(f.GetTypedConfig(), &tlsinspectorv3.TlsInspector{}); err != nil {
			return fmt.Errorf("listener filter %s is not supported by the dev gateway (only the TLS inspector): %w", f.GetName(), err)
		}
	}
	return nil
}

// compileTransportSocket reads a filter chain's transport socket: TLS with
// the on-demand secret selector keyed by SNI, which is what the translator
// emits; anything else is refused. handshakeTimeout is the listener's
// server handshake timeout (its request header timeout), 0 for none.
func compileTransportSocket(ts *corev3.TransportSocket, certs *certStore, handshakeTimeout time.Duration) (*tlsContext, error) {
	if ts == nil {
		return nil, nil
	}
	if err := onlyFields(ts, "name", "typed_config"); err != nil {
		return nil, err
	}
	var dtc tlsv3.DownstreamTlsContext
	if err := unpack(ts.GetTypedConfig(), &dtc); err != nil {
		return nil, fmt.Errorf("transport socket %s: %w", ts.GetName(), err)
	}
	tc, err := compileDownstreamTLS(&dtc, certs, handshakeTimeout)
	if err != nil {
		return nil, fmt.Errorf("transport socket %s: %w", ts.GetName(), err)
	}
	return tc, nil
}

func compileDownstreamTLS(dtc *tlsv3.DownstreamTlsContext, certs *certStore, handshakeTimeout time.Duration) (*tlsContext, error) {
	// Client certificates, session settings, OCSP: refused.
	if err := onlyFields(dtc, "common_tls_context"); err != nil {
		return nil, err
	}
	common := dtc.GetCommonTlsContext()
	// Static certificates and SDS certificates by fixed name would be
	// easy, but the translator sends neither: refused with the rest.
	if err := onlyFields(common, "tls_params", "alpn_protocols", "custom_tls_certificate_selector"); err != nil {
		return nil, err
	}
	// Cipher suites, curves and signature algorithms: Envoy's defaults
	// only, anything else refused.
	params := common.GetTlsParams()
	if err := onlyFields(params, "tls_minimum_protocol_version", "tls_maximum_protocol_version"); err != nil {
		return nil, err
	}
	minVersion, maxVersion := uint16(tls.VersionTLS12), uint16(tls.VersionTLS13)
	if v := params.GetTlsMinimumProtocolVersion(); v != tlsv3.TlsParameters_TLS_AUTO {
		minVersion = tlsVersions[v]
	}
	if v := params.GetTlsMaximumProtocolVersion(); v != tlsv3.TlsParameters_TLS_AUTO {
		maxVersion = tlsVersions[v]
	}
	if minVersion == 0 || maxVersion == 0 || minVersion > maxVersion {
		return nil, fmt.Errorf("TLS versions %v to %v are not supported by the dev gateway",
			params.GetTlsMinimumProtocolVersion(), params.GetTlsMaximumProtocolVersion())
	}
	sel := common.GetCustomTlsCertificateSelector()
	if sel == nil {
		return nil, errors.New("no certificate: the dev gateway serves certificates chosen by the on-demand secret selector only")
	}
	tc, err := compileOnDemandSelector(sel)
	if err != nil {
		return nil, err
	}
	if handshakeTimeout > 0 {
		tc.wait = min(tc.wait, handshakeTimeout)
	}
	tc.certs = certs
	tc.config = &tls.Config{
		MinVersion:       minVersion,
		MaxVersion:       maxVersion,
		CipherSuites:     envoyServerCipherSuites,
		CurvePreferences: envoyCurves,
		NextProtos:       common.GetAlpnProtocols(),
		GetCertificate:   tc.certificate,
	}
	return tc, nil
}

func compileOnDemandSelector(sel *corev3.TypedExtensionConfig) (*tlsContext, error) {
	var cfg ondemandv3.Config
	if err := unpack(sel.GetTypedConfig(), &cfg); err != nil {
		return nil, fmt.Errorf("certificate selector %s: %w", sel.GetName(), err)
	}
	if err := onlyFields(&cfg, "config_source", "certificate_mapper", "prefetch_secret_names"); err != nil {
		return nil, err
	}
	src := cfg.GetConfigSource()
	if err := onlyFields(src, "ads", "resource_api_version", "initial_fetch_timeout"); err != nil {
		return nil, err
	}
	if src.GetAds() == nil {
		return nil, errors.New("on-demand secrets: the dev gateway fetches secrets over ADS only")
	}
	tc := &tlsContext{wait: defaultSecretFetchTimeout, prefetch: cfg.GetPrefetchSecretNames()}
	// Envoy's 0 waits forever; a handshake here waits at most the
	// default, which a client's patience is unlikely to exceed.
	if t := src.GetInitialFetchTimeout().AsDuration(); t > 0 {
		tc.wait = t
	}
	mapper := cfg.GetCertificateMapper()
	var sni sniv3.SNI
	if err := unpack(mapper.GetTypedConfig(), &sni); err != nil {
		return nil, fmt.Errorf("certificate mapper %s is not supported by the dev gateway (only the SNI mapper): %w", mapper.GetName(), err)
	}
	if err := onlyFields(&sni, "default_value"); err != nil {
		return nil, err
	}
	tc.defaultName = sni.GetDefaultValue()
	return tc, nil
}

// certificate is the handshake's GetCertificate: the secret named by the
// SNI, or the default name without one.
func (tc *tlsContext) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := hello.ServerName
	if name == "" {
		name = tc.defaultName
	}
	ctx := hello.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return tc.certs.certificate(ctx, name, tc.wait)
}
