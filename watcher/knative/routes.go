package knative

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kgate/kgate/api/config"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/translator/model"
)

// Headers Knative's ingress uses.
const (
	// HeaderTag selects a tagged target on the Route's main hosts.
	HeaderTag = "Knative-Serving-Tag"
	// HeaderRevision and HeaderNamespace are set on requests sent to a split.
	HeaderRevision  = "Knative-Serving-Revision"
	HeaderNamespace = "Knative-Serving-Namespace"
)

// clusterDomain is the cluster's DNS suffix for cluster-local hosts.
const clusterDomain = "svc.cluster.local"

// target is a traffic target with its revision resolved.
type target struct {
	spec     servingv1.TrafficTarget
	revision string
	// upcoming is, for a Configuration's target, its latest created
	// revision while it is not ready yet: the one traffic moves to next.
	upcoming string
}

// resolve maps traffic targets to revisions: revisionName pins one,
// configurationName follows the Configuration's latest ready revision. On
// failure it returns the AllTrafficAssigned condition to report, preferring
// a definite failure (False) to a wait (Unknown), with Knative's messages.
func (rd *round) resolve(ns string, traffic []servingv1.TrafficTarget) ([]target, *cond) {
	out := []target{} // non-nil: a Route with no traffic is resolved, to nothing
	var wait *cond
	for _, t := range traffic {
		switch {
		case t.RevisionName != "":
			rev := rd.r.revisions[ns+"/"+t.RevisionName]
			if rev == nil {
				c := condFalse(servingv1.ConditionAllTrafficAssigned, ReasonRevisionMissing,
					fmt.Sprintf("Revision %q referenced in traffic not found.", t.RevisionName))
				return nil, &c
			}
			if !rev.ready && wait == nil {
				c := condUnknown(servingv1.ConditionAllTrafficAssigned, ReasonRevisionMissing,
					fmt.Sprintf("Revision %q is not yet ready.", t.RevisionName))
				wait = &c
			}
			out = append(out, target{spec: t, revision: t.RevisionName})
		default:
			e := rd.configs[ns+"/"+t.ConfigurationName]
			if e == nil {
				c := condFalse(servingv1.ConditionAllTrafficAssigned, ReasonConfigurationMissing,
					fmt.Sprintf("Configuration %q referenced in traffic not found.", t.ConfigurationName))
				return nil, &c
			}
			cs := rd.r.configs[ns+"/"+t.ConfigurationName]
			if !e.served || cs == nil {
				c := condFalse(servingv1.ConditionAllTrafficAssigned, ReasonRevisionMissing,
					fmt.Sprintf("Configuration %q does not have any ready Revision.", t.ConfigurationName))
				return nil, &c
			}
			if cs.latestReady == "" {
				if wait == nil {
					c := condUnknown(servingv1.ConditionAllTrafficAssigned, ReasonRevisionMissing,
						fmt.Sprintf("Configuration %q is waiting for a Revision to become ready.", t.ConfigurationName))
					wait = &c
				}
				continue
			}
			tg := target{spec: t, revision: cs.latestReady}
			if cs.latestCreated != cs.latestReady {
				tg.upcoming = cs.latestCreated
			}
			out = append(out, tg)
		}
	}
	if wait != nil {
		return nil, wait
	}
	return out, nil
}

// stillExists reports whether every revision of previously resolved traffic
// still exists (its Configuration may have gone since).
func (rd *round) stillExists(ns string, ts []target) bool {
	for _, t := range ts {
		if rd.r.revisions[ns+"/"+t.revision] == nil {
			return false
		}
	}
	return true
}

// routeStatuses resolves every served Route's traffic into the model and
// its status. A Route whose traffic cannot be resolved keeps serving its
// last resolved traffic, as Knative leaves the Ingress alone then. Once
// every Route has its model, host conflicts are decided and the gateways
// asked whether they serve each Route, and only then is Ready set.
//
// It returns the units carried over whose host conflict this round changed
// (see Reconcile), having done nothing else.
func (rd *round) routeStatuses() (escaped map[string]bool) {
	for _, e := range rd.freshRoutes {
		key := e.key
		rt := e.out
		if !e.served {
			e.cond.set(condFalse(servingv1.ConditionReady, ReasonInvalidSpec, invalidMessage(e.invalid, false)))
			continue
		}
		rt.Status.ObservedGeneration = rt.Generation
		rt.Status.Address = &servingv1.Addressable{URL: rd.url(rt.Name+"."+rt.Namespace+"."+clusterDomain, false)}

		targets, bad := rd.resolve(rt.Namespace, rt.Spec.Traffic)
		if bad == nil {
			rd.r.routed[key] = targets
			e.cond.set(condTrue(servingv1.ConditionAllTrafficAssigned))
		} else {
			e.cond.set(*bad)
			if bad.status == corev1.ConditionFalse {
				rd.problem(e.src, "spec.traffic", bad.message)
			}
			targets = rd.r.routed[key]
			if !rd.stillExists(rt.Namespace, targets) {
				targets = nil
				delete(rd.r.routed, key)
			}
		}
		ro := rd.rollout(key, rt, targets, bad == nil)

		main, err := rd.hosts(rt, "")
		if err != nil {
			rd.problem(e.src, "", err.Error())
			e.cond.set(condFalse(servingv1.ConditionIngressReady, ReasonInvalidHost, err.Error()))
		} else {
			net := rd.r.settings.Network
			e.external = main.external != ""
			e.tls = downgrade{external: net.ExternalTLS && e.external, local: net.ClusterLocalTLS}
			rt.Status.URL = rd.url(main.primary(rt), main.external != "")
			switch svc, traffic, err := rd.build(rt, main, targets, ro); {
			case err != nil:
				rd.problem(e.src, "", err.Error())
				e.cond.set(condFalse(servingv1.ConditionIngressReady, ReasonInvalidHost, err.Error()))
			case targets == nil:
				e.cond.set(condUnknown(servingv1.ConditionIngressReady, ReasonIngressNotConfigured, "Ingress has not yet been reconciled."))
			default:
				svc.Created = rt.CreationTimestamp.Time
				e.model = svc
				rt.Status.Traffic = traffic
				e.cond.set(condTrue(servingv1.ConditionIngressReady))
			}
		}
	}
	rd.mappingModels()
	rd.challengeRoutes() // ACME HTTP-01 solvers first on their hosts (challenges.go)
	if escaped := rd.claimHosts(); len(escaped) > 0 {
		return escaped
	}
	rd.forgetRollouts()
	for _, e := range rd.freshRoutes {
		key := e.key
		if !e.served {
			continue
		}
		if e.model != nil && !e.lost {
			e.recheck = rd.gatewaysServe(*e.model, e.cond)
		}
		rd.rolloutStatus(key, e)
		if ro := rd.r.rollouts[key]; ro != nil && ro.inProgress() {
			e.recheck = true
		}
		if c, ok := e.cond[servingv1.ConditionAllTrafficAssigned]; ok && c.status == corev1.ConditionFalse {
			// A revision named but missing may come with any
			// Configuration's next template.
			e.recheck = true
		}
		rt := e.out
		c, down := rd.certificateCondition(servingv1.KindRoute, rt.Namespace, rt.Name, e.tls.external, e.tls.local)
		e.cond.set(c)
		if c.status != corev1.ConditionTrue || down != (downgrade{}) {
			e.recheck = true // the certificate's progress is no declared object's
		}
		rt.Status.URL = down.url(rt.Status.URL, e.external)
		if rt.Status.Address != nil {
			rt.Status.Address = &servingv1.Addressable{URL: down.url(rt.Status.Address.URL, false)}
		}
		for i := range rt.Status.Traffic {
			rt.Status.Traffic[i].URL = down.url(rt.Status.Traffic[i].URL, e.external)
		}
		e.cond.ready(servingv1.ConditionAllTrafficAssigned, servingv1.ConditionIngressReady, ConditionCertificateProvisioned)
		if len(e.invalid) > 0 {
			e.cond.set(condFalse(servingv1.ConditionReady, ReasonInvalidSpec, invalidMessage(e.invalid, true)))
		}
	}
	return nil
}

// gatewaysServe sets IngressReady from whether every gateway that counts
// serves svc (Input.Waiting): Unknown while one does not, True with a
// message naming the gateways left behind and not waited for. Without
// gateways to ask, it leaves c alone. It says whether the gateways held
// svc back or were named: the next round asks again.
func (rd *round) gatewaysServe(svc model.Service, c conds) (again bool) {
	if rd.in.Waiting == nil {
		return false
	}
	switch msg, hold := rd.in.Waiting(svc); {
	case hold:
		c.set(condUnknown(servingv1.ConditionIngressReady, ReasonIngressNotConfigured, msg))
		return true
	case msg != "":
		ready := condTrue(servingv1.ConditionIngressReady)
		ready.message = msg
		c.set(ready)
		return true
	}
	return false
}

// claimHosts decides, among the Routes in the model, which owns each host:
// the earliest created keeps a host claimed by several, and a Route that
// lost one of its hosts serves none of them, with IngressReady False,
// DomainConflict, naming the host and the Route that keeps it. The index
// lives across rounds: a Route that goes frees its hosts for the next.
func (rd *round) claimHosts() (escaped map[string]bool) {
	idx := rd.r.hosts
	if rd.dirty == nil {
		for _, key := range idx.Keys() {
			e, route := rd.routes[key]
			m, mapping := rd.mappings[key]
			if (!route || e.model == nil) && (!mapping || m.model == nil) {
				idx.Delete(key)
			}
		}
		for _, e := range rd.routes {
			if e.model != nil {
				idx.Set(*e.model)
			}
		}
		for _, m := range rd.mappings {
			if m.model != nil {
				idx.Set(*m.model)
			}
		}
	} else {
		// Only the recomputed Routes and the mappings (every round's)
		// move in the index; a Route carried over whose conflict that
		// changes must be recomputed too.
		var changed []string
		for key := range rd.replaced {
			if _, still := rd.routes[key]; !still {
				changed = append(changed, idx.Delete(key)...)
			}
		}
		for key := range rd.prior.mappings {
			if _, still := rd.mappings[key]; !still {
				changed = append(changed, idx.Delete(key)...)
			}
		}
		for _, e := range rd.freshRoutes {
			if e.model != nil {
				changed = append(changed, idx.Set(*e.model)...)
			} else {
				changed = append(changed, idx.Delete(e.key)...)
			}
		}
		for key, m := range rd.mappings {
			if m.model != nil {
				changed = append(changed, idx.Set(*m.model)...)
			} else {
				changed = append(changed, idx.Delete(key)...)
			}
		}
		for _, key := range changed {
			if e, ok := rd.routes[key]; ok && e.gen != rd.gen {
				if escaped == nil {
					escaped = map[string]bool{}
				}
				escaped[e.unit] = true
			}
		}
		if escaped != nil {
			return escaped
		}
	}
	for key, m := range rd.mappings {
		if _, lost := idx.Conflict(key); lost && m.model != nil {
			m.lost = true
		}
	}
	for _, e := range rd.freshRoutes {
		c, lost := idx.Conflict(e.key)
		if !lost || e.model == nil {
			continue
		}
		e.lost = true
		e.cond.set(condFalse(servingv1.ConditionIngressReady, ReasonDomainConflict,
			fmt.Sprintf("host %q is already claimed by Service %q", c.Host, c.Owner)))
	}
	return nil
}

// hostSet is the hosts of one name (the Route's, or a tag's).
type hostSet struct {
	external string   // "" when the Route is cluster-local only
	local    []string // name.ns, name.ns.svc, name.ns.svc.cluster.local
}

// primary is the host of the status URL: the external one, else the full
// cluster-local one.
func (h hostSet) primary(rt *servingv1.Route) string {
	if h.external != "" {
		return h.external
	}
	return h.local[len(h.local)-1]
}

// hosts renders the hosts of a Route (tag "") or of one of its tags: the
// external host from config-network's domain-template (the tag's name from
// its tag-template) with config-domain's domain for the Route's labels, and
// the cluster-local names. A cluster-local Route has no external host.
func (rd *round) hosts(rt *servingv1.Route, tag string) (hostSet, error) {
	net := rd.r.settings.Network
	name := rt.Name
	if tag != "" {
		var err error
		if name, err = net.TagName(tag, rt.Name); err != nil {
			return hostSet{}, err
		}
	}
	var h hostSet
	for _, suffix := range []string{"", ".svc", "." + clusterDomain} {
		h.local = append(h.local, name+"."+rt.Namespace+suffix)
	}
	domain := rd.r.settings.Domain.For(rt.Labels)
	if rt.Labels[config.VisibilityLabel] == config.VisibilityClusterLocal || domain == config.ClusterLocalDomain || domain == "" {
		return h, nil
	}
	ext, err := net.Host(config.DomainTemplateValues{
		Name: name, Namespace: rt.Namespace, Domain: domain,
		Annotations: rt.Annotations, Labels: rt.Labels,
	})
	if err != nil {
		return hostSet{}, err
	}
	if msgs := validation.IsDNS1123Subdomain(ext); len(msgs) > 0 {
		return hostSet{}, fmt.Errorf("host %q rendered by config-network's domain-template is not a valid host name: %s", ext, strings.Join(msgs, "; "))
	}
	h.external = ext
	return h, nil
}

// build makes the model Service of a Route and its status traffic. Main
// hosts route by weight, with a Knative-Serving-Tag header route per tag;
// each tag also gets its own hosts, routing all traffic to its revision.
// A target whose rollout is in progress (ro) splits its share among the
// rollout's revisions, in the weights and in the status, as Knative's; its
// tag's own hosts serve the latest ready revision.
func (rd *round) build(rt *servingv1.Route, main hostSet, targets []target, ro *rollout) (*model.Service, []servingv1.TrafficTarget, error) {
	if targets == nil {
		return nil, nil, nil
	}
	svc := &model.Service{Namespace: rt.Namespace, Name: rt.Name}
	var weighted []model.Split
	index := map[string]int{}
	var revs []string
	var tagRoutes []model.Route
	var tagHosts []model.VirtualHost
	var traffic []servingv1.TrafficTarget
	done := map[*configRollout]bool{}
	for _, t := range targets {
		shares, rolling, ok := ro.split(t, done)
		if !ok {
			continue // an earlier target carries this rollout
		}
		first := len(traffic)
		for _, sh := range shares {
			st := servingv1.TrafficTarget{
				Tag: t.spec.Tag, RevisionName: sh.RevisionName,
				LatestRevision: t.spec.LatestRevision, Percent: t.spec.Percent,
			}
			if rolling {
				st.Percent = int64Ptr(int64(sh.Percent))
			}
			// Targets on one revision are one split, as Knative groups
			// them. A 0 % target stays, at 0 %: the translator keeps the
			// gateways and proxyless clients holding its cluster for
			// when it gets traffic.
			p := uint32(sh.Percent)
			if i, ok := index[sh.RevisionName]; ok {
				weighted[i].Percent += p
			} else {
				index[sh.RevisionName] = len(weighted)
				weighted = append(weighted, rd.split(rt.Namespace, sh.RevisionName, p))
			}
			if p > 0 && !slices.Contains(revs, sh.RevisionName) {
				revs = append(revs, sh.RevisionName)
			}
			traffic = append(traffic, st)
		}
		if t.spec.Tag != "" {
			h, err := rd.hosts(rt, t.spec.Tag)
			if err != nil {
				return nil, nil, err
			}
			for i := first; i < len(traffic); i++ {
				traffic[i].URL = rd.url(h.primary(rt), h.external != "")
			}
			only := model.Route{
				PathPrefix: "/",
				Splits:     []model.Split{rd.split(rt.Namespace, t.revision, 100)},
				Timeout:    rd.timeout([]string{t.revision}, rt.Namespace),
			}
			rd.streamTimeouts(&only, []string{t.revision}, rt.Namespace)
			tagged := only
			tagged.Headers = []model.HeaderMatch{{Name: HeaderTag, Value: t.spec.Tag}}
			tagRoutes = append(tagRoutes, tagged)
			tagHosts = append(tagHosts, rd.virtualHosts(h, []model.Route{only})...)
		}
	}
	// The revision traffic moves to next rides along at 0 % too, for the
	// same reason: its cluster is held before the traffic arrives.
	for _, t := range targets {
		if _, ok := index[t.upcoming]; t.upcoming != "" && !ok {
			index[t.upcoming] = len(weighted)
			weighted = append(weighted, rd.split(rt.Namespace, t.upcoming, 0))
		}
	}
	var routes []model.Route
	routes = append(routes, tagRoutes...)
	if len(revs) > 0 {
		all := model.Route{PathPrefix: "/", Splits: weighted, Timeout: rd.timeout(revs, rt.Namespace)}
		rd.streamTimeouts(&all, revs, rt.Namespace)
		routes = append(routes, all)
	}
	svc.VirtualHosts = append(rd.virtualHosts(main, routes), tagHosts...)
	return svc, traffic, nil
}

// virtualHosts gives every host of h the same routes, served over HTTPS
// too where config-network says so, with its http-protocol for plain HTTP.
func (rd *round) virtualHosts(h hostSet, routes []model.Route) []model.VirtualHost {
	net := rd.r.settings.Network
	vh := func(host string, vis model.Visibility, tls bool) model.VirtualHost {
		v := model.VirtualHost{Host: host, Visibility: vis, Routes: routes}
		if tls {
			v.TLS, v.HTTP = true, model.HTTPPolicy(net.HTTPProtocol)
		}
		return v
	}
	var out []model.VirtualHost
	if h.external != "" {
		out = append(out, vh(h.external, model.External, net.ExternalTLS))
	}
	for _, l := range h.local {
		out = append(out, vh(l, model.ClusterLocal, net.ClusterLocalTLS))
	}
	return out
}

// url is a host's URL: https when config-network serves such hosts
// (external or cluster-local) over TLS.
func (rd *round) url(host string, external bool) *servingv1.URL {
	net := rd.r.settings.Network
	if (external && net.ExternalTLS) || (!external && net.ClusterLocalTLS) {
		return &servingv1.URL{Scheme: "https", Host: host}
	}
	return httpURL(host)
}

func (rd *round) split(ns, rev string, p uint32) model.Split {
	return model.Split{
		Revision: ns + "/" + rev,
		Percent:  p,
		SetHeaders: []model.Header{
			{Name: HeaderRevision, Value: rev},
			{Name: HeaderNamespace, Value: ns},
		},
	}
}

// timeout is the largest timeoutSeconds of the revisions.
func (rd *round) timeout(revs []string, ns string) time.Duration {
	var max time.Duration
	for _, r := range revs {
		if rev := rd.r.revisions[ns+"/"+r]; rev != nil && rev.timeout() > max {
			max = rev.timeout()
		}
	}
	return max
}

func percent(t servingv1.TrafficTarget) uint32 {
	if t.Percent == nil || *t.Percent <= 0 {
		return 0
	}
	if *t.Percent > 100 {
		return 100
	}
	return uint32(*t.Percent)
}

func httpURL(host string) *servingv1.URL {
	return &servingv1.URL{Scheme: "http", Host: host}
}

// serviceStatuses sets each Service's status from its Configuration and
// Route, as Knative's Service reconciler propagates them.
func (rd *round) serviceStatuses() {
	for _, e := range rd.freshServices {
		svc := e.out
		if !e.served {
			e.cond.set(condFalse(servingv1.ConditionReady, ReasonInvalidSpec, invalidMessage(e.invalid, false)))
			continue
		}
		svc.Status.ObservedGeneration = svc.Generation
		key := svc.Namespace + "/" + svc.Name
		cfgCond := condUnknown(servingv1.ConditionConfigurationsReady, "", "")
		routeCond := condUnknown(servingv1.ConditionRoutesReady, "", "")
		for _, kind := range e.notOwned {
			c := condFalse("", ReasonNotOwned, fmt.Sprintf("There is an existing %s %q that we do not own.", kind, svc.Name))
			if kind == servingv1.KindConfiguration {
				c.typ, cfgCond = servingv1.ConditionConfigurationsReady, c
			} else {
				c.typ, routeCond = servingv1.ConditionRoutesReady, c
			}
		}
		if len(e.notOwned) == 0 {
			cfg, route := rd.configs[key], rd.routes[key]
			svc.Status.ConfigurationStatusFields = cfg.out.Status.ConfigurationStatusFields
			svc.Status.RouteStatusFields = clone(route.out.Status.RouteStatusFields)
			cfgCond = mirror(servingv1.ConditionConfigurationsReady, cfg.cond)
			routeCond = mirror(servingv1.ConditionRoutesReady, route.cond)
		}
		e.cond.set(cfgCond)
		e.cond.set(routeCond)
		e.cond.ready(servingv1.ConditionConfigurationsReady, servingv1.ConditionRoutesReady)
		if len(e.invalid) > 0 {
			e.cond.set(condFalse(servingv1.ConditionReady, ReasonInvalidSpec, invalidMessage(e.invalid, true)))
		}
	}
}

// mirror copies a child's Ready condition under another type.
func mirror(t servingv1.ConditionType, child conds) cond {
	c, ok := child[servingv1.ConditionReady]
	if !ok {
		return condUnknown(t, "", "")
	}
	c.typ = t
	if c.status == corev1.ConditionTrue {
		c.reason, c.message = "", ""
	}
	return c
}
