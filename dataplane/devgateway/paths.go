package devgateway

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// pathRules are the connection manager's path normalization, applied
// before routing; the upstream gets the path they leave.
type pathRules struct {
	// normalize removes "." and ".." segments (also spelled %2E), as
	// RFC 3986 section 5.2.4 says (normalize_path).
	normalize bool
	// mergeSlashes turns runs of "/" into one (merge_slashes).
	mergeSlashes bool
	// rejectEscapedSlashes answers 400 to a path holding %2F or %5C
	// (path_with_escaped_slashes_action REJECT_REQUEST).
	rejectEscapedSlashes bool
}

func compilePathRules(h *hcmv3.HttpConnectionManager) (pathRules, error) {
	rules := pathRules{normalize: h.GetNormalizePath().GetValue(), mergeSlashes: h.GetMergeSlashes()}
	switch a := h.GetPathWithEscapedSlashesAction(); a {
	case hcmv3.HttpConnectionManager_IMPLEMENTATION_SPECIFIC_DEFAULT, hcmv3.HttpConnectionManager_KEEP_UNCHANGED:
	case hcmv3.HttpConnectionManager_REJECT_REQUEST:
		rules.rejectEscapedSlashes = true
	default:
		return pathRules{}, fmt.Errorf("path_with_escaped_slashes_action %s is not supported by the dev gateway", a)
	}
	return rules, nil
}

var errEscapedSlash = errors.New("escaped slash in the path")

// apply rewrites r's path as the rules say.
func (p pathRules) apply(r *http.Request) error {
	if !p.normalize && !p.mergeSlashes && !p.rejectEscapedSlashes {
		return nil
	}
	escaped := r.URL.EscapedPath()
	if p.rejectEscapedSlashes && hasEscapedSlash(escaped) {
		return errEscapedSlash
	}
	if !strings.HasPrefix(escaped, "/") {
		return nil // "*" (OPTIONS) or an absolute form: nothing to normalize
	}
	out := escaped
	if p.normalize {
		out = removeDotSegments(out)
	}
	if p.mergeSlashes {
		out = mergeSlashes(out)
	}
	if out == escaped {
		return nil
	}
	path, err := url.PathUnescape(out)
	if err != nil {
		return nil // Go's server accepted the path; an invalid escape stays as sent
	}
	r.URL.Path, r.URL.RawPath = path, out
	return nil
}

func hasEscapedSlash(p string) bool {
	u := strings.ToUpper(p)
	return strings.Contains(u, "%2F") || strings.Contains(u, "%5C")
}

// removeDotSegments is RFC 3986's remove_dot_segments on an escaped path
// that starts with "/", taking "%2E" for ".". A trailing "." or ".."
// segment leaves a trailing "/".
func removeDotSegments(p string) string {
	segments := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segments))
	for i, s := range segments {
		last := i == len(segments)-1
		switch strings.ToUpper(s) {
		case ".", "%2E":
			if last {
				out = append(out, "")
			}
		case "..", ".%2E", "%2E.", "%2E%2E":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}

func mergeSlashes(p string) string {
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	return p
}
