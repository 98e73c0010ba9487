package kube

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	netv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/watcher/kingress"
	"github.com/kgate/kgate/xds"
)

// The KIngress mode: kgate as Knative Serving's ingress, in place of
// Kourier. Knative's route controller writes networking.internal.knative.dev
// Ingresses (KIngresses); those of kgate's class are translated
// (watcher/kingress, pure) into the same model the serving mode builds, and
// served by the same xDS engine to the same gateways. Knative's autoscaler
// and activator decide proxy or serve through the endpoints of each
// revision's Kubernetes Service, which kgate follows (EndpointSlices); it
// runs no autoscaler, creates nothing, and writes only the KIngresses'
// status: NetworkConfigured, LoadBalancerReady once every gateway that
// counts has ACKed the Ingress's routes (no probe requests), and Ready.

// IngressOptions configure the KIngress mode (Options.Ingress).
type IngressOptions struct {
	// Class is the ingress class kgate serves (default ClassName).
	Class string
	// KnativeNamespace holds Knative Serving's config-network, whose
	// ingress-class is the class of Ingresses without an annotation
	// (default knative-serving).
	KnativeNamespace string
	// ClusterDomain is the cluster's DNS suffix, for the load balancers'
	// domainInternal (default cluster.local).
	ClusterDomain string
}

// ClassName is kgate's ingress class, as config-network's ingress-class
// names it.
const ClassName = kingress.DefaultClass

func (o *IngressOptions) defaults() {
	if o.Class == "" {
		o.Class = ClassName
	}
	if o.KnativeNamespace == "" {
		o.KnativeNamespace = "knative-serving"
	}
	if o.ClusterDomain == "" {
		o.ClusterDomain = "cluster.local"
	}
}

// IngressLeaseName is the KIngress mode's leader election Lease.
const IngressLeaseName = "kgate-ingress"

// ingressSnapshot is one read of what the KIngress mode needs.
type ingressSnapshot struct {
	ingresses    []*netv1alpha1.Ingress
	services     map[string]*corev1.Service
	slices       []*discoveryv1.EndpointSlice
	defaultClass string
}

// watchIngresses registers the KIngress mode's informers: every change asks
// for a round.
func (c *Controller) watchIngresses(ctx context.Context) error {
	round := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.trigger() },
		UpdateFunc: func(any, any) { c.trigger() },
		DeleteFunc: func(any) { c.trigger() },
	}
	for _, obj := range []client.Object{&netv1alpha1.Ingress{}, &corev1.Service{}, &discoveryv1.EndpointSlice{}, &corev1.ConfigMap{}} {
		inf, err := c.mgr.GetCache().GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("watching %T: %w", obj, err)
		}
		if _, err := inf.AddEventHandler(round); err != nil {
			return fmt.Errorf("watching %T: %w", obj, err)
		}
	}
	return nil
}

// readIngresses lists the KIngresses, Services and EndpointSlices, and
// config-network's ingress-class.
func (c *Controller) readIngresses(ctx context.Context) (*ingressSnapshot, error) {
	var ings netv1alpha1.IngressList
	var svcs corev1.ServiceList
	var slices discoveryv1.EndpointSliceList
	for what, list := range map[string]client.ObjectList{"Ingresses": &ings, "Services": &svcs, "EndpointSlices": &slices} {
		if err := c.client.List(ctx, list); err != nil {
			return nil, fmt.Errorf("listing %s: %w", what, err)
		}
	}
	s := &ingressSnapshot{services: make(map[string]*corev1.Service, len(svcs.Items)), defaultClass: kingress.KnativeDefaultClass}
	for i := range ings.Items {
		s.ingresses = append(s.ingresses, &ings.Items[i])
	}
	for i := range svcs.Items {
		o := &svcs.Items[i]
		s.services[o.Namespace+"/"+o.Name] = o
	}
	for i := range slices.Items {
		s.slices = append(s.slices, &slices.Items[i])
	}
	var cm corev1.ConfigMap
	switch err := c.client.Get(ctx, client.ObjectKey{Namespace: c.opts.Ingress.KnativeNamespace, Name: "config-network"}, &cm); {
	case err == nil:
		// Knative reads the older ingress.class, then ingress-class.
		for _, key := range []string{"ingress.class", "ingress-class"} {
			if v := strings.TrimSpace(cm.Data[key]); v != "" {
				s.defaultClass = v
			}
		}
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("reading config-network: %w", err)
	}
	return s, nil
}

// ingressRound translates every KIngress of kgate's class, serves the
// result, and queues the statuses that changed. held says an Ingress waits
// for a gateway: a gateway going stale marks no event, so the caller
// rounds again later.
func (c *Controller) ingressRound(ctx context.Context) (held bool, err error) {
	s, err := c.readIngresses(ctx)
	if err != nil {
		return false, err
	}
	ic := c.opts.Ingress
	res := kingress.Translate(kingress.Input{
		Ingresses: s.ingresses, Services: s.services, EndpointSlices: s.slices,
		Class: ic.Class, DefaultClass: s.defaultClass,
	})
	if err := c.engine.Update(res.Model); err != nil {
		c.log.Error("pushing the KIngresses' routing", "error", err)
	}
	c.tls.sync(ingressCertificates(res, c.opts.DefaultCertificateSecret))
	models := make(map[string]model.Service, len(res.Model.Services))
	for _, svc := range res.Model.Services {
		models[svc.Key()] = svc
	}
	lb := c.loadBalancers()
	for _, ing := range s.ingresses {
		key := ing.Namespace + "/" + ing.Name
		out, ours := res.Ingresses[key]
		if !ours {
			continue // another class: never touched
		}
		svc, inModel := models[key]
		hold := false
		if out.Configured && inModel {
			_, hold = c.engine.Waiting(svc)
		}
		held = held || hold
		putStatus(c, "Ingress/"+key, nil, ing, func(o *netv1alpha1.Ingress) {
			o.Status = ingressStatus(o, out, inModel, hold, lb)
		})
	}
	return held, nil
}

// loadBalancers are the gateways' Services, by their cluster-local names:
// the public one (ExternalIP rules) and the private one (ClusterLocal).
func (c *Controller) loadBalancers() [2]netv1alpha1.LoadBalancerIngressStatus {
	name := func(svc string) string {
		return svc + "." + c.opts.SystemNamespace + ".svc." + c.opts.Ingress.ClusterDomain
	}
	return [2]netv1alpha1.LoadBalancerIngressStatus{
		{DomainInternal: name(c.opts.GatewayService)},
		{DomainInternal: name(c.opts.InternalGatewayService)},
	}
}

// ingressStatus is an Ingress's status as Knative's ingress
// implementations set it, starting from its current one so that
// conditions that do not change keep their transition times.
func ingressStatus(ing *netv1alpha1.Ingress, out kingress.Outcome, inModel, hold bool, lb [2]netv1alpha1.LoadBalancerIngressStatus) netv1alpha1.IngressStatus {
	st := *ing.Status.DeepCopy()
	st.InitializeConditions()
	st.ObservedGeneration = ing.Generation
	switch {
	case !out.Configured:
		st.MarkIngressNotReady(out.Reason, out.Message)
		st.MarkLoadBalancerFailed(out.Reason, out.Message)
	case !inModel, hold:
		// Configured, not yet served by every gateway that counts.
		st.MarkNetworkConfigured()
		st.MarkLoadBalancerNotReady()
	default:
		st.MarkNetworkConfigured()
		st.MarkLoadBalancerReady([]netv1alpha1.LoadBalancerIngressStatus{lb[0]}, []netv1alpha1.LoadBalancerIngressStatus{lb[1]})
	}
	return st
}

// ingressCertificates says which Secret each host served over TLS takes
// its certificate from: the KIngress's spec.tls, else the default
// certificate; with a default, translator.DefaultCertificate too.
func ingressCertificates(res kingress.Result, def types.NamespacedName) map[string]types.NamespacedName {
	want := map[string]types.NamespacedName{}
	for _, svc := range res.Model.Services {
		for _, vh := range svc.VirtualHosts {
			if !vh.TLS {
				continue
			}
			want[vh.Host] = def
			if ref, ok := res.Secrets[vh.Host]; ok {
				want[vh.Host] = ref
			}
		}
	}
	if def.Name != "" {
		want[translator.DefaultCertificate] = def
	}
	return want
}

// leadIngress is the KIngress mode's leader: the control plane's
// certificates, the first round, then serve xDS and round on every change,
// and again while an Ingress waits for a gateway (one going stale marks no
// event).
func (c *Controller) leadIngress(ctx context.Context, start time.Time) error {
	if err := c.certs.Ensure(ctx); err != nil {
		return fmt.Errorf("the control plane's certificates: %w", err)
	}
	go c.certs.Run(ctx, c.opts.CertCheckInterval)
	go c.writes.run(ctx)
	c.tls.watch = informerWatch(ctx, c.secretsClient)
	defer c.tls.stop()
	held, err := c.ingressRound(ctx)
	if err != nil {
		return fmt.Errorf("the first round: %w", err)
	}
	errs, err := c.serveXDS(ctx, start, "serving xDS for KIngresses", "class", c.opts.Ingress.Class)
	if err != nil {
		return err
	}
	defer c.serving.Store(false)

	recheck := max(time.Second, cmp.Or(c.opts.StaleAfter, xds.DefaultStaleAfter)/2)
	first := noRound
	if held {
		first = c.opts.Debounce
	}
	return c.rounds(ctx, errs, nil, first, "reconciling KIngresses", func(ctx context.Context) (time.Duration, error) {
		held, err := c.ingressRound(ctx)
		if held {
			return recheck, err
		}
		return noRound, err
	})
}
