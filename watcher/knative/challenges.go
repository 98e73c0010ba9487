package knative

import (
	"sort"

	"github.com/kgate/kgate/translator/model"
)

// ACME HTTP-01 challenges, as Knative's net-certmanager serves them.
//
// When cert-manager solves an HTTP-01 challenge for a host it runs a solver
// (a Pod behind a Service) that answers GET
// /.well-known/acme-challenge/<token> with the key; the ACME server fetches
// that URL from the host, over plain HTTP, so it reaches the gateways. The
// reconciler routes exactly that path on that host (a Route's or a
// DomainMapping's) to the solver, ahead of the host's own routes. The
// translator keeps routes under the ACME prefix ahead of http-protocol's
// redirect (or 404) too, so the solver is reached over plain HTTP whatever
// http-protocol says.
//
// The solver is a backend like a revision: a model.Revision named
// ACMERevisionPrefix + the Service's name (no Knative Revision can have the
// name: ':' is not allowed in object names), whose endpoints, in Serve
// mode, are the solver Service's address, in Result.Model.Endpoints: the
// reconciler decides those endpoints, not the autoscaler, which only ever
// handles the Knative Revisions (Result.Revisions).

// ACMERevisionPrefix starts the model revision name of an HTTP-01 solver.
const ACMERevisionPrefix = "acme:"

// Challenge is an ACME HTTP-01 challenge being solved: requests for Path
// on Host go to the solver Service at Address:Port.
type Challenge struct {
	// Host is the challenge's DNS name (acme.cert-manager.io Challenge's
	// spec.dnsName).
	Host string
	// Path is the exact path the ACME server fetches:
	// /.well-known/acme-challenge/<token>.
	Path string
	// Namespace and Service name the solver's Service.
	Namespace, Service string
	// Port is the solver's port on Address (cert-manager's: 8089).
	Port uint32
	// Address is the solver Service's cluster IP (or a host name the
	// gateways resolve).
	Address string
}

// challengeRoutes puts each challenge's route first on every virtual host
// of its host, in the Routes' and DomainMappings' models, and adds its
// solver to the model. A challenge for a host none serves is left out.
func (rd *round) challengeRoutes() {
	if len(rd.in.Challenges) == 0 {
		return
	}
	var models []*model.Service
	for _, e := range rd.routes {
		if e.model != nil {
			models = append(models, e.model)
		}
	}
	for _, e := range rd.mappings {
		if e.model != nil {
			models = append(models, e.model)
		}
	}
	byHost := map[string][]*model.VirtualHost{}
	for _, svc := range models {
		for i := range svc.VirtualHosts {
			vh := &svc.VirtualHosts[i]
			byHost[vh.Host] = append(byHost[vh.Host], vh)
		}
	}
	solvers := map[string]model.RevisionEndpoints{}
	for _, ch := range rd.in.Challenges {
		vhs := byHost[ch.Host]
		if len(vhs) == 0 || ch.Path == "" || ch.Address == "" || ch.Port == 0 {
			continue
		}
		rev := model.Revision{Namespace: ch.Namespace, Name: ACMERevisionPrefix + ch.Service, Protocol: model.HTTP1}
		r := model.Route{PathPrefix: ch.Path, Splits: []model.Split{{Revision: rev.Key(), Percent: 100}}}
		for _, vh := range vhs {
			// A new slice: virtual hosts of one Route share theirs.
			vh.Routes = append([]model.Route{r}, vh.Routes...)
		}
		if _, ok := solvers[rev.Key()]; !ok {
			rd.res.Model.Revisions = append(rd.res.Model.Revisions, rev)
		}
		solvers[rev.Key()] = model.RevisionEndpoints{
			Revision: rev.Key(), Mode: model.Serve,
			Pods: []model.Endpoint{{Address: ch.Address, Port: ch.Port}},
		}
	}
	for _, ep := range solvers {
		rd.res.Model.Endpoints = append(rd.res.Model.Endpoints, ep)
	}
	sort.Slice(rd.res.Model.Endpoints, func(i, j int) bool {
		return rd.res.Model.Endpoints[i].Revision < rd.res.Model.Endpoints[j].Revision
	})
}
