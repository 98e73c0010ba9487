package knative

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kgate/kgate/api/manifest"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/api/serving/v1beta1"
	"github.com/kgate/kgate/translator/model"
)

// dmEntry is a DomainMapping being reconciled.
type dmEntry struct {
	src     manifest.Object
	out     *v1beta1.DomainMapping
	served  bool
	invalid field.ErrorList
	cond    conds
	// model serves the domain with the target Route's routes, the Host
	// rewritten to the Route's cluster-local host, as Knative's mapping
	// does; nil while the reference does not resolve.
	model *model.Service
	// lost says another Route or mapping holds the domain.
	lost bool
	// unclaimed, when set, is why the mapping does not hold its domain
	// (its DomainClaimed condition, False): it is not served.
	unclaimed *cond
}

// mappingKey is the model key of a mapping: "namespace/domain". A domain
// has dots and a Route's name none, so the two never collide.
func mappingKey(ns, domain string) string { return ns + "/" + domain }

// domainMapping accepts a declared DomainMapping (its last valid version
// when the newest is not).
func (rd *round) domainMapping(o manifest.Object) {
	key := objectKey(o.Kind, o.Namespace, o.Name)
	created := rd.firstSeen(key, o.Obj.(*v1beta1.DomainMapping).ObjectMeta)
	check := func(dm *v1beta1.DomainMapping) (*v1beta1.DomainMapping, field.ErrorList) {
		dm.SetDefaults(rd.r.settings.Defaults)
		return dm, v1beta1.ValidateDomainMapping(dm)
	}
	decl, dm, served, errs := accept(rd, key, o.Obj.(*v1beta1.DomainMapping), check)
	rd.fieldProblems(o, errs)
	dm.CreationTimestamp = metav1.NewTime(created)
	dm.Status = v1beta1.DomainMappingStatus{}
	if served {
		dm.Generation = rd.generation(key, decl.Spec)
	}
	rd.mappings[mappingKey(dm.Namespace, dm.Name)] = &dmEntry{src: o, out: dm, served: served, invalid: errs, cond: conds{}}
}

// mappingModels resolves each served mapping's reference to its Route's
// model: the domain routes as the Route's primary host does, over TLS when
// external hosts are served so (or the mapping brings its certificate).
func (rd *round) mappingModels() {
	net := rd.r.settings.Network
	rd.claimDomains()
	for _, e := range rd.mappings {
		dm := e.out
		if !e.served || e.unclaimed != nil {
			continue
		}
		ref := dm.Spec.Ref
		target, ok := rd.routes[ref.Namespace+"/"+ref.Name]
		if !ok || !target.served {
			e.cond.set(condFalse(v1beta1.ConditionReferenceResolved, v1beta1.ReasonResolveFailed,
				fmt.Sprintf("%s %s/%s does not exist", ref.Kind, ref.Namespace, ref.Name)))
			continue
		}
		if target.model == nil || len(target.model.VirtualHosts) == 0 {
			e.cond.set(condUnknown(v1beta1.ConditionReferenceResolved, v1beta1.ReasonResolveFailed,
				fmt.Sprintf("%s %s/%s has no address yet", ref.Kind, ref.Namespace, ref.Name)))
			continue
		}
		e.cond.set(condTrue(v1beta1.ConditionReferenceResolved))
		// The Route's main routes are those of its primary host: its first
		// virtual host (external, else cluster-local; tags come after).
		main := target.model.VirtualHosts[0]
		rewrite := target.out.Name + "." + target.out.Namespace + "." + clusterDomain
		routes := make([]model.Route, 0, len(main.Routes))
		for _, r := range main.Routes {
			r.HostRewrite = rewrite
			routes = append(routes, r)
		}
		tls := net.ExternalTLS || dm.Spec.TLS != nil
		vh := model.VirtualHost{Host: dm.Name, Visibility: model.External, Routes: routes, TLS: tls}
		if tls {
			vh.HTTP = model.HTTPPolicy(net.HTTPProtocol)
		}
		e.model = &model.Service{Namespace: dm.Namespace, Name: dm.Name, Created: dm.CreationTimestamp.Time, VirtualHosts: []model.VirtualHost{vh}}
		scheme := "http"
		if tls {
			scheme = "https"
		}
		dm.Status.URL = &servingv1.URL{Scheme: scheme, Host: dm.Name}
		dm.Status.Address = &servingv1.Addressable{URL: dm.Status.URL}
	}
}

// mappingStatuses sets each mapping's conditions once hosts are claimed and
// the gateways asked whether they serve it.
func (rd *round) mappingStatuses() {
	for _, e := range rd.mappings {
		dm := e.out
		if !e.served {
			e.cond.set(condFalse(servingv1.ConditionReady, ReasonInvalidSpec, invalidMessage(e.invalid, false)))
			continue
		}
		dm.Status.ObservedGeneration = dm.Generation
		switch {
		case e.unclaimed != nil:
			e.cond.set(*e.unclaimed)
			e.cond.set(condUnknown(servingv1.ConditionIngressReady, ReasonIngressNotConfigured, "Ingress has not yet been reconciled."))
		case e.lost:
			// The claim is the domain's: another mapping (or Route) holds it.
			e.cond.set(condFalse(v1beta1.ConditionDomainClaimed, v1beta1.ReasonDomainAlreadyClaimed, v1beta1.MessageDomainAlreadyClaimed))
			e.cond.set(condUnknown(servingv1.ConditionIngressReady, ReasonIngressNotConfigured, "Ingress has not yet been reconciled."))
		default:
			e.cond.set(condTrue(v1beta1.ConditionDomainClaimed))
		}
		switch {
		case dm.Spec.TLS != nil:
			c := condTrue(v1beta1.ConditionCertificateProvisioned)
			c.reason, c.message = v1beta1.ReasonCertificateExternallyProvided, v1beta1.MessageCertificateExternallyProvided
			e.cond.set(c)
		default:
			c, down := rd.certificateCondition(v1beta1.KindDomainMapping, dm.Namespace, dm.Name, rd.r.settings.Network.ExternalTLS, false)
			e.cond.set(c)
			dm.Status.URL = down.url(dm.Status.URL, true)
			if dm.Status.Address != nil {
				dm.Status.Address = &servingv1.Addressable{URL: dm.Status.URL}
			}
		}
		if e.model != nil && !e.lost {
			e.cond.set(condTrue(servingv1.ConditionIngressReady))
			rd.gatewaysServe(*e.model, e.cond)
		} else if e.model == nil {
			e.cond.set(condUnknown(servingv1.ConditionIngressReady, ReasonIngressNotConfigured, "Ingress has not yet been reconciled."))
		}
		e.cond.ready(v1beta1.Conditions...)
		if len(e.invalid) > 0 {
			e.cond.set(condFalse(servingv1.ConditionReady, ReasonInvalidSpec, invalidMessage(e.invalid, true)))
		}
	}
}
