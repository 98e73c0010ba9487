package translator

import (
	"cmp"
	"slices"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"github.com/kgate/kgate/translator/model"
)

func translate(cfg model.Config, opts Options) Output {
	idx := NewHostIndex()
	services := map[string]model.Service{}
	for _, svc := range cfg.Services {
		idx.Set(svc)
		services[svc.Key()] = svc // a repeated key: the last one wins, as in the index
	}
	out := Listeners(opts)
	for key, svc := range services {
		if _, lost := idx.Conflict(key); !lost {
			out.merge(Service(svc, opts))
		}
	}
	for _, rev := range cfg.Revisions {
		out.merge(Revision(rev, opts))
	}
	for _, ep := range cfg.Endpoints {
		out.merge(Endpoints(ep, opts))
	}
	out.Conflicts = idx.Conflicts()
	sortOutput(&out)
	return out
}

func (o *Output) merge(p Output) {
	o.Listeners = append(o.Listeners, p.Listeners...)
	o.APIListeners = append(o.APIListeners, p.APIListeners...)
	o.ScopedRoutes = append(o.ScopedRoutes, p.ScopedRoutes...)
	o.Routes = append(o.Routes, p.Routes...)
	o.Clusters = append(o.Clusters, p.Clusters...)
	o.Endpoints = append(o.Endpoints, p.Endpoints...)
	o.Conflicts = append(o.Conflicts, p.Conflicts...)
}

type named interface{ GetName() string }

func sortByName[T named](s []T) {
	slices.SortStableFunc(s, func(a, b T) int { return cmp.Compare(a.GetName(), b.GetName()) })
}

func sortOutput(o *Output) {
	sortByName(o.Listeners)
	sortByName(o.APIListeners)
	sortByName(o.ScopedRoutes)
	sortByName(o.Routes)
	sortByName(o.Clusters)
	slices.SortStableFunc(o.Endpoints, func(a, b *endpointv3.ClusterLoadAssignment) int {
		return cmp.Compare(a.GetClusterName(), b.GetClusterName())
	})
	slices.SortStableFunc(o.Conflicts, func(a, b Conflict) int { return cmp.Compare(a.Service, b.Service) })
}
