// Package devgateway is the dev gateway: the data plane `kgate local` uses
// when no Envoy is installed. It is an xDS client of the control plane
// (one delta ADS stream, xdsclient) that serves HTTP as the Envoy config it
// receives says, and reports per-cluster load over LRS as Envoy does, so
// that the autoscaler sees demand through it exactly as through Envoy. It
// is for development and tests; production traffic goes through Envoy.
//
// It reads the config as Envoy would, knowing no kgate name: LDS and CDS
// wildcard; SRDS wildcard while a listener routes by scopes; RDS for the
// route configurations scopes and listeners name; EDS for the load
// assignments clusters name; SDS for the secrets TLS handshakes name. A
// request then goes:
//
//  0. TLS (tlscontext.go, secrets.go), on a listener whose filter chain
//     has Envoy's TLS transport socket with the on-demand secret selector
//     and the SNI mapper (the translator's HTTPS listeners): Go's
//     crypto/tls with the context's minimum and maximum versions (TLS 1.2
//     to 1.3 by default), Envoy's default cipher suites and curves, and
//     its ALPN protocols, HTTP/2 served when the client picks "h2". The
//     certificate is the SDS secret named by the client's SNI (the
//     mapper's default_value without one), subscribed to by name over the
//     ADS stream the first time a handshake asks for it; the handshake
//     waits for the control plane's answer (the config source's
//     initial_fetch_timeout, Envoy's 15 s by default, at most the
//     listener's header timeout, which is Go's handshake timeout) and
//     fails at once when the control plane says it has no such secret.
//     The name stays subscribed while held, so that a certificate that
//     comes later serves, and a rotation serves new handshakes while open
//     connections keep theirs; each version is parsed once, when it
//     arrives. Names are logged, never key material.
//  1. Listener (listener.go, hcm.go, limits.go, paths.go): HTTP/1.1 and
//     h2c on one socket (or HTTP/1.1 and HTTP/2 over TLS), with the
//     connection manager's limits: request
//     headers size (max_request_headers_kb) and count (max_headers_count)
//     answered 431 (the count resets an HTTP/2 stream), a header name with
//     an underscore 400 or dropped (headers_with_underscores_action),
//     request_headers_timeout (HTTP/1: Go's ReadHeaderTimeout closes the
//     connection where Envoy answers 408 first), the connection idle
//     timeout, HTTP/2 max_concurrent_streams and windows; the path is
//     normalized (normalize_path, merge_slashes; %2F and %5C kept or
//     rejected, path_with_escaped_slashes_action); the early header
//     mutation runs (x-kgate-listener, for kgate); X-Forwarded-Proto is
//     set to the connection's scheme, overwriting the client's at an edge
//     (use_remote_address) that trusts no hop (xff_num_trusted_hops 0),
//     before routing, so that routes can match it.
//  2. Scope (scope.go): the key built from the configured header
//     fragments (the host part of :authority, which for HTTP/1.1 is Host)
//     picks the ScopedRouteConfiguration and so the RouteConfiguration.
//  3. Route (route.go, match.go): virtual host by domain (exact, then
//     "*suffix", then "prefix*" such as "host:*", then "*"); first route
//     whose prefix/path/regex and header matchers match; 404 otherwise.
//  4. Action (proxy.go, redirect.go): a direct response; a redirect
//     (scheme, host, port and path replaced or kept as Envoy's router
//     does, the request's port dropped as it drops it, 301, 302, 303, 307
//     or 308); or a weighted random cluster choice, the upstream Host
//     rewritten when host_rewrite_literal says; request and response
//     headers mutated from the weighted cluster's level to the route
//     configuration's (set semantics overwrite what the client sent);
//     route timeout, Envoy's 15 s when unset, 0 for none, 504 "upstream
//     request timeout" when it fires before the response starts (a reset
//     after); the stream's idle timeout (timeout.go: the route's
//     idle_timeout, else the connection manager's stream_idle_timeout,
//     Envoy's 5 minutes when unset, 0 for none), counted from the request's
//     headers and started again by every byte of the request body and of
//     the response, 504 "stream timeout" when it fires before the response
//     starts (408 while the request body is still arriving), a reset
//     after; retries as retry_policy says (retry.go: num_retries, Envoy's
//     default of 1 when unset, per_try_timeout, per_try_idle_timeout
//     (from the end of the request, started again by every byte the
//     upstream sends; 504 "upstream request timeout" before the response,
//     a reset after), the retry_on conditions
//     5xx, gateway-error, reset and connect-failure, Envoy's jittered
//     back-off from 25 ms to 250 ms, a host picked anew for each try, the
//     body buffered up to the listener's per_connection_buffer_limit_bytes
//     and a larger one sent once, unretried; a policy without retry_on
//     retries nothing and buffers nothing; upgrades are not retried);
//     upgrades (WebSocket) as upgrade_configs allow.
//  5. Cluster (cluster.go, balance.go, endpoints.go, upstream.go): a host
//     by LEAST_REQUEST (power of two choices on requests in flight),
//     ROUND_ROBIN or RANDOM; 503 "no healthy upstream" with none; a
//     LOGICAL_DNS cluster's one host is a DNS name, resolved (net.Resolver)
//     for each new connection, which goes to the first address
//     dns_lookup_family allows (a name that does not resolve: 503 "no
//     healthy upstream"; dns_refresh_rate and respect_dns_ttl are read and
//     ignored); HTTP/1.1
//     or h2c upstream as typed_extension_protocol_options say, trailers
//     (gRPC) passed through.
//  6. Load (load.go): in progress, issued, successful and 5xx per cluster,
//     reported on the LRS server's schedule.
//
// The gateway bounds what it holds at once, which no xDS setting says
// (Envoy has its overload manager for that): in `kgate local` it shares
// one process, and so one file limit, with the activator, the admin API
// and the probes, and a flood must not take those down. Options set the
// ceilings; unset, they derive from the process's file limit
// (inflight.Budget, which keeps a tenth of the limit plus 128 descriptors
// for the rest of the process and gives the gateway a quarter of what
// remains for each of the following two ceilings: 4,468 at a limit of
// 20,000, 198 at 1,024):
//
//   - client connections across the listeners (Options.MaxConnections,
//     conns.go): at the ceiling the gateway stops accepting, and newcomers
//     wait in the kernel's accept queue, which costs no descriptor, until
//     a connection closes; from 80 % of it, keep-alives are off (idle
//     connections close, responses close theirs) until the count is back
//     at 60 %, so that connections are recycled and a newcomer gets its
//     turn;
//   - requests served at once (Options.MaxRequests), each of which may
//     hold an upstream connection even when HTTP/2 multiplexes them on few
//     client connections: beyond it, 503 "envoy overloaded", as Envoy's
//     overload manager answers.
//
// Clients choose their SNI, and each new name is a subscription and an
// answer from the control plane, so the certificates held on demand are
// bounded too (secrets.go): at most Options.MaxSecrets names at once
// (DefaultMaxSecrets, 1,024; a new name evicts the least recently used
// name no handshake waits for, those without a certificate first, and
// fails its handshake when every one is waited for), at most
// Options.NewSecretsPerMinute new names a minute (a bucket of
// DefaultNewSecretsPerMinute, 120, refilled at that rate; past it a new
// name fails its handshake without a subscription), and an SNI that
// cannot name a certificate (not a DNS name of 253 bytes at most) fails
// without one.
//
// The gateway's "envoy overloaded" and an upstream's 503 (the activator
// shedding a flood) close an HTTP/1 client's connection, which goes back
// rather than bringing the flood's next request. A failed accept
// (out of descriptors) is retried, pausing up to a second, and never
// closes the listener. Options.Inflight, when set, counts the requests in
// flight to each host until their responses end, for `kgate local` to
// stop a replica only once nothing is in flight to it.
//
// Config changes never drop a request under way: every compiled resource
// is immutable and a request keeps what it looked up; a listener whose
// address changes binds anew and drains the old socket; a removed one
// drains. Each xDS handler compiles its whole update before applying any
// of it: a resource the gateway cannot serve as Envoy would is refused (a
// NACK, see onlyFields), and the gateway goes on with what it had.
//
// Envoy behaviours not implemented (config using them is refused where it
// would route differently; the rest is read and ignored):
//
//   - TLS other than the on-demand SNI certificates above (static or
//     fixed-name SDS certificates, client certificates, session and OCSP
//     settings, cipher suites, curves and signature algorithms other than
//     the defaults, secrets from files): refused. Filter chain matching,
//     listener filters other than the TLS inspector, HTTP filters other
//     than the router (optional or disabled ones are skipped), HTTP/3:
//     refused. Over TLS, HTTP/2 needs ALPN (Envoy's AUTO codec also takes
//     its preface without it), and Go answers a plaintext request 400
//     where Envoy closes the connection.
//   - Retry conditions other than the four above, retry back-off
//     settings, host predicates, retriable status codes or headers,
//     hedging, mirroring, path rewrites and host rewrites other
//     than host_rewrite_literal (in redirects too: prefix_rewrite,
//     regex_rewrite),
//     hash policies, rate limits, CORS, per-filter config, query parameter
//     matchers, runtime overrides (runtime_fraction's default value is
//     honoured), CONNECT and WebSocket over HTTP/2 (RFC 8441): refused.
//   - Header value formatters (%COMMAND%): refused; "%%" is a percent.
//   - Circuit breakers, outlier detection, health checking, locality and
//     endpoint weights, priority spill-over before a priority is empty
//     (the gateway uses the lowest priority with a healthy host), the
//     stream idle timeout on an upgraded (WebSocket) connection once the
//     upgrade is accepted, request_headers_timeout over HTTP/2,
//     per_connection_buffer_limit_bytes, xff_num_trusted_hops beyond
//     trusting X-Forwarded-Proto (it decides the x-envoy-* headers),
//     access logs, stats: not enforced,
//     ignored. Unescaping path_with_escaped_slashes_action values: refused.
//   - Request ids, x-envoy-* headers (none added, none stripped), the
//     server header.
//   - Connection draining on a listener update that keeps the address:
//     open connections take the new config at once instead.
//   - Cluster warming: a cluster is used as soon as it arrives; until its
//     endpoints do, it answers 503 "no healthy upstream" (Envoy, still
//     warming it, answers 503 for an unknown cluster).
//   - CDS types other than EDS, STATIC and LOGICAL_DNS.
package devgateway
