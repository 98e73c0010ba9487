package translator

import (
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	sniv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/cert_mappers/sni/v3"
	ondemandv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/cert_selectors/on_demand_secret/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"

	"github.com/kgate/kgate/translator/model"
)

// The HTTPS listeners and their certificates.
//
// Layout (docs/tls.md says why): one HTTPS listener per side, with ONE
// filter chain whose TLS context selects the certificate by SNI through
// Envoy's on-demand secret selector: the secret's name is the SNI host,
// fetched over SDS on the same ADS stream when a client first asks for it.
// A Service that brings a certificate therefore costs one SDS Secret and no
// listener change, whatever the number of Services, and a rotation is one
// push of that Secret. Kourier's way, a filter chain per certificate,
// re-sends a listener that grows with every certificate.
const (
	// ExternalTLSListener serves External hosts over TLS (port 8443).
	ExternalTLSListener = "external-tls"
	// InternalTLSListener serves ClusterLocal hosts over TLS (port 8444).
	InternalTLSListener = "internal-tls"
	// DefaultExternalTLSPort and DefaultInternalTLSPort are the HTTPS
	// listeners' usual ports.
	DefaultExternalTLSPort = 8443
	DefaultInternalTLSPort = 8444
	// DefaultCertificate is the secret served to a client that sends no
	// SNI (the default certificate, when there is one).
	DefaultCertificate = "kgate-default-certificate"
	// ACMEChallengePrefix is the path HTTP-01 challenges use: never
	// redirected, so that a certificate can be obtained over HTTP.
	ACMEChallengePrefix = "/.well-known/acme-challenge/"
)

// Envoy extension names of the TLS pieces.
const (
	tlsInspectorName    = "envoy.filters.listener.tls_inspector"
	onDemandSecretName  = "envoy.tls.certificate_selectors.on_demand_secret"
	sniCertMapperName   = "envoy.tls.certificate_mappers.sni"
	forwardedProtoLower = "x-forwarded-proto"
)

// TLSListener is an HTTPS gateway listener named name on address:port,
// serving the hosts of the plaintext listener scopes (their scoped routes
// are shared: one route configuration per Service serves both): TLS 1.2 at
// least with Envoy's default ciphers, ALPN h2 and http/1.1, the
// certificate chosen by SNI among the SDS secrets named by host.
func TLSListener(name, scopes, address string, port uint32, opts Options) *listenerv3.Listener {
	ctx := &tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
		TlsParams:     &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2},
		AlpnProtocols: []string{"h2", "http/1.1"},
		CustomTlsCertificateSelector: &corev3.TypedExtensionConfig{
			Name: onDemandSecretName,
			TypedConfig: mustAny(&ondemandv3.Config{
				ConfigSource: ads(),
				CertificateMapper: &corev3.TypedExtensionConfig{
					Name:        sniCertMapperName,
					TypedConfig: mustAny(&sniv3.SNI{DefaultValue: DefaultCertificate}),
				},
			}),
		},
	}}
	chain := &listenerv3.FilterChain{TransportSocket: &corev3.TransportSocket{
		Name:       tlsTransportSocket,
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(ctx)},
	}}
	return gatewayListener(name, scopes, address, port, opts, chain)
}

func tlsInspector() *listenerv3.ListenerFilter {
	return &listenerv3.ListenerFilter{
		Name:       tlsInspectorName,
		ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: mustAny(&tlsinspectorv3.TlsInspector{})},
	}
}

// Secret is the SDS secret of a host's certificate: named by the host (the
// SNI a client sends), holding the PEM chain and key inline.
func Secret(name string, certPEM, keyPEM []byte) *tlsv3.Secret {
	return &tlsv3.Secret{
		Name: name,
		Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: certPEM}},
			PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: keyPEM}},
		}},
	}
}

// httpPolicyRoutes are the routes a virtual host served over TLS (vh.TLS) puts
// before its own for requests that came over plain HTTP: a redirect to
// HTTPS (Redirected) or a 404 (Disabled), except for the ACME HTTP-01
// path, which keeps the host's own routing (acme, when not nil). The
// routes match on X-Forwarded-Proto, which the gateways set to the
// connection's scheme (use_remote_address): the same route configuration
// serves the HTTPS listener, where they never match.
func httpPolicyRoutes(vh model.VirtualHost, acme *routev3.Route, redirectPort uint32) []*routev3.Route {
	policy := vh.HTTP
	if !vh.TLS || (policy != model.HTTPRedirected && policy != model.HTTPDisabled) {
		return nil
	}
	var out []*routev3.Route
	if acme != nil {
		out = append(out, acme)
	}
	match := &routev3.RouteMatch{
		PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"},
		Headers: []*routev3.HeaderMatcher{{
			Name: forwardedProtoLower,
			HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "http"},
			}},
		}},
	}
	if policy == model.HTTPDisabled {
		return append(out, &routev3.Route{Name: "http-disabled", Match: match,
			Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 404}}})
	}
	redirect := &routev3.RedirectAction{
		SchemeRewriteSpecifier: &routev3.RedirectAction_HttpsRedirect{HttpsRedirect: true},
		ResponseCode:           routev3.RedirectAction_MOVED_PERMANENTLY,
	}
	if redirectPort != 0 {
		redirect.PortRedirect = redirectPort
	}
	return append(out, &routev3.Route{Name: "https-redirect", Match: match,
		Action: &routev3.Route_Redirect{Redirect: redirect}})
}

// acmeRoute is the host's routing for the ACME HTTP-01 path: the first of
// its routes (already in match order) that the path would take, with no
// header match, narrowed to the ACME prefix; nil when none would.
func acmeRoute(routes []*routev3.Route) *routev3.Route {
	for _, r := range routes {
		p := r.GetMatch().GetPrefix()
		if len(r.GetMatch().GetHeaders()) > 0 || r.GetMatch().GetRuntimeFraction() != nil || p == "" || len(p) > len(ACMEChallengePrefix) || ACMEChallengePrefix[:len(p)] != p {
			continue
		}
		acme := &routev3.Route{
			Name:   "acme-http01",
			Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: ACMEChallengePrefix}},
			Action: proto.Clone(r).(*routev3.Route).Action,
		}
		return acme
	}
	return nil
}

// acmeRoutes splits routes (in match order) into those under the ACME
// prefix without header matches (HTTP-01 solvers' paths) and the others,
// each in order.
func acmeRoutes(routes []*routev3.Route) (acme, rest []*routev3.Route) {
	for _, r := range routes {
		p := r.GetMatch().GetPrefix()
		if len(r.GetMatch().GetHeaders()) == 0 && r.GetMatch().GetRuntimeFraction() == nil && len(p) > len(ACMEChallengePrefix) && strings.HasPrefix(p, ACMEChallengePrefix) {
			acme = append(acme, r)
		} else {
			rest = append(rest, r)
		}
	}
	return acme, rest
}
