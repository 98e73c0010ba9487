package kube

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/api/manifest"
	networkingv1alpha1 "github.com/kgate/kgate/api/networking/v1alpha1"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/api/serving/v1beta1"
	"github.com/kgate/kgate/autoscale/loop"
	deploykube "github.com/kgate/kgate/deploy/kube"
	"github.com/kgate/kgate/watcher"
	"github.com/kgate/kgate/watcher/knative"
)

// roundState is what rounds remember between them.
type roundState struct {
	// base is the configuration standing for absent ConfigMaps, last set.
	base *config.Config
	// scaled are the revisions handed to the autoscaler, by the Result's
	// object, and
	// scaledConfig the config-autoscaler it last had (configureAutoscaler).
	scaled           map[*servingv1.Revision]scaledRevision
	scaledGen        uint64
	scaledConfig     config.Autoscaler
	scaledConfigured bool
	// issuer is config-certmanager's last good issuerRef and
	// clusterLocalIssuerRef (nil: none); issuerBad the bad values last
	// logged.
	issuer    [2]*IssuerRef
	issuerBad [2]string
	// certificates are the round's kgate Certificates (snapshot's), which
	// certificateState reads while the pipeline reconciles.
	certificates map[string]*unstructured.Unstructured
	// wildcardRoutes are the Routes a namespace wildcard Certificate
	// covers (Route key → its name), as the last round found them
	// (namespaces.go); wildcardWarned the last namespace-wildcard-cert-selector
	// warning logged.
	wildcardRoutes map[string]string
	wildcardWarned string
	// collected are the garbage-collected Revisions still in the cache,
	// with the UID each had (gc.go).
	collected collectedRevisions
	// settled are the writes found needless, by write key (publish.go).
	settled map[string]settledMark
	// marksBound is how many marks settled may hold before it starts over
	// (marksBound, set by publish).
	marksBound int
	// publishLimit is the write backlog at which a publish stops (0: none;
	// publishFull); the publishing goroutine's (publisher.go).
	publishLimit int
	// kept are the objects of the last round (keep), and declared those
	// the reconciler was handed (declarations).
	kept     keptObjects
	declared struct {
		services       *declaredSet[*servingv1.Service]
		configurations *declaredSet[*servingv1.Configuration]
		routes         *declaredSet[*servingv1.Route]
	}
	// readyCertificates are the kgate Certificates Ready last round, and
	// fullNext asks the next round to recompute everything (round).
	readyCertificates map[string]bool
	fullNext          bool
	// published is when a round last queued its writes (writesLater).
	published time.Time
	// objects is the last round's Change.Objects, whose array the next
	// round reuses (change).
	objects []manifest.Object
}

// declarations are the objects to hand the reconciler: each of now, or
// the one handed last round while only its status, resourceVersion and
// managed fields have changed since. The reconciler reads declarations
// (metadata and spec), and tells what changed by pointer: a status kgate
// wrote itself then recomputes nothing. last also remembers the cache's
// object each was compared with, so that one is not compared again. last
// is updated in place and returned: a new map of 10,000 each round was
// garbage. Its keys stay sorted: new ones are merged in, not sorted again
// with the 10,000 others every round.
func declarations[T client.Object](last *declaredSet[T], now map[string]T, spec func(T) any) *declaredSet[T] {
	if last == nil {
		last = &declaredSet[T]{byKey: make(map[string]declared[T], len(now))}
	}
	var added []string
	for key, o := range now {
		d, ok := last.byKey[key]
		switch {
		case ok && (any(d.seen) == any(o) || any(d.decl) == any(o)):
			continue
		case ok && sameDeclaration(d.decl, o, spec):
			d.seen = o
		default:
			if !ok {
				added = append(added, key)
			}
			d = declared[T]{decl: o, seen: o}
		}
		last.byKey[key] = d
	}
	if len(last.byKey) != len(now) { // byKey holds every key of now, and some gone
		for key := range last.byKey {
			if _, ok := now[key]; !ok {
				delete(last.byKey, key)
			}
		}
		last.keys = slices.DeleteFunc(last.keys, func(key string) bool { _, ok := now[key]; return !ok })
	}
	if len(added) > 0 {
		slices.Sort(added)
		last.keys = mergeSorted(last.keys, added)
	}
	return last
}

// declaredSet is what declarations keep of a kind: by key, and the keys
// sorted.
type declaredSet[T any] struct {
	byKey map[string]declared[T]
	keys  []string
}

// sorted is the objects to hand the reconciler, in key order.
func (s *declaredSet[T]) sorted(yield func(T) bool) {
	for _, key := range s.keys {
		if !yield(s.byKey[key].decl) {
			return
		}
	}
}

// mergeSorted merges b into a, both sorted and with no key in common.
func mergeSorted(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0] < b[0] {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}

// declared is the object handed to the reconciler for a key, and the
// cache's object last found to declare the same.
type declared[T any] struct{ decl, seen T }

// sameDeclaration says whether two versions of an object declare the same:
// they differ at most in status, resourceVersion and managed fields.
func sameDeclaration[T client.Object](a, b T, spec func(T) any) bool {
	return a.GetUID() == b.GetUID() && a.GetGeneration() == b.GetGeneration() &&
		maps.Equal(a.GetLabels(), b.GetLabels()) && maps.Equal(a.GetAnnotations(), b.GetAnnotations()) &&
		equality.Semantic.DeepEqual(a.GetOwnerReferences(), b.GetOwnerReferences()) &&
		equality.Semantic.DeepEqual(a.GetDeletionTimestamp(), b.GetDeletionTimestamp()) &&
		equality.Semantic.DeepEqual(spec(a), spec(b))
}

// listed indexes by key the objects of a kind that want says (nil: all),
// listed through the client: a controller without informers (a test's
// fake client) reads so (list); with informers, a round reads the
// indexes their events keep (index.go). kept is the last round's index
// (keep).
func listed[T any, P interface {
	*T
	client.Object
}](ctx context.Context, c *Controller, list client.ObjectList, key func(client.Object) string, want func(client.Object) bool, kept *map[string]P) (map[string]P, error) {
	out := make(map[string]P, len(*kept)) // as many as last round, or about
	if err := c.client.List(ctx, list); err != nil {
		return nil, err
	}
	if err := meta.EachListItem(list, func(o runtime.Object) error {
		if p, ok := o.(P); ok && (want == nil || want(p)) {
			out[key(p)] = p
		}
		return nil
	}); err != nil {
		return nil, err
	}
	*kept = keep(*kept, out)
	return *kept, nil
}

// informerStore is the store of the informer of obj's kind (an object or
// a list of them), when the controller reads through an informer cache:
// its own objects, by "namespace/name", never copied.
func (c *Controller) informerStore(obj runtime.Object) (toolscache.Store, bool) {
	if c.mgr == nil {
		return nil, false
	}
	gvk, err := apiutil.GVKForObject(obj, c.mgr.GetScheme())
	if err != nil {
		return nil, false
	}
	gvk.Kind = strings.TrimSuffix(gvk.Kind, "List")
	inf, err := c.mgr.GetCache().GetInformerForKind(context.Background(), gvk)
	if err != nil {
		return nil, false
	}
	sii, ok := inf.(toolscache.SharedIndexInformer)
	if !ok {
		return nil, false
	}
	return sii.GetStore(), true
}

// readyCertificates are the names ("namespace/name") of the Ready ones.
func readyCertificates(crts map[string]*unstructured.Unstructured) map[string]bool {
	out := map[string]bool{}
	for key, crt := range crts {
		if certificateReady(crt) {
			out[key] = true
		}
	}
	return out
}

// lostAny says whether a key of before is not in after.
func lostAny(before, after map[string]bool) bool {
	for k := range before {
		if !after[k] {
			return true
		}
	}
	return false
}

func sameIssuers(a, b [2]*IssuerRef) bool {
	for i := range a {
		if (a[i] == nil) != (b[i] == nil) || (a[i] != nil && *a[i] != *b[i]) {
			return false
		}
	}
	return true
}

// keptObjects are a round's objects, by key, as keep keeps them.
type keptObjects struct {
	services       map[string]*servingv1.Service
	configurations map[string]*servingv1.Configuration
	routes         map[string]*servingv1.Route
	mappings       map[string]*v1beta1.DomainMapping
	claims         map[string]*networkingv1alpha1.ClusterDomainClaim
	revisions      map[string]*servingv1.Revision
	configMaps     map[string]*corev1.ConfigMap
	deployments    map[string]*appsv1.Deployment
	private        map[string]*corev1.Service
	placeholders   map[string]*corev1.Service
}

// keep replaces, in now, each object that has not changed since the last
// round (same UID and resourceVersion) with the last round's, and returns
// now to keep for the next round. A List hands out new structs every
// time; with keep an unchanged object is the same pointer round after
// round, which is how the reconciler tells what changed (its incremental
// rounds, knative.Reconciler) and publish what it compared already
// (settled). An object kept is moved out of its List's array into its
// own: a pointer into the array would hold all of it, one array per round.
func keep[T any, P interface {
	*T
	client.Object
}](last, now map[string]P) map[string]P {
	for key, o := range now {
		if old, ok := last[key]; ok && old.GetUID() == o.GetUID() && old.GetResourceVersion() == o.GetResourceVersion() {
			now[key] = old
			continue
		}
		own := new(T)
		*own = *o
		now[key] = P(own)
	}
	return now
}

func (s *roundState) init() {
	s.scaled = map[*servingv1.Revision]scaledRevision{}
	s.settled = map[string]settledMark{}
	s.marksBound = 4096
}

// snapshot is one consistent read of the informer caches.
type snapshot struct {
	services       map[string]*servingv1.Service
	configurations map[string]*servingv1.Configuration
	routes         map[string]*servingv1.Route
	mappings       map[string]*v1beta1.DomainMapping
	claims         map[string]*networkingv1alpha1.ClusterDomainClaim // by domain
	revisions      map[string]*servingv1.Revision
	deployments    map[string]*appsv1.Deployment // by revision key
	private        map[string]*corev1.Service    // by revision key
	placeholders   map[string]*corev1.Service    // the Routes' and their tags' (tags.go), by key
	configMaps     []*corev1.ConfigMap
	gateway        *corev1.Service
	certificates   map[string]*unstructured.Unstructured             // kgate's cert-manager Certificates
	challenges     []knative.Challenge                               // ACME HTTP-01 (challenges.go)
	namespaces     map[string]*corev1.Namespace                      // by name
	hpas           map[string]*autoscalingv2.HorizontalPodAutoscaler // by revision key (hpa.go)
}

// The keys and kinds a round reads the caches by.
func byKey(o client.Object) string { return o.GetNamespace() + "/" + o.GetName() }

// byRevision keys a revision's Deployment and private Service by the
// revision's key.
func byRevision(o client.Object) string {
	return o.GetNamespace() + "/" + o.GetLabels()[deploykube.LabelRevision]
}

func hasRevision(o client.Object) bool { _, ok := o.GetLabels()[deploykube.LabelRevision]; return ok }

// isPrivate says whether a Kubernetes Service is a revision's private one.
func isPrivate(o client.Object) bool {
	return o.GetLabels()[deploykube.LabelServiceType] == deploykube.ServiceTypePrivate && hasRevision(o)
}

// isRouteService says whether a Kubernetes Service is a Route's
// ExternalName Service, or its tag's (tags.go).
func isRouteService(o client.Object) bool { _, ok := o.GetLabels()[LabelRoute]; return ok }

// read lists everything a round needs from the caches: from the indexes
// the informers' events keep (index.go), or, without them (a test's fake
// client), by listing.
func (c *Controller) read(ctx context.Context) (*snapshot, error) {
	s := &snapshot{}
	if x := c.idx; x != nil {
		s.services, s.configurations, s.routes = x.services.take(), x.configurations.take(), x.routes.take()
		s.revisions, s.mappings, s.claims = x.revisions.take(), x.mappings.take(), x.claims.take()
		s.deployments, s.private, s.placeholders = x.deployments.take(), x.private.take(), x.placeholders.take()
	} else if err := c.list(ctx, s); err != nil {
		return nil, err
	}
	var cms corev1.ConfigMapList
	if err := c.client.List(ctx, &cms, client.InNamespace(c.opts.SystemNamespace)); err != nil {
		return nil, fmt.Errorf("listing ConfigMaps: %w", err)
	}
	byName := make(map[string]*corev1.ConfigMap, len(cms.Items))
	for i := range cms.Items {
		byName[cms.Items[i].Name] = &cms.Items[i]
	}
	c.st.kept.configMaps = keep(c.st.kept.configMaps, byName)
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		s.configMaps = append(s.configMaps, byName[name])
	}
	if err := c.readCertificates(ctx, s); err != nil {
		return nil, err
	}
	if err := c.readChallenges(ctx, s); err != nil {
		return nil, err
	}
	if err := c.readNamespaces(ctx, s); err != nil {
		return nil, err
	}
	if err := c.readHPAs(ctx, s); err != nil {
		return nil, err
	}
	var gw corev1.Service
	if err := c.client.Get(ctx, client.ObjectKey{Namespace: c.opts.SystemNamespace, Name: c.opts.GatewayService}, &gw); err == nil {
		s.gateway = &gw
	}
	return s, nil
}

// list fills s's objects by listing, for a controller without indexes.
func (c *Controller) list(ctx context.Context, s *snapshot) error {
	var err error
	if s.services, err = listed(ctx, c, &servingv1.ServiceList{}, byKey, nil, &c.st.kept.services); err != nil {
		return fmt.Errorf("listing Services: %w", err)
	}
	if s.configurations, err = listed(ctx, c, &servingv1.ConfigurationList{}, byKey, nil, &c.st.kept.configurations); err != nil {
		return fmt.Errorf("listing Configurations: %w", err)
	}
	if s.routes, err = listed(ctx, c, &servingv1.RouteList{}, byKey, nil, &c.st.kept.routes); err != nil {
		return fmt.Errorf("listing Routes: %w", err)
	}
	if s.revisions, err = listed(ctx, c, &servingv1.RevisionList{}, byKey, nil, &c.st.kept.revisions); err != nil {
		return fmt.Errorf("listing Revisions: %w", err)
	}
	if s.mappings, err = listed(ctx, c, &v1beta1.DomainMappingList{}, byKey, nil, &c.st.kept.mappings); err != nil {
		return fmt.Errorf("listing DomainMappings: %w", err)
	}
	if s.claims, err = listed(ctx, c, &networkingv1alpha1.ClusterDomainClaimList{}, client.Object.GetName, nil, &c.st.kept.claims); err != nil {
		return fmt.Errorf("listing ClusterDomainClaims: %w", err)
	}
	if s.deployments, err = listed(ctx, c, &appsv1.DeploymentList{}, byRevision, hasRevision, &c.st.kept.deployments); err != nil {
		return fmt.Errorf("listing Deployments: %w", err)
	}
	if s.private, err = listed(ctx, c, &corev1.ServiceList{}, byRevision, isPrivate, &c.st.kept.private); err != nil {
		return fmt.Errorf("listing private Services: %w", err)
	}
	if s.placeholders, err = listed(ctx, c, &corev1.ServiceList{}, byKey, isRouteService, &c.st.kept.placeholders); err != nil {
		return fmt.Errorf("listing the Routes' Services: %w", err)
	}
	return nil
}

// restore loads the reconciler with what the API server stores, so that
// the first round derives what the previous leader did.
func (c *Controller) restore(ctx context.Context) error {
	s, err := c.read(ctx)
	if err != nil {
		return fmt.Errorf("restoring: %w", err)
	}
	st := knative.Stored{}
	for _, o := range s.services {
		st.Services = append(st.Services, o)
	}
	for _, o := range s.configurations {
		st.Configurations = append(st.Configurations, o)
	}
	for _, o := range s.routes {
		st.Routes = append(st.Routes, o)
	}
	// A mapping's conditions keep their transition times across a restart.
	for _, o := range s.mappings {
		st.DomainMappings = append(st.DomainMappings, o)
	}
	var ready []string
	for key, o := range s.revisions {
		st.Revisions = append(st.Revisions, o)
		// A revision once Ready stays Ready at zero.
		if isTrue(o.Status.Conditions, servingv1.ConditionReady) {
			ready = append(ready, key)
		}
	}
	c.pipe.Restore(st, ready)
	c.log.Info("restored from the API server", "services", len(s.services), "configurations", len(s.configurations),
		"routes", len(s.routes), "domainmappings", len(s.mappings), "revisions", len(s.revisions))
	return nil
}

// round reconciles once: the revisions go to the autoscaler, the pipeline
// pushes the model to the gateways, and the objects and statuses go to
// the API server through the write queue.
//
// A new revision the autoscaler will start at zero is Ready in the pass
// that makes it (startsAtZero), so a Service created at 0 reaches the
// gateways in one pass. When the autoscaler makes a revision Ready some
// other way meanwhile (a change queued in the pipeline), a second pass in
// the same round routes it, and its status is written Ready the first
// time.
func (c *Controller) round(ctx context.Context) error {
	// Only kgate's own writes coming back since the last round, and its
	// writes wait behind a backlog anyway: the round would recompute
	// nothing, push nothing and leave its writes to a later one. At 10,000
	// Services every status landing brought such a round, back to back
	// for minutes. The round that follows once the backlog drains
	// (writesLater) runs whole.
	if !c.relevant.Swap(false) && c.deferWrites && c.backlogged() {
		return nil
	}
	t0 := time.Now()
	s, err := c.read(ctx)
	if err != nil {
		return err
	}
	t1 := time.Now()
	issuer := c.st.issuer
	c.issuers(s)
	c.st.certificates = s.certificates
	// A Route recomputes by itself while its certificate is not Ready
	// (knative.Reconciler); the whole model does when one that was stops
	// being so, or the issuers change.
	ready := readyCertificates(s.certificates)
	full := c.st.fullNext || !sameIssuers(issuer, c.st.issuer) || lostAny(c.st.readyCertificates, ready)
	c.st.readyCertificates, c.st.fullNext = ready, false
	ch := c.change(s)
	ch.Full = full
	// The autoscaler takes each pass's revisions before its model is
	// pushed: a new revision's endpoints go before the routes naming it.
	scale := func(res *knative.Result) { c.configureAutoscaler(ctx, res) }
	res := c.pipe.ApplyScaling(ch, scale)
	t2 := time.Now()
	passes := 1
	var second time.Duration
	if c.pipe.Pending() {
		// A revision the autoscaler made Ready (at zero, in a way the
		// pipeline did not foresee: knative.Input.StartsAtZero), or a
		// change meanwhile: routed in this round, not the next.
		p0 := time.Now()
		res = c.pipe.ApplyScaling(watcher.Change{}, scale)
		second = time.Since(p0)
		passes++
	}
	c.unservedChallenges(s.challenges, res)
	c.noteCollected(s, res)
	t3 := time.Now()
	var t4 time.Time
	wrote := false
	defer func() {
		c.log.Debug("round", "read", t1.Sub(t0).Round(time.Millisecond), "reconcile", t2.Sub(t1).Round(time.Millisecond),
			"second-pass", second.Round(time.Millisecond), "challenges", (t3.Sub(t2) - second).Round(time.Millisecond), "certificates", t4.Sub(t3).Round(time.Millisecond),
			"publish", time.Since(t4).Round(time.Millisecond), "services", len(s.services), "recomputed", res.Recomputed, "passes", passes, "wrote", wrote)
	}()
	// The certificates follow the hosts at once, like the routes: a host
	// served over TLS is never without its certificate longer than needed.
	// A Route's host whose cert-manager Certificate is Ready takes its
	// Secret.
	wanted, wildcard := wantedCertificates(res, c.issuers(s), selectedNamespaces(res.Config.Network.NamespaceWildcardCertSelector, s.namespaces))
	if !maps.Equal(wildcard, c.st.wildcardRoutes) {
		// The reconciler read the old coverage (certificateState): again.
		c.st.wildcardRoutes = wildcard
		c.st.fullNext = true
		c.trigger()
	}
	c.warnWildcard(res)
	issued, pending := certificateSecrets(s, wanted)
	keepServing(issued, pending, c.tls.servedFrom)
	c.tls.sync(certificateHosts(res, c.opts.DefaultCertificateSecret, issued))
	t4 = time.Now()
	if c.writesLater() {
		return nil
	}
	if c.beforePublish != nil {
		c.beforePublish()
	}
	c.st.published, wrote = time.Now(), true
	w := &publication{s: s, res: res, wanted: wanted, collected: c.deleteCollected(s)}
	if c.pub != nil {
		c.pub.offer(w) // behind the rounds (publisher.go)
		return nil
	}
	c.publishAll(w)
	return nil
}

// writesLater says whether this round leaves its writes to a later one,
// when the serving loop runs the rounds (deferWrites):
//   - a change is waiting already, so that the next round comes at once,
//     and a round queued its writes less than Options.WriteEvery ago; or
//   - the write queue holds Options.WriteBacklog writes or more: what this
//     round queued would only wait behind them, and the round that
//     follows once they drain below it (whenBelow) queues the latest.
//
// Writes are level-based (each round compares the whole Result with the
// cache), so a later round's cover this one's. While Services are created
// by the thousand, rounds come back to back, and comparing and queueing
// their writes was the longest part of each: a new Service waited for it
// before the round that routes it could start. Routing (the pipeline's
// push) and certificates are never deferred.
func (c *Controller) writesLater() bool {
	if !c.deferWrites {
		return false
	}
	if c.opts.WriteEvery > 0 && len(c.kick) > 0 && time.Since(c.st.published) < c.opts.WriteEvery {
		return true
	}
	return c.backlogged()
}

// backlogged says whether Options.WriteBacklog writes or more wait in the
// write queue; if so, a round is asked for once they fall below it.
func (c *Controller) backlogged() bool {
	if n := c.opts.WriteBacklog; n > 0 && c.writes.backlog() >= n {
		c.writes.whenBelow(n, c.trigger)
		return true
	}
	return false
}

// change turns the cache into the pipeline's input: every declared object
// (Services, and the Configurations and Routes no Service owns), the
// ConfigMaps, what the Deployments say of each revision, and the base
// configuration when the gateway's address changed it. The objects are the
// round's own (the cache's List copies them) and the pipeline only reads
// them.
func (c *Controller) change(s *snapshot) watcher.Change {
	ch := watcher.Change{Replace: true, Failed: map[string]knative.Failure{}, Base: c.base(s)}
	// Most Configurations and Routes are derived, and not declarations.
	standalone := max(0, len(s.configurations)-len(s.services)) + max(0, len(s.routes)-len(s.services))
	// The pipeline copies the objects (watcher.Pipeline.apply): the last
	// round's slice is reused.
	ch.Objects = slices.Grow(c.st.objects[:0], len(s.services)+standalone+len(s.mappings)+len(s.claims)+len(s.configMaps))
	defer func() { c.st.objects = ch.Objects }()
	ch.Challenges = s.challenges // ACME HTTP-01 (challenges.go)
	ch.NoGC = noGCMarks(s)       // marks put on live Revisions (gc.go)
	// The declarations: an object whose status alone changed (kgate's own
	// writes, thousands while Services become Ready) is handed over as it
	// was, so the reconciler sees nothing new in it.
	c.st.declared.services = declarations(c.st.declared.services, s.services, func(o *servingv1.Service) any { return &o.Spec })
	for o := range c.st.declared.services.sorted {
		ch.Objects = append(ch.Objects, object(servingv1.KindService, o.Namespace, o.Name, o))
	}
	c.st.declared.configurations = declarations(c.st.declared.configurations, s.configurations, func(o *servingv1.Configuration) any { return &o.Spec })
	for o := range c.st.declared.configurations.sorted {
		if isDerived(o.OwnerReferences) {
			continue // derived: the reconciler's output, not its input
		}
		ch.Objects = append(ch.Objects, object(servingv1.KindConfiguration, o.Namespace, o.Name, o))
	}
	c.st.declared.routes = declarations(c.st.declared.routes, s.routes, func(o *servingv1.Route) any { return &o.Spec })
	for o := range c.st.declared.routes.sorted {
		if isDerived(o.OwnerReferences) {
			continue
		}
		ch.Objects = append(ch.Objects, object(servingv1.KindRoute, o.Namespace, o.Name, o))
	}
	for _, o := range sortedValues(s.mappings) {
		ch.Objects = append(ch.Objects, manifest.Object{File: "kubernetes", APIVersion: v1beta1.APIVersion, Kind: v1beta1.KindDomainMapping, Namespace: o.Namespace, Name: o.Name, Obj: o})
	}
	for _, o := range sortedValues(s.claims) {
		ch.Objects = append(ch.Objects, manifest.Object{File: "kubernetes", APIVersion: networkingv1alpha1.APIVersion, Kind: networkingv1alpha1.KindClusterDomainClaim, Name: o.Name, Obj: o})
	}
	for _, cm := range s.configMaps {
		if cm.Name == config.DomainConfigName && !hasDomains(cm.Data) {
			continue // no domain configured: magic DNS (the base) applies
		}
		if cm.Name == ConfigCertManager {
			continue // the controller's own (certmanager.go), not the reconciler's
		}
		ch.Objects = append(ch.Objects, object("ConfigMap", cm.Namespace, cm.Name, cm))
	}
	for key, d := range s.deployments {
		if f, failed := deploymentFailure(d); failed {
			ch.Failed[key] = f
		} else if d.Status.ReadyReplicas > 0 {
			ch.Ready = append(ch.Ready, key)
		}
	}
	return ch
}

func object(kind, ns, name string, obj any) manifest.Object {
	api := servingv1.APIVersion
	if kind == "ConfigMap" {
		api = "v1"
	}
	return manifest.Object{File: "kubernetes", APIVersion: api, Kind: kind, Namespace: ns, Name: name, Obj: obj}
}

// hasDomains says whether config-domain names a domain (Knative's
// _example key does not count).
func hasDomains(data map[string]string) bool {
	for k := range data {
		if k != "_example" {
			return true
		}
	}
	return false
}

// deploymentFailure is why a revision's Deployment cannot run it, in
// Knative's words: its rollout ran out of time, or its pods cannot be
// created.
func deploymentFailure(d *appsv1.Deployment) (knative.Failure, bool) {
	for _, c := range d.Status.Conditions {
		switch {
		case c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded":
			return knative.Failure{Reason: "ProgressDeadlineExceeded", Message: "Initial scale was never achieved: " + c.Message}, true
		case c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue:
			return knative.Failure{Reason: c.Reason, Message: c.Message}, true
		}
	}
	return knative.Failure{}, false
}

// base makes the configuration of absent ConfigMaps follow the gateway:
// with no domain configured, Routes are served at <external IP>.sslip.io
// once the gateway Service has one (Knative's magic DNS), example.com
// until then. It is nil while that does not change.
func (c *Controller) base(s *snapshot) *config.Config {
	base := config.Default()
	if ip := externalIP(s.gateway); ip != "" {
		base.Domain = config.Domain{Domains: map[string]map[string]string{ip + ".sslip.io": {}}}
	}
	if c.st.base != nil && equalDomains(c.st.base.Domain, base.Domain) {
		return nil
	}
	c.st.base = &base
	c.log.Info("default domain", "domain", domainNames(base.Domain))
	return &base
}

func externalIP(gw *corev1.Service) string {
	if gw == nil {
		return ""
	}
	for _, in := range gw.Status.LoadBalancer.Ingress {
		if in.IP != "" {
			return in.IP
		}
	}
	return ""
}

// configureAutoscaler hands the autoscaler loop the revisions that changed
// since the last call (loop.Update): new ones, those the reconciler made
// again (a Result keeps a revision's object while it does not change),
// those whose traffic came or went, and every one when config-autoscaler
// changed; and those gone, whose scale is forgotten. At 10,000 revisions,
// handing over all of them twice a round was a tenth of the controller's
// CPU while Services were created.
func (c *Controller) configureAutoscaler(ctx context.Context, res *knative.Result) {
	cfg := res.Config.Autoscaler
	all := !c.st.scaledConfigured || !reflect.DeepEqual(c.st.scaledConfig, cfg)
	c.st.scaledConfig, c.st.scaledConfigured = cfg, true
	c.st.scaledGen++
	gen := c.st.scaledGen
	var set []loop.Revision
	// By the Result's object: a revision handed over before keeps its key,
	// which is not built again.
	for _, rev := range res.Revisions {
		was, ok := c.st.scaled[rev]
		key := was.key
		if !ok {
			key = rev.Namespace + "/" + rev.Name
		}
		routed := res.Routed[key]
		if all || !ok || was.routed != routed {
			set = append(set, watcher.ScaledRevision(res, key, rev))
		}
		c.st.scaled[rev] = scaledRevision{key: key, routed: routed, gen: gen}
	}
	var gone []string
	if len(c.st.scaled) > len(res.Revisions) {
		// Objects the Result no longer holds: a revision gone, or one made
		// again (handed over above under the same key).
		again := make(map[string]bool, len(set))
		for _, r := range set {
			again[r.Key] = true
		}
		for rev, was := range c.st.scaled {
			if was.gen != gen {
				delete(c.st.scaled, rev)
				if !again[was.key] {
					gone = append(gone, was.key)
				}
			}
		}
	}
	markExternal(cfg, set) // the HPA class (hpa.go)
	for _, err := range c.loop.Update(ctx, time.Now(), cfg, set, gone) {
		c.log.Error("not autoscaling a revision", "error", err)
	}
	for _, key := range gone {
		c.scales.forget(key)
	}
}

// scaledRevision is what the autoscaler loop was last handed of a
// revision, by the Result's object: its key, whether a Route sent it
// traffic, and the call that saw it last (configureAutoscaler).
type scaledRevision struct {
	key    string
	routed bool
	gen    uint64
}

func isTrue(conds []servingv1.Condition, t servingv1.ConditionType) bool {
	for _, c := range conds {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// isDerived says whether an object is derived from a Service: its
// controller is a Knative Service.
func isDerived(refs []metav1.OwnerReference) bool {
	_, ok := controllerOf(refs, servingv1.KindService)
	return ok
}
