package translator

import (
	"sort"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/kgate/kgate/translator/model"
)

// Service returns one Service's RouteConfigurations (one per listener it has
// hosts on), ScopedRouteConfigurations (one per host) and API listeners
// (one per host). It does not look at host conflicts: callers translate only
// the Services HostIndex does not report. Parts that break CheckService's
// rules are left out.
func Service(svc model.Service, opts Options) Output {
	// Group the valid hosts by listener, first occurrence of a host wins.
	byListener := map[string][]model.VirtualHost{}
	seen := map[string]bool{}
	for _, vh := range svc.VirtualHosts {
		if seen[vh.Host] || hostError(vh.Host) != "" {
			continue
		}
		seen[vh.Host] = true
		l := ListenerFor(vh.Visibility)
		byListener[l] = append(byListener[l], vh)
	}

	var out Output
	for _, l := range []string{ExternalListener, InternalListener} { // sorted
		vhs := byListener[l]
		if len(vhs) == 0 {
			continue
		}
		sort.Slice(vhs, func(i, j int) bool { return vhs[i].Host < vhs[j].Host })
		name := RouteName(l, svc.Namespace, svc.Name)
		rc := &routev3.RouteConfiguration{
			Name:                   name,
			RequestHeadersToRemove: []string{ListenerHeader},
			// Clusters may arrive after the routes that name them; Envoy
			// must not reject the route configuration meanwhile.
			ValidateClusters: wrapperspb.Bool(false),
		}
		for _, vh := range vhs {
			rc.VirtualHosts = append(rc.VirtualHosts, virtualHost(vh, opts))
			out.ScopedRoutes = append(out.ScopedRoutes, scope(l, vh.Host, name))
			out.APIListeners = append(out.APIListeners, apiListener(vh.Host, name))
		}
		out.Routes = append(out.Routes, rc)
	}
	sortOutput(&out)
	return out
}

func scope(listener, host, routeName string) *routev3.ScopedRouteConfiguration {
	return &routev3.ScopedRouteConfiguration{
		Name:                   ScopeName(listener, host),
		RouteConfigurationName: routeName,
		Key: &routev3.ScopedRouteConfiguration_Key{Fragments: []*routev3.ScopedRouteConfiguration_Key_Fragment{
			{Type: &routev3.ScopedRouteConfiguration_Key_Fragment_StringKey{StringKey: listener}},
			{Type: &routev3.ScopedRouteConfiguration_Key_Fragment_StringKey{StringKey: host}},
		}},
	}
}

// apiListener is what a proxyless gRPC client resolving xds:///<host> asks
// for: an HTTP connection manager with RDS over ADS and the router filter.
func apiListener(host, routeName string) *listenerv3.Listener {
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: host,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource:    ads(),
			RouteConfigName: routeName,
		}},
		HttpFilters: []*hcmv3.HttpFilter{routerFilter()},
	}
	return &listenerv3.Listener{
		Name:        host,
		ApiListener: &listenerv3.ApiListener{ApiListener: mustAny(hcm)},
	}
}

func virtualHost(vh model.VirtualHost, opts Options) *routev3.VirtualHost {
	limits := opts.Limits.WithDefaults()
	routes := make([]model.Route, 0, len(vh.Routes))
	for _, r := range vh.Routes {
		if routeUsable(r) {
			routes = append(routes, r)
		}
	}
	// Longest prefix first; among equal prefixes, routes with more header
	// matches first (a tag route before the default); otherwise as given.
	sort.SliceStable(routes, func(i, j int) bool {
		if a, b := len(routes[i].PathPrefix), len(routes[j].PathPrefix); a != b {
			return a > b
		}
		return len(routes[i].Headers) > len(routes[j].Headers)
	})
	out := &routev3.VirtualHost{
		Name:    vh.Host,
		Domains: []string{vh.Host, vh.Host + ":*"},
		Routes:  make([]*routev3.Route, 0, len(routes)),
	}
	for _, r := range routes {
		out.Routes = append(out.Routes, route(r, limits))
	}
	if policy := httpPolicyRoutes(vh, acmeRoute(out.Routes), opts.HTTPSRedirectPort); policy != nil {
		// The host's own routes under the ACME prefix (an HTTP-01 solver's,
		// /.well-known/acme-challenge/<token>) stay ahead of the policy
		// routes, whose ACME route would otherwise take their requests.
		solvers, rest := acmeRoutes(out.Routes)
		out.Routes = append(append(solvers, policy...), rest...)
	}
	if warm := unrouted(routes); len(warm) > 0 {
		out.Routes = append(out.Routes, warmRoute(warm))
	}
	return out
}

// unrouted lists the revisions the routes name at 0 %: sorted, once each,
// leaving out those another split sends traffic to.
func unrouted(routes []model.Route) []string {
	zero, routed := map[string]bool{}, map[string]bool{}
	for _, r := range routes {
		for _, s := range r.Splits {
			if s.Revision == "" || !validHeaderValue(s.Revision) {
				continue
			}
			if s.Percent == 0 {
				zero[s.Revision] = true
			} else {
				routed[s.Revision] = true
			}
		}
	}
	var out []string
	for rev := range zero {
		if !routed[rev] {
			out = append(out, rev)
		}
	}
	sort.Strings(out)
	return out
}

// warmRoute never matches (runtime_fraction 0 %, which no request can
// change) and names the revisions the virtual host sends nothing to yet, so
// that every client holds their clusters before a change sends them
// traffic. grpc-go builds its cluster picker from every route of the
// virtual host, and fails the picks of a cluster that first appears with
// the route sending it traffic; Envoy would warm it anyway.
func warmRoute(revisions []string) *routev3.Route {
	clusters := make([]*routev3.WeightedCluster_ClusterWeight, 0, len(revisions))
	for _, rev := range revisions {
		clusters = append(clusters, &routev3.WeightedCluster_ClusterWeight{Name: ClusterName(rev), Weight: wrapperspb.UInt32(1)})
	}
	return &routev3.Route{
		Name: "warm",
		Match: &routev3.RouteMatch{
			PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"},
			RuntimeFraction: &corev3.RuntimeFractionalPercent{
				DefaultValue: &typev3.FractionalPercent{Numerator: 0, Denominator: typev3.FractionalPercent_HUNDRED},
			},
		},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{Clusters: clusters}},
			Timeout:          durationpb.New(0),
		}},
	}
}

// routeUsable leaves out a route whose match cannot be expressed faithfully:
// dropping a bad header match would widen the route.
func routeUsable(r model.Route) bool {
	if !validPrefix(r.PathPrefix) {
		return false
	}
	for _, h := range r.Headers {
		if !validHeader(h.Name, h.Value) {
			return false
		}
	}
	return true
}

func route(r model.Route, limits Limits) *routev3.Route {
	match := &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: r.PathPrefix}}
	for _, h := range r.Headers {
		match.Headers = append(match.Headers, &routev3.HeaderMatcher{
			Name: strings.ToLower(h.Name),
			HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_Exact{Exact: h.Value},
			}},
		})
	}
	var clusters []*routev3.WeightedCluster_ClusterWeight
	for _, s := range r.Splits {
		if s.Percent == 0 || s.Revision == "" || !validHeaderValue(s.Revision) {
			continue // a 0 % target receives nothing
		}
		cw := &routev3.WeightedCluster_ClusterWeight{
			Name:   ClusterName(s.Revision),
			Weight: wrapperspb.UInt32(s.Percent),
		}
		cw.RequestHeadersToAdd = setHeaders(r.SetHeaders, s.SetHeaders)
		clusters = append(clusters, cw)
	}
	if len(clusters) == 0 {
		// No revision receives traffic (not a valid model; CheckService
		// reports it): answer 503 rather than emit a route Envoy rejects.
		return &routev3.Route{
			Match:  match,
			Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 503}},
		}
	}
	timeout := r.Timeout
	if timeout < 0 {
		timeout = 0
	}
	policy, timeout := retryPolicy(r.Retries, timeout)
	out := &routev3.Route{
		Match: match,
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			// Always weighted, even for one 100 % split: the per-split
			// headers live on the cluster weight either way.
			ClusterSpecifier: &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{
				Clusters: clusters,
			}},
			// Explicit, also when zero: Envoy's default is 15 s, and zero
			// disables it (Knative has no route timeout unless the revision
			// sets one).
			Timeout:     durationpb.New(timeout),
			IdleTimeout: routeIdleTimeout(timeout, r.IdleTimeout, limits.StreamIdleTimeout),
		}},
	}
	policy = responseStart(policy, r.ResponseStartTimeout, timeout, r.IdleTimeout)
	if r.HostRewrite != "" && validHeaderValue(r.HostRewrite) {
		out.GetRoute().HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: r.HostRewrite}
	}
	out.GetRoute().RetryPolicy = policy
	return out
}

// setHeaders is what a weighted cluster sets on the requests it sends: the
// route's own headers (a KIngress path's appendHeaders), then the split's,
// each overwriting what the client sent. The split's win on a conflict, as
// Knative's KIngress applies a split's appendHeaders after its path's.
//
// The route's headers live on every weighted cluster rather than in the
// route's request_headers_to_add because Envoy applies a weighted
// cluster's headers first and the route's after them (weighted cluster,
// then route, virtual host and route configuration, whatever
// most_specific_header_mutations_wins says, which only orders the last
// three): a route-level header would overwrite the split's. Within one
// request_headers_to_add list, Envoy applies the entries in order, so the
// split's come last; a route header the split sets too is left out, its
// value being overwritten anyway.
func setHeaders(route, split []model.Header) []*corev3.HeaderValueOption {
	var out []*corev3.HeaderValueOption
	add := func(h model.Header) {
		out = append(out, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: strings.ToLower(h.Name), Value: h.Value},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		})
	}
	overridden := map[string]bool{}
	for _, h := range split {
		if validHeader(h.Name, h.Value) {
			overridden[strings.ToLower(h.Name)] = true
		}
	}
	for _, h := range route {
		if validHeader(h.Name, h.Value) && !overridden[strings.ToLower(h.Name)] {
			add(h)
		}
	}
	for _, h := range split {
		if validHeader(h.Name, h.Value) {
			add(h)
		}
	}
	return out
}

// RetryOn is the retry_on of a route with retries: Envoy's "5xx", what
// net-kourier and net-contour gave Envoy for a KIngress path's retries (a
// 5xx response, or no response at all: a connect failure, a reset, a
// per-try timeout).
const RetryOn = "5xx"

// retryPolicy is a route's retry_policy and its timeout, given the route's
// timeout (0 for none): nil (Envoy retries nothing) without Retries;
// otherwise num_retries is Attempts and per_try_timeout bounds each try
// when set. Envoy's default back-off (25 ms base, 250 ms at most) applies
// between tries; the route timeout still bounds them all.
//
// Retries of no attempt are no retry_policy: grpc-go's xDS client (kgate's
// proxyless clients read these routes) rejects a num_retries of 0, and
// leaving it unset would mean Envoy's default of one retry. A per-try
// timeout then bounds the one try, which Envoy times from the same moment
// as the route timeout (the end of the request) to the same end (the end
// of the response), with the same 504: it becomes the route timeout when
// shorter.
func retryPolicy(r *model.Retries, timeout time.Duration) (*routev3.RetryPolicy, time.Duration) {
	if r == nil {
		return nil, timeout
	}
	if r.Attempts == 0 {
		if r.PerTryTimeout > 0 && (timeout == 0 || r.PerTryTimeout < timeout) {
			timeout = r.PerTryTimeout
		}
		return nil, timeout
	}
	rp := &routev3.RetryPolicy{RetryOn: RetryOn, NumRetries: wrapperspb.UInt32(r.Attempts)}
	if r.PerTryTimeout > 0 {
		rp.PerTryTimeout = durationpb.New(r.PerTryTimeout)
	}
	return rp, timeout
}

// routeIdleTimeout is a route's idle_timeout: the revisions'
// idleTimeoutSeconds when set (Envoy's idle timer counts from the request
// and restarts with every byte either way, as Knative's counts from the
// request and restarts with every byte of the response). Without one, it
// lets a stream of a route whose timeout is longer than the connection
// manager's stream_idle_timeout stay idle as long as the route timeout: a
// request waiting for a response that starts late, as its revision's
// timeoutSeconds allows, moves nothing meanwhile. It is nil
// (stream_idle_timeout applies) for every other route, also one without a
// timeout: an unbounded request may still not sit idle forever.
func routeIdleTimeout(route, idle, streamIdle time.Duration) *durationpb.Duration {
	if idle > 0 {
		return durationpb.New(idle)
	}
	if route <= 0 || streamIdle <= 0 || route <= streamIdle {
		return nil
	}
	return durationpb.New(route)
}

// responseStart adds to a route's retry policy (nil for none) the
// per_try_idle_timeout that bounds the wait for the response to start
// (responseStartTimeoutSeconds), when that is shorter than both the route
// timeout and its idle timeout, which bound the wait too. Envoy has no
// timeout of the first byte alone: per_try_idle_timeout runs from the
// request's end until a response byte arrives and answers 504 "upstream
// request timeout" as the route timeout does, but it also restarts with
// every byte and ends a response that then stays silent as long
// (docs/timeouts.md). A policy with no retry_on retries nothing.
func responseStart(policy *routev3.RetryPolicy, start, timeout, idle time.Duration) *routev3.RetryPolicy {
	if start <= 0 || (timeout > 0 && start >= timeout) || (idle > 0 && start >= idle) {
		return policy
	}
	if policy == nil {
		policy = &routev3.RetryPolicy{}
	}
	policy.PerTryIdleTimeout = durationpb.New(start)
	return policy
}
