package translator

import (
	"strings"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kgate/kgate/translator/model"
)

// CheckService reports what in a Service breaks the translator's rules, each
// error naming the field and the rule. Service does not fail on bad input: it
// leaves out what does not pass (a virtual host with an invalid or repeated
// host, a route with an invalid path or header match, an invalid set header)
// so that one bad field never takes the gateway down; callers report
// CheckService's errors in status.
func CheckService(svc model.Service) error {
	var errs field.ErrorList
	if svc.Namespace == "" {
		errs = append(errs, field.Required(field.NewPath("namespace"), ""))
	}
	if svc.Name == "" {
		errs = append(errs, field.Required(field.NewPath("name"), ""))
	}
	seen := map[string]bool{}
	for i, vh := range svc.VirtualHosts {
		p := field.NewPath("virtualHosts").Index(i)
		if msg := hostError(vh.Host); msg != "" {
			errs = append(errs, field.Invalid(p.Child("host"), vh.Host, msg))
		} else if seen[vh.Host] {
			errs = append(errs, field.Duplicate(p.Child("host"), vh.Host))
		}
		seen[vh.Host] = true
		if vh.Visibility != model.External && vh.Visibility != model.ClusterLocal {
			errs = append(errs, field.NotSupported(p.Child("visibility"), vh.Visibility,
				[]model.Visibility{model.External, model.ClusterLocal}))
		}
		for j, r := range vh.Routes {
			errs = append(errs, checkRoute(p.Child("routes").Index(j), r)...)
		}
	}
	return errs.ToAggregate()
}

func checkRoute(p *field.Path, r model.Route) field.ErrorList {
	var errs field.ErrorList
	if !validPrefix(r.PathPrefix) {
		errs = append(errs, field.Invalid(p.Child("pathPrefix"), r.PathPrefix, "must start with '/'"))
	}
	for k, h := range r.Headers {
		errs = append(errs, checkHeader(p.Child("headers").Index(k), h.Name, h.Value)...)
	}
	if r.Timeout < 0 {
		errs = append(errs, field.Invalid(p.Child("timeout"), r.Timeout.String(), "must not be negative"))
	}
	for k, h := range r.SetHeaders {
		errs = append(errs, checkHeader(p.Child("setHeaders").Index(k), h.Name, h.Value)...)
	}
	if r.Retries != nil && r.Retries.PerTryTimeout < 0 {
		errs = append(errs, field.Invalid(p.Child("retries", "perTryTimeout"), r.Retries.PerTryTimeout.String(), "must not be negative"))
	}
	var sum uint32
	for k, s := range r.Splits {
		sp := p.Child("splits").Index(k)
		if ns, name, ok := strings.Cut(s.Revision, "/"); !ok || ns == "" || name == "" || !utf8.ValidString(s.Revision) {
			errs = append(errs, field.Invalid(sp.Child("revision"), s.Revision, "must be namespace/name"))
		}
		if s.Percent > 100 {
			errs = append(errs, field.Invalid(sp.Child("percent"), s.Percent, "must be between 0 and 100"))
		}
		sum += s.Percent
		for m, h := range s.SetHeaders {
			errs = append(errs, checkHeader(sp.Child("setHeaders").Index(m), h.Name, h.Value)...)
		}
	}
	if sum != 100 {
		errs = append(errs, field.Invalid(p.Child("splits"), sum, "percents must sum to 100"))
	}
	return errs
}

func checkHeader(p *field.Path, name, value string) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsHTTPHeaderName(name) {
		errs = append(errs, field.Invalid(p.Child("name"), name, msg))
	}
	if !validHeaderValue(value) {
		errs = append(errs, field.Invalid(p.Child("value"), value, "must be valid UTF-8 without NUL, CR or LF"))
	}
	return errs
}

// hostError is why a host cannot be served, or "" when it can.
func hostError(host string) string {
	if msgs := validation.IsDNS1123Subdomain(host); len(msgs) > 0 {
		return strings.Join(msgs, "; ")
	}
	return ""
}

func validPrefix(p string) bool {
	return strings.HasPrefix(p, "/") && validHeaderValue(p)
}

func validHeader(name, value string) bool {
	return isHeaderName(name) && validHeaderValue(value)
}

// isHeaderName is apimachinery's IsHTTPHeaderName (letters, digits and
// '-') without its regular expression, which cost a quarter of a
// Service's translation.
func isHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func validHeaderValue(v string) bool {
	return utf8.ValidString(v) && !strings.ContainsAny(v, "\x00\r\n")
}
