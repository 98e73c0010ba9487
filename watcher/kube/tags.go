package kube

import (
	"slices"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kgate/kgate/api/config"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
)

// routeServiceNames are the names of a served Route's ExternalName
// Services, as Knative names its placeholder Services: the Route's own
// name, and for each tag in its traffic the tag's name from config-network's
// tag-template ({{.Tag}}-{{.Name}} by default). Each makes
// <name>.<namespace>.svc.cluster.local resolve to the internal gateway,
// which routes a tag's cluster-local hosts to the tag's revision. A tag
// whose rendered name cannot name a Service gets none (the reconciler
// reports a template that does not render).
func routeServiceNames(net config.Network, rt *servingv1.Route) []string {
	names := []string{rt.Name}
	for _, t := range rt.Status.Traffic {
		if t.Tag == "" {
			continue
		}
		name, err := net.TagName(t.Tag, rt.Name)
		if err != nil || len(validation.IsDNS1035Label(name)) > 0 || slices.Contains(names, name) {
			continue
		}
		names = append(names, name)
	}
	return names
}

// routeServicesByRoute indexes the snapshot's Route Services by the Route
// that controls them ("namespace/route"), so that a Route's Services are
// found without a scan of all of them per Route.
func routeServicesByRoute(s *snapshot) map[string][]string {
	out := map[string][]string{}
	for key, o := range s.placeholders {
		if ref, ok := controllerOf(o.OwnerReferences, servingv1.KindRoute); ok {
			rk := o.Namespace + "/" + ref.Name
			out[rk] = append(out[rk], key)
		}
	}
	return out
}

// pruneTagServices deletes the Services of a served Route's tags that its
// traffic no longer names (a tag removed or renamed, or the tag-template
// changed), as Knative deletes the placeholder Services a Route no longer
// wants. Only Services this Route controls go; owned lists the snapshot's
// keys of those (routeServicesByRoute).
func (c *Controller) pruneTagServices(s *snapshot, rt *servingv1.Route, names []string, owned []string) {
	for _, key := range owned {
		o := s.placeholders[key]
		ref, _ := controllerOf(o.OwnerReferences, servingv1.KindRoute)
		if ref.UID != rt.UID || slices.Contains(names, o.Name) {
			continue
		}
		c.deleteLater("RouteService/"+key, o)
	}
}
