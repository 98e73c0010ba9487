package devgateway

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// redirectAction is a compiled RedirectAction: the route answers with a
// redirect to a URL built from the request, as Envoy's router does
// (Http::Utility::newUri).
type redirectAction struct {
	// scheme replaces the request's scheme unless empty (scheme_redirect,
	// or "https" for https_redirect).
	scheme string
	// host replaces the request's host unless empty (host_redirect).
	host string
	// port is ":<port_redirect>", or "" to keep the request's port.
	port string
	// path replaces the request's path unless empty (path_redirect); when
	// it has a query of its own, that query replaces the request's.
	path         string
	pathHasQuery bool
	stripQuery   bool
	status       int
}

// redirectStatus maps the response codes Envoy knows to their statuses.
var redirectStatus = map[routev3.RedirectAction_RedirectResponseCode]int{
	routev3.RedirectAction_MOVED_PERMANENTLY:  http.StatusMovedPermanently,
	routev3.RedirectAction_FOUND:              http.StatusFound,
	routev3.RedirectAction_SEE_OTHER:          http.StatusSeeOther,
	routev3.RedirectAction_TEMPORARY_REDIRECT: http.StatusTemporaryRedirect,
	routev3.RedirectAction_PERMANENT_REDIRECT: http.StatusPermanentRedirect,
}

func compileRedirect(rd *routev3.RedirectAction) (*redirectAction, error) {
	// prefix_rewrite, regex_rewrite and path_rewrite would build another
	// path: refused by onlyFields.
	if err := onlyFields(rd, "https_redirect", "scheme_redirect", "host_redirect", "port_redirect",
		"path_redirect", "response_code", "strip_query"); err != nil {
		return nil, err
	}
	status, ok := redirectStatus[rd.GetResponseCode()]
	if !ok {
		return nil, fmt.Errorf("redirect response code %v is not supported by the dev gateway", rd.GetResponseCode())
	}
	ra := &redirectAction{
		scheme:     rd.GetSchemeRedirect(),
		host:       rd.GetHostRedirect(),
		path:       rd.GetPathRedirect(),
		stripQuery: rd.GetStripQuery(),
		status:     status,
	}
	if rd.GetHttpsRedirect() {
		ra.scheme = "https"
	}
	if p := rd.GetPortRedirect(); p != 0 {
		// Appended as given, as Envoy does: port_redirect 443 makes
		// "https://host:443/…", not "https://host/…".
		ra.port = ":" + strconv.FormatUint(uint64(p), 10)
	}
	ra.pathHasQuery = strings.Contains(ra.path, "?")
	return ra, nil
}

// location is the URL r is redirected to.
func (ra *redirectAction) location(r *http.Request) string {
	scheme := ra.scheme
	if scheme == "" {
		scheme = requestScheme(r)
	}
	host := ra.host
	if host == "" {
		host = redirectHost(r.Host, r.Header.Get("X-Forwarded-Proto"), scheme, ra.port)
	}
	path := requestPath(r)
	if ra.path != "" {
		path = ra.path
		if !ra.pathHasQuery {
			// The request's query follows a path_redirect without one.
			if i := strings.IndexByte(requestPath(r), '?'); i >= 0 {
				path += requestPath(r)[i:]
			}
		}
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	if ra.stripQuery && !ra.pathHasQuery {
		path, _, _ = strings.Cut(path, "?")
	}
	return scheme + "://" + host + ra.port + path
}

// redirectHost is the request's host (its :authority) for a redirect to
// scheme with port (":<port>" or ""), as Envoy's processRequestHost makes
// it: the request's port goes when the redirect sets one, and when the
// scheme changes from the one the request came with (X-Forwarded-Proto)
// and the port is that one's default (:80 for http, :443 for https).
func redirectHost(host, forwardedProto, scheme, port string) string {
	end := -1
	if strings.HasPrefix(host, "[") {
		if i := strings.LastIndex(host, "]:"); i >= 0 {
			end = i + 1
		}
	} else {
		end = strings.LastIndexByte(host, ':')
	}
	if end < 0 {
		return host
	}
	requestPort := host[end:]
	remove := port != ""
	if scheme != forwardedProto {
		remove = remove || strings.EqualFold(forwardedProto, "https") && requestPort == ":443"
		remove = remove || strings.EqualFold(forwardedProto, "http") && requestPort == ":80"
	}
	if remove {
		return host[:end]
	}
	return host
}
