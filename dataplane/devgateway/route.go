package devgateway

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
)

// defaultRouteTimeout is Envoy's route timeout when a route sets none.
const defaultRouteTimeout = 15 * time.Second

// routeTable is a compiled RouteConfiguration. It never changes once
// built: an update builds a new one, and requests under way keep theirs.
type routeTable struct {
	name string
	// Virtual hosts by domain kind, searched in Envoy's order: exact,
	// then suffix wildcards ("*.example.com"), then prefix wildcards
	// ("example.com:*"), longest first, then "*".
	exact    map[string]*virtualHost
	suffixes []wildcard
	prefixes []wildcard
	fallback *virtualHost
	request  headerOps
	response headerOps
}

// wildcard is a domain with its "*" taken off.
type wildcard struct {
	part string
	vh   *virtualHost
}

// virtualHost is a compiled VirtualHost.
type virtualHost struct {
	name     string
	routes   []*route
	request  headerOps
	response headerOps
}

// route is a compiled Route: a match and one action, a direct response,
// a redirect or a forward to weighted clusters.
type route struct {
	match    routeMatch
	direct   *directResponse
	redirect *redirectAction
	forward  *forwardAction
	request  headerOps
	response headerOps
}

type directResponse struct {
	status int
	body   string
}

// forwardAction is a compiled RouteAction.
type forwardAction struct {
	clusters []weightedCluster
	// totalWeight is the sum of the clusters' weights.
	totalWeight uint64
	// timeout bounds the upstream exchange; 0 is none.
	timeout time.Duration
	// idle, when set, is idle_timeout: it replaces the connection
	// manager's stream_idle_timeout for the route's streams; 0 is none.
	idle *time.Duration
	// upgrades overrides the connection manager's upgrade settings, by
	// lower-case upgrade type.
	upgrades map[string]bool
	// hostRewrite, when set, is the Host (:authority) the upstream gets
	// (host_rewrite_literal).
	hostRewrite string
	// retries is the retry_policy, nil for none.
	retries *retryPolicy
}

// weightedCluster is one target of a route; a route naming a single
// cluster has one of weight 1.
type weightedCluster struct {
	name     string
	weight   uint64
	request  headerOps
	response headerOps
}

func compileRouteTable(rc *routev3.RouteConfiguration) (*routeTable, error) {
	// validate_clusters is accepted and not acted on: a route naming an
	// unknown cluster answers 503, as with Envoy's RDS default.
	if err := onlyFields(rc, "name", "virtual_hosts", "request_headers_to_add", "request_headers_to_remove",
		"response_headers_to_add", "response_headers_to_remove", "validate_clusters"); err != nil {
		return nil, err
	}
	rt := &routeTable{name: rc.GetName(), exact: map[string]*virtualHost{}}
	var err error
	if rt.request, err = compileHeaderOps(rc.GetRequestHeadersToAdd(), rc.GetRequestHeadersToRemove()); err != nil {
		return nil, err
	}
	if rt.response, err = compileHeaderOps(rc.GetResponseHeadersToAdd(), rc.GetResponseHeadersToRemove()); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, v := range rc.GetVirtualHosts() {
		vh, err := compileVirtualHost(v)
		if err != nil {
			return nil, fmt.Errorf("virtual host %s: %w", v.GetName(), err)
		}
		for _, d := range v.GetDomains() {
			d = strings.ToLower(d)
			if seen[d] {
				// Envoy refuses a domain claimed twice in one configuration.
				return nil, fmt.Errorf("virtual host %s: domain %q is already claimed", v.GetName(), d)
			}
			seen[d] = true
			switch {
			case d == "*":
				rt.fallback = vh
			case strings.HasPrefix(d, "*"):
				rt.suffixes = append(rt.suffixes, wildcard{part: d[1:], vh: vh})
			case strings.HasSuffix(d, "*"):
				rt.prefixes = append(rt.prefixes, wildcard{part: d[:len(d)-1], vh: vh})
			default:
				rt.exact[d] = vh
			}
		}
	}
	longestFirst := func(a, b wildcard) int { return cmp.Compare(len(b.part), len(a.part)) }
	slices.SortStableFunc(rt.suffixes, longestFirst)
	slices.SortStableFunc(rt.prefixes, longestFirst)
	return rt, nil
}

// virtualHost returns the virtual host serving host (:authority, port
// included), nil if none. Like Envoy, matching ignores case, and a
// wildcard stands for at least one character.
func (rt *routeTable) virtualHost(host string) *virtualHost {
	host = strings.ToLower(host)
	if vh, ok := rt.exact[host]; ok {
		return vh
	}
	for _, w := range rt.suffixes {
		if len(host) > len(w.part) && strings.HasSuffix(host, w.part) {
			return w.vh
		}
	}
	for _, w := range rt.prefixes {
		if len(host) > len(w.part) && strings.HasPrefix(host, w.part) {
			return w.vh
		}
	}
	return rt.fallback
}

func compileVirtualHost(v *routev3.VirtualHost) (*virtualHost, error) {
	if err := onlyFields(v, "name", "domains", "routes", "request_headers_to_add", "request_headers_to_remove",
		"response_headers_to_add", "response_headers_to_remove"); err != nil {
		return nil, err
	}
	vh := &virtualHost{name: v.GetName()}
	var err error
	if vh.request, err = compileHeaderOps(v.GetRequestHeadersToAdd(), v.GetRequestHeadersToRemove()); err != nil {
		return nil, err
	}
	if vh.response, err = compileHeaderOps(v.GetResponseHeadersToAdd(), v.GetResponseHeadersToRemove()); err != nil {
		return nil, err
	}
	for i, r := range v.GetRoutes() {
		rte, err := compileRoute(r)
		if err != nil {
			return nil, fmt.Errorf("route %d (%s): %w", i, r.GetName(), err)
		}
		vh.routes = append(vh.routes, rte)
	}
	return vh, nil
}

// route returns the first route matching r, nil if none.
func (vh *virtualHost) route(r *http.Request) *route {
	for _, rte := range vh.routes {
		if rte.match.matches(r) {
			return rte
		}
	}
	return nil
}

func compileRoute(r *routev3.Route) (*route, error) {
	if err := onlyFields(r, "name", "match", "route", "direct_response", "redirect", "metadata", "decorator",
		"request_headers_to_add", "request_headers_to_remove", "response_headers_to_add", "response_headers_to_remove"); err != nil {
		return nil, err
	}
	match, err := compileRouteMatch(r.GetMatch())
	if err != nil {
		return nil, err
	}
	rte := &route{match: match}
	if rte.request, err = compileHeaderOps(r.GetRequestHeadersToAdd(), r.GetRequestHeadersToRemove()); err != nil {
		return nil, err
	}
	if rte.response, err = compileHeaderOps(r.GetResponseHeadersToAdd(), r.GetResponseHeadersToRemove()); err != nil {
		return nil, err
	}
	switch action := r.GetAction().(type) {
	case *routev3.Route_Route:
		rte.forward, err = compileRouteAction(action.Route)
	case *routev3.Route_DirectResponse:
		rte.direct, err = compileDirectResponse(action.DirectResponse)
	case *routev3.Route_Redirect:
		rte.redirect, err = compileRedirect(action.Redirect)
	default:
		err = errors.New("only route, direct_response and redirect actions are supported by the dev gateway")
	}
	if err != nil {
		return nil, err
	}
	return rte, nil
}

func compileDirectResponse(d *routev3.DirectResponseAction) (*directResponse, error) {
	if err := onlyFields(d, "status", "body"); err != nil {
		return nil, err
	}
	if err := onlyFields(d.GetBody(), "inline_string", "inline_bytes"); err != nil {
		return nil, err
	}
	body := d.GetBody().GetInlineString()
	if body == "" {
		body = string(d.GetBody().GetInlineBytes())
	}
	return &directResponse{status: int(d.GetStatus()), body: body}, nil
}

func compileRouteAction(a *routev3.RouteAction) (*forwardAction, error) {
	// No hash_policy, path rewrites, mirroring…: onlyFields refuses them.
	if err := onlyFields(a, "cluster", "weighted_clusters", "timeout", "idle_timeout", "upgrade_configs",
		"host_rewrite_literal", "retry_policy"); err != nil {
		return nil, err
	}
	fa := &forwardAction{timeout: defaultRouteTimeout, hostRewrite: a.GetHostRewriteLiteral()}
	var err error
	if fa.retries, err = compileRetryPolicy(a.GetRetryPolicy()); err != nil {
		return nil, err
	}
	if t := a.GetTimeout(); t != nil {
		fa.timeout = t.AsDuration()
	}
	if t := a.GetIdleTimeout(); t != nil {
		idle := t.AsDuration()
		fa.idle = &idle
	}
	for _, u := range a.GetUpgradeConfigs() {
		if err := onlyFields(u, "upgrade_type", "enabled"); err != nil {
			return nil, err
		}
		if fa.upgrades == nil {
			fa.upgrades = map[string]bool{}
		}
		fa.upgrades[strings.ToLower(u.GetUpgradeType())] = u.GetEnabled() == nil || u.GetEnabled().GetValue()
	}
	switch spec := a.GetClusterSpecifier().(type) {
	case *routev3.RouteAction_Cluster:
		fa.clusters = []weightedCluster{{name: spec.Cluster, weight: 1}}
	case *routev3.RouteAction_WeightedClusters:
		if err := onlyFields(spec.WeightedClusters, "clusters"); err != nil {
			return nil, err
		}
		for _, c := range spec.WeightedClusters.GetClusters() {
			wc, err := compileClusterWeight(c)
			if err != nil {
				return nil, fmt.Errorf("weighted cluster %s: %w", c.GetName(), err)
			}
			fa.clusters = append(fa.clusters, wc)
		}
	default:
		return nil, errors.New("only cluster and weighted_clusters are supported by the dev gateway")
	}
	for _, c := range fa.clusters {
		fa.totalWeight += c.weight
	}
	if fa.totalWeight == 0 {
		return nil, errors.New("the weighted clusters' weights sum to 0")
	}
	return fa, nil
}

func compileClusterWeight(c *routev3.WeightedCluster_ClusterWeight) (weightedCluster, error) {
	if err := onlyFields(c, "name", "weight", "request_headers_to_add", "request_headers_to_remove",
		"response_headers_to_add", "response_headers_to_remove"); err != nil {
		return weightedCluster{}, err
	}
	wc := weightedCluster{name: c.GetName(), weight: uint64(c.GetWeight().GetValue())}
	var err error
	if wc.request, err = compileHeaderOps(c.GetRequestHeadersToAdd(), c.GetRequestHeadersToRemove()); err != nil {
		return weightedCluster{}, err
	}
	if wc.response, err = compileHeaderOps(c.GetResponseHeadersToAdd(), c.GetResponseHeadersToRemove()); err != nil {
		return weightedCluster{}, err
	}
	return wc, nil
}

// pick chooses a cluster at random in proportion to the weights, as
// Envoy does: a 0-weight cluster is never chosen.
func (fa *forwardAction) pick() *weightedCluster {
	n := rand.Uint64N(fa.totalWeight)
	for i := range fa.clusters {
		if n < fa.clusters[i].weight {
			return &fa.clusters[i]
		}
		n -= fa.clusters[i].weight
	}
	return &fa.clusters[len(fa.clusters)-1] // unreachable: the weights sum to totalWeight
}

// routeMatch is a compiled RouteMatch.
type routeMatch struct {
	path    func(path string) bool
	headers []headerMatcher
	// grpc requires a gRPC content type.
	grpc bool
	// fraction, when set, is the share of requests the route matches, in
	// millionths (runtime_fraction's default value: the gateway has no
	// runtime to override it).
	fraction *uint64
}

func compileRouteMatch(m *routev3.RouteMatch) (routeMatch, error) {
	if err := onlyFields(m, "prefix", "path", "safe_regex", "path_separated_prefix", "case_sensitive", "headers", "grpc", "runtime_fraction"); err != nil {
		return routeMatch{}, err
	}
	caseSensitive := m.GetCaseSensitive() == nil || m.GetCaseSensitive().GetValue()
	norm := func(s string) string {
		if caseSensitive {
			return s
		}
		return strings.ToLower(s)
	}
	var rm routeMatch
	switch p := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		// A prefix is matched against the whole :path, query included.
		want := norm(p.Prefix)
		rm.path = func(path string) bool { return strings.HasPrefix(norm(path), want) }
	case *routev3.RouteMatch_Path:
		want := norm(p.Path)
		rm.path = func(path string) bool { return norm(withoutQuery(path)) == want }
	case *routev3.RouteMatch_PathSeparatedPrefix:
		want := norm(p.PathSeparatedPrefix)
		rm.path = func(path string) bool {
			rest, ok := strings.CutPrefix(norm(withoutQuery(path)), want)
			return ok && (rest == "" || rest[0] == '/')
		}
	case *routev3.RouteMatch_SafeRegex:
		re, err := compileRegex(p.SafeRegex)
		if err != nil {
			return routeMatch{}, err
		}
		rm.path = func(path string) bool { return re.MatchString(withoutQuery(path)) }
	default:
		return routeMatch{}, errors.New("the route match has no path specifier the dev gateway supports")
	}
	for _, h := range m.GetHeaders() {
		hm, err := compileHeaderMatcher(h)
		if err != nil {
			return routeMatch{}, err
		}
		rm.headers = append(rm.headers, hm)
	}
	rm.grpc = m.GetGrpc() != nil
	if rf := m.GetRuntimeFraction(); rf != nil {
		perMillion, err := millionths(rf.GetDefaultValue())
		if err != nil {
			return routeMatch{}, err
		}
		rm.fraction = &perMillion
	}
	return rm, nil
}

// millionths converts a fractional percent to parts per million.
func millionths(f *typev3.FractionalPercent) (uint64, error) {
	n := uint64(f.GetNumerator())
	switch f.GetDenominator() {
	case typev3.FractionalPercent_HUNDRED:
		n *= 10_000
	case typev3.FractionalPercent_TEN_THOUSAND:
		n *= 100
	case typev3.FractionalPercent_MILLION:
	default:
		return 0, fmt.Errorf("runtime_fraction: unknown denominator %v", f.GetDenominator())
	}
	return min(n, 1_000_000), nil
}

func (rm routeMatch) matches(r *http.Request) bool {
	// Only a connect_matcher route matches CONNECT in Envoy, and the
	// gateway supports none (nor WebSocket over HTTP/2's extended CONNECT).
	if r.Method == http.MethodConnect || !rm.path(requestPath(r)) {
		return false
	}
	if rm.grpc && !grpcContentType.MatchString(r.Header.Get("Content-Type")) {
		return false
	}
	for _, h := range rm.headers {
		if !h.matches(r) {
			return false
		}
	}
	// As Envoy: the fraction is drawn last, after everything else matched.
	return rm.fraction == nil || uint64(rand.Int64N(1_000_000)) < *rm.fraction
}

// grpcContentType is what Envoy takes for a gRPC request's content type:
// application/grpc, alone or with a "+format" or ";parameters".
var grpcContentType = regexp.MustCompile(`^application/grpc([+;].*)?$`)

func withoutQuery(path string) string {
	p, _, _ := strings.Cut(path, "?")
	return p
}
