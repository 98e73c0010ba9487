package kingress

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"knative.dev/networking/pkg/apis/networking"
	"knative.dev/networking/pkg/apis/networking/v1alpha1"
	"knative.dev/networking/pkg/ingress"

	"github.com/kgate/kgate/translator/model"
)

// DefaultClass is the ingress class kgate serves unless told otherwise.
const DefaultClass = "kgate.ingress.networking.knative.dev"

// KnativeDefaultClass is config-network's ingress-class when it is not set
// (Knative's default, Istio's).
const KnativeDefaultClass = "istio.ingress.networking.knative.dev"

// Outcome reasons.
const (
	// ReasonInvalidSpec: the Ingress fails Knative's validation.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonServiceNotFound: a split names a Service that does not exist.
	ReasonServiceNotFound = "ServiceNotFound"
	// ReasonPortNotFound: a split names a port its Service does not have.
	ReasonPortNotFound = "PortNotFound"
	// ReasonUnsupported: the Ingress asks for something kgate cannot serve.
	ReasonUnsupported = "Unsupported"
	// ReasonDomainConflict: an earlier Ingress holds one of the hosts.
	ReasonDomainConflict = "DomainConflict"
)

// h2cAppProtocol is the Service port appProtocol Knative sets on a
// revision's h2c port.
const h2cAppProtocol = "kubernetes.io/h2c"

// Input is one consistent read of the cluster.
type Input struct {
	// Ingresses are every KIngress, of any class.
	Ingresses []*v1alpha1.Ingress
	// Services are by "namespace/name".
	Services map[string]*corev1.Service
	// EndpointSlices are grouped by their label kubernetes.io/service-name.
	EndpointSlices []*discoveryv1.EndpointSlice
	// Class is the class kgate serves; "" is DefaultClass.
	Class string
	// DefaultClass is config-network's ingress-class, the class of an
	// Ingress without the annotation; "" is KnativeDefaultClass.
	DefaultClass string
}

// Result is what Translate makes of an Input.
type Result struct {
	// Model has one Service per Ingress served (key namespace/name), the
	// backends its splits name as Revisions, and their Endpoints.
	Model model.Config `json:"model"`
	// Secrets is the TLS Secret of each host named in a served Ingress's
	// spec.tls.
	Secrets map[string]types.NamespacedName `json:"secrets,omitempty"`
	// Ingresses are by namespace/name, every Ingress of ours.
	Ingresses map[string]Outcome `json:"ingresses,omitempty"`
}

// Outcome is how an Ingress of ours fares: its NetworkConfigured condition.
type Outcome struct {
	Configured bool   `json:"configured"`
	Reason     string `json:"reason,omitempty"`
	Message    string `json:"message,omitempty"`
}

// Ours reports whether ing is of class: its annotation
// networking.knative.dev/ingress.class, else the older
// networking.knative.dev/ingress-class, else defaultClass.
func Ours(ing *v1alpha1.Ingress, class, defaultClass string) bool {
	if ing == nil {
		return false
	}
	a := ing.GetAnnotations()
	if c, ok := a[networking.IngressClassAnnotationKey]; ok {
		return c == class
	}
	if c, ok := a[networking.IngressClassAnnotationAltKey]; ok {
		return c == class
	}
	return defaultClass == class
}

// Translate turns the Ingresses of Input.Class into the model.
func Translate(in Input) Result {
	class, def := in.Class, in.DefaultClass
	if class == "" {
		class = DefaultClass
	}
	if def == "" {
		def = KnativeDefaultClass
	}
	t := &translation{
		in:        in,
		slices:    groupSlices(in.EndpointSlices),
		revisions: map[string]model.Revision{},
		endpoints: map[string]model.RevisionEndpoints{},
		tls:       map[string][]v1alpha1.IngressTLS{},
		res:       Result{Secrets: map[string]types.NamespacedName{}, Ingresses: map[string]Outcome{}},
	}
	seen := map[string]bool{}
	for _, ing := range in.Ingresses {
		if !Ours(ing, class, def) {
			continue
		}
		key := ing.Namespace + "/" + ing.Name
		if seen[key] { // a read has one object per key; keep the first
			continue
		}
		seen[key] = true
		t.ingress(ing)
	}
	t.conflicts()
	t.secrets()
	m := &t.res.Model
	slices.SortFunc(m.Services, func(a, b model.Service) int { return strings.Compare(a.Key(), b.Key()) })
	for _, k := range slices.Sorted(maps.Keys(t.revisions)) {
		m.Revisions = append(m.Revisions, t.revisions[k])
	}
	for _, k := range slices.Sorted(maps.Keys(t.endpoints)) {
		m.Endpoints = append(m.Endpoints, t.endpoints[k])
	}
	if len(t.res.Secrets) == 0 {
		t.res.Secrets = nil
	}
	if len(t.res.Ingresses) == 0 {
		t.res.Ingresses = nil
	}
	return t.res
}

// translation is one Translate call's state.
type translation struct {
	in        Input
	slices    map[string][]*discoveryv1.EndpointSlice // by namespace/service
	revisions map[string]model.Revision               // by key
	endpoints map[string]model.RevisionEndpoints      // by revision key
	tls       map[string][]v1alpha1.IngressTLS        // by Ingress key, of those served
	res       Result
}

// groupSlices groups EndpointSlices by namespace/<kubernetes.io/service-name>.
func groupSlices(all []*discoveryv1.EndpointSlice) map[string][]*discoveryv1.EndpointSlice {
	out := map[string][]*discoveryv1.EndpointSlice{}
	for _, s := range all {
		if s == nil {
			continue
		}
		svc := s.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		k := s.Namespace + "/" + svc
		out[k] = append(out[k], s)
	}
	return out
}

// backend is a split's resolved target.
type backend struct {
	rev model.Revision
	eps *model.RevisionEndpoints // nil for an ExternalName
}

// notConfigured is why an Ingress cannot be served.
type notConfigured struct{ reason, message string }

func (e *notConfigured) Error() string { return e.reason + ": " + e.message }

// ingress translates one Ingress of ours, adding it to the Result.
func (t *translation) ingress(ing *v1alpha1.Ingress) {
	key := ing.Namespace + "/" + ing.Name
	svc, backends, err := t.build(ing)
	if err != nil {
		t.res.Ingresses[key] = Outcome{Reason: err.reason, Message: err.message}
		return
	}
	t.res.Ingresses[key] = Outcome{Configured: true}
	for _, b := range backends {
		t.revisions[b.rev.Key()] = b.rev
		if b.eps != nil {
			t.endpoints[b.rev.Key()] = *b.eps
		}
	}
	t.tls[key] = ing.Spec.TLS
	t.res.Model.Services = append(t.res.Model.Services, svc)
}

// secrets maps each TLS host of the Ingresses served without conflict to
// its Secret; where two name the same host, the first by key wins (the
// validation of Knative's Certificates keeps that from happening).
func (t *translation) secrets() {
	for _, key := range slices.Sorted(maps.Keys(t.tls)) {
		if !t.res.Ingresses[key].Configured {
			continue
		}
		ns := key[:strings.IndexByte(key, '/')]
		for _, tls := range t.tls[key] {
			sns := tls.SecretNamespace
			if sns == "" {
				sns = ns
			}
			for _, h := range tls.Hosts {
				if _, ok := t.res.Secrets[h]; !ok {
					t.res.Secrets[h] = types.NamespacedName{Namespace: sns, Name: tls.SecretName}
				}
			}
		}
	}
}

// build makes the model Service of an Ingress and the backends it needs.
func (t *translation) build(ing *v1alpha1.Ingress) (model.Service, []backend, *notConfigured) {
	if ferr := ing.Validate(context.Background()); ferr != nil {
		return model.Service{}, nil, &notConfigured{ReasonInvalidSpec, ferr.Error()}
	}
	// Knative's probe contract, as every Knative ingress keeps it: a
	// request carrying K-Network-Hash: override has it replaced by the
	// Ingress's hash on its way to the backend (each path doubled by one
	// matching that header). kgate's readiness needs no probe (gateways
	// ACK), but Knative's tools and conformance suite send them.
	ing = ing.DeepCopy()
	if _, err := ingress.InsertProbe(ing); err != nil {
		return model.Service{}, nil, &notConfigured{ReasonInvalidSpec, err.Error()}
	}
	tlsHosts := map[string]bool{}
	for _, tls := range ing.Spec.TLS {
		for _, h := range tls.Hosts {
			tlsHosts[h] = true
		}
	}
	svc := model.Service{Namespace: ing.Namespace, Name: ing.Name, Created: ing.CreationTimestamp.UTC()}
	vhosts := map[string]*model.VirtualHost{}
	var backends []backend
	for _, rule := range ing.Spec.Rules {
		routes := make([]model.Route, 0, len(rule.HTTP.Paths))
		for _, p := range rule.HTTP.Paths {
			r, bs, err := t.route(p)
			if err != nil {
				return model.Service{}, nil, err
			}
			routes = append(routes, r)
			backends = append(backends, bs...)
		}
		vis := model.External
		if rule.Visibility == v1alpha1.IngressVisibilityClusterLocal {
			vis = model.ClusterLocal
		}
		hosts := rule.Hosts
		if len(hosts) == 0 {
			hosts = []string{"*"} // net-kourier: a rule without hosts matches any
		}
		for _, h := range hosts {
			vh := vhosts[h]
			if vh == nil {
				vh = &model.VirtualHost{Host: h, Visibility: vis, TLS: tlsHosts[h]}
				vhosts[h] = vh
			} else if vis == model.External {
				vh.Visibility = model.External // the widest of the rules naming it
			}
			vh.Routes = append(vh.Routes, cloneRoutes(routes)...)
		}
	}
	for _, h := range slices.Sorted(maps.Keys(vhosts)) {
		vh := vhosts[h]
		if vh.TLS && vh.Visibility == model.External && ing.Spec.HTTPOption == v1alpha1.HTTPOptionRedirected {
			vh.HTTP = model.HTTPRedirected
		}
		svc.VirtualHosts = append(svc.VirtualHosts, *vh)
	}
	return svc, backends, nil
}

// cloneRoutes copies routes so that VirtualHosts share no slices.
func cloneRoutes(rs []model.Route) []model.Route {
	out := make([]model.Route, len(rs))
	for i, r := range rs {
		r.Headers = slices.Clone(r.Headers)
		r.SetHeaders = slices.Clone(r.SetHeaders)
		r.Splits = slices.Clone(r.Splits)
		for j := range r.Splits {
			r.Splits[j].SetHeaders = slices.Clone(r.Splits[j].SetHeaders)
		}
		if r.Retries != nil {
			rt := *r.Retries
			r.Retries = &rt
		}
		out[i] = r
	}
	return out
}

// route translates one path of a rule.
func (t *translation) route(p v1alpha1.HTTPIngressPath) (model.Route, []backend, *notConfigured) {
	r := model.Route{PathPrefix: p.Path, HostRewrite: p.RewriteHost, SetHeaders: headers(p.AppendHeaders)}
	if r.PathPrefix == "" {
		r.PathPrefix = "/"
	}
	for _, name := range slices.Sorted(maps.Keys(p.Headers)) {
		v := p.Headers[name].Exact
		if v == "" {
			return r, nil, &notConfigured{ReasonUnsupported,
				fmt.Sprintf("header match %q has no exact value; only exact matches are supported", name)}
		}
		r.Headers = append(r.Headers, model.HeaderMatch{Name: name, Value: v})
	}
	var bs []backend
	for _, s := range p.Splits {
		b, err := t.backend(s.IngressBackend)
		if err != nil {
			return r, nil, err
		}
		pct := s.Percent
		if len(p.Splits) == 1 && pct == 0 {
			pct = 100 // Knative: a single split without percent takes all
		}
		r.Splits = append(r.Splits, model.Split{Revision: b.rev.Key(), Percent: uint32(pct), SetHeaders: headers(s.AppendHeaders)})
		bs = append(bs, b)
	}
	return r, bs, nil
}

// headers renders appendHeaders sorted by name.
func headers(m map[string]string) []model.Header {
	var out []model.Header
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, model.Header{Name: k, Value: m[k]})
	}
	return out
}

// backend resolves a split's Service port.
func (t *translation) backend(b v1alpha1.IngressBackend) (backend, *notConfigured) {
	svcKey := b.ServiceNamespace + "/" + b.ServiceName
	svc := t.in.Services[svcKey]
	if svc == nil {
		return backend{}, &notConfigured{ReasonServiceNotFound, fmt.Sprintf("Service %q not found", svcKey)}
	}
	port, ok := servicePort(svc, b.ServicePort)
	if !ok {
		return backend{}, &notConfigured{ReasonPortNotFound,
			fmt.Sprintf("Service %q has no port %s", svcKey, b.ServicePort.String())}
	}
	rev := model.Revision{Namespace: b.ServiceNamespace, Name: b.ServiceName + ":" + b.ServicePort.String(), Protocol: model.HTTP1}
	if port.Name == "h2c" || port.Name == networking.ServicePortNameH2C ||
		(port.AppProtocol != nil && *port.AppProtocol == h2cAppProtocol) {
		rev.Protocol = model.H2C
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		rev.ExternalName = &model.Endpoint{Address: svc.Spec.ExternalName, Port: uint32(port.Port)}
		return backend{rev: rev}, nil
	}
	eps := &model.RevisionEndpoints{Revision: rev.Key(), Mode: model.Serve, Pods: t.pods(svcKey, port)}
	return backend{rev: rev, eps: eps}, nil
}

// servicePort finds the Service's port a split names, by number or name.
func servicePort(svc *corev1.Service, p intstr.IntOrString) (corev1.ServicePort, bool) {
	for _, sp := range svc.Spec.Ports {
		if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
			continue
		}
		if p.Type == intstr.Int && sp.Port == p.IntVal || p.Type == intstr.String && p.StrVal != "" && sp.Name == p.StrVal {
			return sp, true
		}
	}
	return corev1.ServicePort{}, false
}

// pods are the ready endpoints of a Service port, from its EndpointSlices:
// each slice's port of the Service port's name (as kube-proxy resolves a
// targetPort), for the ready endpoints (a nil ready condition is ready) of
// IP slices; sorted, without duplicates.
func (t *translation) pods(svcKey string, sp corev1.ServicePort) []model.Endpoint {
	seen := map[model.Endpoint]bool{}
	for _, s := range t.slices[svcKey] {
		if s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		var port int32
		for _, p := range s.Ports {
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			proto := corev1.ProtocolTCP
			if p.Protocol != nil {
				proto = *p.Protocol
			}
			if name == sp.Name && proto == corev1.ProtocolTCP && p.Port != nil {
				port = *p.Port
				break
			}
		}
		if port <= 0 || port > 65535 {
			continue
		}
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, a := range ep.Addresses {
				seen[model.Endpoint{Address: a, Port: uint32(port)}] = true
			}
		}
	}
	if len(seen) == 0 {
		return nil
	}
	out := slices.Collect(maps.Keys(seen))
	slices.SortFunc(out, func(a, b model.Endpoint) int {
		if c := strings.Compare(a.Address, b.Address); c != 0 {
			return c
		}
		return int(a.Port) - int(b.Port)
	})
	return out
}

// conflicts marks, among the served Ingresses, those that lost a host: for
// each host the earliest created (then the lowest key) keeps it, as the
// translator's host index decides; the losers stay in the model.
func (t *translation) conflicts() {
	before := func(a, b *model.Service) bool {
		if !a.Created.Equal(b.Created) {
			return a.Created.Before(b.Created)
		}
		return a.Key() < b.Key()
	}
	owner := map[string]*model.Service{}
	for i := range t.res.Model.Services {
		s := &t.res.Model.Services[i]
		for _, vh := range s.VirtualHosts {
			if o := owner[vh.Host]; o == nil || before(s, o) {
				owner[vh.Host] = s
			}
		}
	}
	for i := range t.res.Model.Services {
		s := &t.res.Model.Services[i]
		for _, vh := range s.VirtualHosts { // sorted by host: the first lost one is reported
			if o := owner[vh.Host]; o != s {
				t.res.Ingresses[s.Key()] = Outcome{Reason: ReasonDomainConflict,
					Message: fmt.Sprintf("host %q is already claimed by Ingress %q", vh.Host, o.Key())}
				break
			}
		}
	}
}
