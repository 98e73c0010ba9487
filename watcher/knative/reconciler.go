package knative

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/api/fielderr"
	"github.com/kgate/kgate/api/manifest"
	networkingv1alpha1 "github.com/kgate/kgate/api/networking/v1alpha1"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/api/serving/v1beta1"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
)

// Labels Knative puts on the objects it derives.
const (
	LabelService                 = "serving.knative.dev/service"
	LabelConfiguration           = "serving.knative.dev/configuration"
	LabelConfigurationGeneration = "serving.knative.dev/configurationGeneration"
)

// lastApplied is kubectl's annotation, which Knative does not copy to the
// objects it derives.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// Input is everything one reconciliation reads.
type Input struct {
	// Objects are the declared objects (Services, Configurations, Routes and
	// the ConfigMaps config-domain, config-network, config-defaults,
	// config-autoscaler and config-gc), in a stable order: when two declare the same
	// object, the first wins. The reconciler reads the slice again in the
	// next round, to tell what changed: hand it a new slice, never this one
	// changed.
	Objects []manifest.Object
	// Ready says which revisions ("namespace/name") are ready. nil means no
	// deploy is attached and every revision counts as ready.
	Ready map[string]bool
	// Failed are the revisions the deployer cannot run, and why: they are
	// not Ready, with the failure's reason and message.
	Failed map[string]Failure
	// StartsAtZero, when set, says whether the autoscaler's first decision
	// for a revision made now, with these annotations and container
	// concurrency under config-autoscaler cfg, is zero replicas. Such a
	// revision is Ready from the round that makes it (Knative: Ready at
	// zero, not Active), before Ready names it: its Route serves it in that
	// round, where waiting for the autoscaler's word took a second one.
	// It is asked once per revision, when made.
	StartsAtZero func(now time.Time, cfg config.Autoscaler, annotations map[string]string, containerConcurrency int64) bool
	// Waiting, when set, says whether every gateway serves a Route's
	// networking as the round builds it: while one does not (hold), the
	// Route's IngressReady is Unknown, IngressNotConfigured, with msg, as
	// in Knative until every gateway serves a Route. A msg without hold
	// (gateways left behind, not waited for) goes on the True condition.
	// nil means gateways are not tracked: a Route is ready once it is in
	// the model.
	Waiting func(model.Service) (msg string, hold bool)
	// Certificate, when set, says how far the certificate of a Route's or
	// DomainMapping's hosts served over TLS has come (local: its
	// cluster-local hosts'). nil: the certificates come from elsewhere
	// (kgate local's CA, a default certificate) and count as provisioned.
	Certificate func(kind, namespace, name string, local bool) CertificateState
	// Challenges are the ACME HTTP-01 challenges being solved: each one's
	// path is routed to its solver on its host, first (challenges.go).
	Challenges []Challenge
	// NoGC are the revisions ("namespace/name") whose live object is
	// marked KeyNoGC now (Kubernetes mode: kubectl annotate or label after
	// the revision was made or restored): garbage collection never takes
	// them, as the marks the reconciler holds. nil: no live marks.
	NoGC map[string]bool
	// Full makes the round recompute every object, not only those
	// something changed for (incremental.go): a safety net that a mode
	// runs now and then.
	Full bool
}

// Failure is why a revision cannot run, in Knative's terms.
type Failure struct {
	// Reason is a CamelCase word, as in a condition's reason.
	Reason string
	// Message tells the user what is wrong and how to fix it.
	Message string
}

// Result is the output of one reconciliation.
type Result struct {
	// Model is what to serve: the Services (one per Route that resolved)
	// and every Revision, sorted by key; no Endpoints (deploy and the
	// autoscaler add those) but the ACME HTTP-01 solvers' (Input.Challenges),
	// whose revisions are in Model.Revisions and nowhere else.
	Model model.Config
	// Routed are the revisions ("namespace/name") some route sends traffic
	// to; the others are unreachable, which the autoscaler needs to know.
	Routed map[string]bool
	// The objects with their status, sorted by namespace and name.
	// Configurations and Routes include those derived from Services.
	Services       []*servingv1.Service
	Configurations []*servingv1.Configuration
	Routes         []*servingv1.Route
	// DomainMappings are the serving.knative.dev/v1beta1 DomainMappings.
	DomainMappings []*v1beta1.DomainMapping
	// Revisions are every revision that exists (the history included), with
	// labels serving.knative.dev/configuration (and /service when a Service
	// owns it), the template's annotations and the defaulted spec: what
	// deploy runs.
	Revisions []*servingv1.Revision
	// Config is the ConfigMaps in effect (Knative's defaults for absent
	// ones); Config.Autoscaler is config-autoscaler for the autoscaler.
	Config config.Config
	// Problems are every error found in the declared objects this round.
	Problems []Problem
	// NextStep is when a gradual rollout's next step is due (rollout.go):
	// the mode runs a pass then. Zero when no step is due.
	NextStep time.Time
	// Conflicts are the Routes that lost a host to an earlier one, sorted:
	// they are left out of Model and their status says DomainConflict.
	Conflicts []translator.Conflict
	// Collected are the revisions ("namespace/name") garbage-collected this
	// round (config-gc): gone from Revisions, they are for Kubernetes mode
	// to delete.
	Collected []string
	// NextCollection is when the next revision turns old enough for
	// garbage collection (gc.go), which no event marks: the mode runs a
	// pass then. Zero when none will.
	NextCollection time.Time
	// DomainClaims are the claims the DomainMappings hold that no declared
	// ClusterDomainClaim makes (autocreate-cluster-domain-claims), sorted
	// by domain: Kubernetes mode creates them, as Knative does.
	DomainClaims []DomainClaim
	// Changed, when not nil, holds the keys ("namespace/name") of the
	// Model's Services and Revisions this round may have added, changed or
	// removed: every other one is as in the previous round's Result. nil
	// after a full round: any may have changed.
	Changed *ModelChange
	// Recomputed is how many units (a Service with its Configuration and
	// Route, a standalone Configuration or Route) this round computed;
	// the others it carried over (incremental.go).
	Recomputed int
	// ReadyAtZero are the revisions ("namespace/name") this round made
	// that start at zero (Input.StartsAtZero), so are Ready unless they
	// fail: the caller counts them among Input.Ready from now on.
	ReadyAtZero []string
}

// ModelChange names what a round may have changed in the model, by key.
type ModelChange struct {
	Services, Revisions map[string]bool
}

// DomainClaim delegates a domain to a namespace: a ClusterDomainClaim's
// name and spec.namespace.
type DomainClaim struct {
	Domain, Namespace string
}

// Problem is an error in a declared object.
type Problem struct {
	File string
	Line int
	// Kind, Namespace and Name identify the object.
	Kind, Namespace, Name string
	// Field is the field path, "" when the problem is the whole object.
	Field   string
	Message string
}

// String renders "file:line: Kind namespace/name: field: message".
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "%s %s/%s: ", p.Kind, p.Namespace, p.Name)
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Reconciler turns declared objects into the model and statuses. It is pure
// (no I/O; time comes from the injected clock) but keeps state across
// rounds, as Knative keeps it in etcd. It is not safe for concurrent use.
type Reconciler struct {
	now func() time.Time
	// declScratch is group's slices of the last attempt, reused: nothing
	// keeps them past an attempt, and 10,000 declarations a round were a
	// good part of its garbage.
	declScratch [3][]decl

	seen      map[string]time.Time   // object key → when first seen
	good      map[string]any         // object key → last valid declared version
	gens      map[string]*generation // object key → generation
	configs   map[string]*configState
	revisions map[string]*revisionState
	routed    map[string][]target // route key → last resolved traffic
	// rollouts are each Route's gradual rollouts (rollout.go), by route
	// key, as its serving.knative.dev/rollout annotation records them.
	rollouts map[string]*rollout
	// hosts decides which Route owns a host claimed by several; it holds
	// every Route in the model, so that a change re-decides only the
	// claimants of the hosts it touches.
	hosts    *translator.HostIndex
	settings settings
	// base is the configuration of absent ConfigMaps.
	base settings
	// ceiling bounds replicas where config-autoscaler sets no
	// max-scale-limit (config.Autoscaler.Bounded); 0 is none.
	ceiling int32
	// autocreate is autocreate-cluster-domain-claims where config-network
	// does not set it: Knative's false unless SetAutocreateDomainClaims.
	autocreate bool

	last *Result
	// prev holds the conditions of the stored objects Restore loaded, by
	// object key, for the first round after it; later rounds read the
	// previous round's (prior).
	prev map[string][]servingv1.Condition

	// prior is the last round: an incremental round carries over its
	// entries for the units nothing touched (incremental.go). nil makes
	// the next round a full one.
	prior *round
	// refs are, by the object key of a Configuration or Revision, the
	// units whose Route reads it (incremental.go).
	refs map[string]map[string]bool
	// gone are the revisions the last round removed, with their
	// Configurations: the next round recomputes what read them.
	gone []goneRevision
	// global is what the last round read that every unit depends on: a
	// change of it makes the next round a full one.
	global globalInputs
	// active counts, by revision ("namespace/name"), the Routes that
	// refer to it (routingStates); nextGC is the last NextCollection.
	active map[string]int
	nextGC time.Time
	// rounds counts the rounds run (round.gen).
	rounds uint64
	// splitTo are the revisions some Route's model sends traffic to, and
	// splitCount how many do (countRouted).
	splitTo    map[string]bool
	splitCount map[string]int
	// revOrder are the revisions sorted (sortedRevisions); revsNew came
	// since, and revsMoved says one went or the set is unknown.
	revOrder  []*revisionState
	revsNew   []*revisionState
	revsMoved bool
}

// generation counts the changes of an object's spec, as the API server's
// metadata.generation does.
type generation struct {
	n    int64
	spec string
}

// NewReconciler returns a Reconciler reading time from now.
func NewReconciler(now func() time.Time) *Reconciler {
	return &Reconciler{
		now:       now,
		seen:      map[string]time.Time{},
		good:      map[string]any{},
		gens:      map[string]*generation{},
		configs:   map[string]*configState{},
		revisions: map[string]*revisionState{},
		routed:    map[string][]target{},
		rollouts:  map[string]*rollout{},
		hosts:     translator.NewHostIndex(),
		refs:      map[string]map[string]bool{},
		settings:  defaultSettings(),
		base:      defaultSettings(),
	}
}

// SetBase sets the configuration that stands for absent ConfigMaps
// (Knative's defaults unless set): kgate local, say, serves on
// 127.0.0.1.nip.io when no config-domain says otherwise. It applies from
// the next Reconcile.
func (r *Reconciler) SetBase(cfg config.Config) {
	cfg.Autoscaler = cfg.Autoscaler.Bounded(r.ceiling)
	r.base = cfg
	r.settings = cfg
	r.prior = nil
}

// SetAutocreateDomainClaims sets what autocreate-cluster-domain-claims is
// where config-network does not set it (Knative's default is false; kgate
// local, with one user and no tenants to keep apart, sets true).
func (r *Reconciler) SetAutocreateDomainClaims(on bool) {
	r.autocreate = on
	r.prior = nil
}

// SetReplicaCeiling bounds every revision's replicas by n where
// config-autoscaler sets no max-scale-limit (kgate local: one process per
// replica); 0 removes the bound.
func (r *Reconciler) SetReplicaCeiling(n int32) {
	r.ceiling = n
	r.prior = nil
	r.base.Autoscaler = r.base.Autoscaler.Bounded(n)
	r.settings.Autoscaler = r.settings.Autoscaler.Bounded(n)
}

// objectKey is "Kind/namespace/name".
func objectKey(kind, ns, name string) string { return kind + "/" + ns + "/" + name }

// round is the working state of one reconciliation.
type round struct {
	r   *Reconciler
	in  Input
	now time.Time
	res *Result

	live map[string]bool // object keys present this round

	services []*svcEntry
	// inOrder says the Services came sorted by key and no Configuration
	// or Route came without one (group): the Result's Services,
	// Configurations and Routes are then in order as output makes them.
	inOrder bool
	svcIdx  map[string]*svcEntry // services by "ns/name"
	configs map[string]*cfgEntry // by "ns/name"
	routes  map[string]*routeEntry
	// cfgOrder and routeOrder are configs' and routes' entries in the
	// order they came: sorted when the declarations are (output).
	cfgOrder   []*cfgEntry
	routeOrder []*routeEntry
	// dups are the objects declared more than once, by object key: the
	// declaration served first, then the ignored ones.
	dups map[string][]manifest.Object
	// mappings are the DomainMappings, by "namespace/domain".
	mappings map[string]*dmEntry
	// claims are the declared ClusterDomainClaims: the namespace each
	// delegates its domain to.
	claims map[string]string

	// dirty are the units this round recomputes (incremental.go), by unit
	// key; nil in a full round, which recomputes every unit.
	dirty map[string]bool
	// gen numbers the round (attempts included): an entry whose gen is
	// the round's was computed by it, any other carried over.
	gen uint64
	// fresh* are the entries this round computed; replaced are the
	// previous round's Route entries of the units it recomputed, by key
	// (their Routes recomputed, or gone).
	freshServices []*svcEntry
	freshConfigs  []*cfgEntry
	freshRoutes   []*routeEntry
	replaced      map[string]*routeEntry
	// prior is the previous round (nil: none, or a restore since), whose
	// entries the units not recomputed keep.
	prior *round
	// units are the declared units this round, by unit key: the index in
	// in.Objects of the declaration each was computed from.
	units map[string]int
	// gone are the revisions this round removed.
	gone []goneRevision
	// problemsBy are this round's problems by unit key, for the next
	// round to carry over.
	problemsBy map[string][]Problem
	// mapped are the revisions the DomainMappings route to
	// (routingStates).
	mapped map[string]bool
}

// svcEntry is a Service being reconciled.
type svcEntry struct {
	unit    string // its unit's key (incremental.go)
	gen     uint64 // the round that computed it (round.gen)
	src     manifest.Object
	out     *servingv1.Service // the version served (defaulted), or the invalid one when none is
	served  bool
	invalid field.ErrorList // errors of the newest version
	// notOwned is the kind of a standalone object that holds the name of
	// this Service's Configuration or Route.
	notOwned []string
	cond     conds
}

// cfgEntry is a Configuration being reconciled (standalone or a Service's).
type cfgEntry struct {
	unit    string
	gen     uint64
	key     string // "namespace/name"
	src     manifest.Object
	out     *servingv1.Configuration
	owner   string // the owning Service's name; "" for a standalone one
	served  bool
	invalid field.ErrorList
	cond    conds
}

// routeEntry is a Route being reconciled (standalone or a Service's).
type routeEntry struct {
	unit    string
	gen     uint64
	key     string // "namespace/name"
	src     manifest.Object
	out     *servingv1.Route
	owner   string
	served  bool
	invalid field.ErrorList
	cond    conds
	model   *model.Service
	// lost says the Route lost a host to an earlier one: its model is not
	// served.
	lost bool
	// external says the Route has an external host; tls which of its hosts
	// are served over TLS.
	external bool
	tls      downgrade
	// recheck says the Route's status may change with nothing it reads
	// declared anew (a gateway yet to apply it, a rollout in progress, a
	// certificate being issued): the next round recomputes its unit.
	recheck bool
	// refs are the Configurations and Revisions it reads (object keys;
	// Reconciler.refs), active the revisions it routes as Knative's
	// labeler counts them (activeOf), and splits those its model sends
	// traffic to (Result.Routed).
	refs, active, splits []string
}

// Reconcile runs one round over the declared objects. A round recomputes
// only the units (a Service with its Configuration and Route, a standalone
// Configuration or Route) that something it reads changed for, and carries
// the others over from the previous round (incremental.go); a round after
// a change every unit reads (a ConfigMap, the base, a restore), or with
// in.Full, recomputes everything.
func (r *Reconciler) Reconcile(in Input) *Result {
	var extra map[string]bool
	for attempt := 0; ; attempt++ {
		r.rounds++
		// Sized like the last round's: at 10,000 Services, growing them
		// again every round was a good part of its garbage.
		var size struct{ services, configs, routes int }
		if p := r.prior; p != nil {
			size.services, size.configs, size.routes = len(p.services), len(p.configs), len(p.routes)
		}
		rd := &round{
			r: r, in: in, now: r.now(), res: &Result{}, gen: r.rounds,
			live:       map[string]bool{},
			configs:    make(map[string]*cfgEntry, size.configs),
			routes:     make(map[string]*routeEntry, size.routes),
			svcIdx:     make(map[string]*svcEntry, size.services),
			services:   make([]*svcEntry, 0, size.services),
			cfgOrder:   make([]*cfgEntry, 0, size.configs),
			routeOrder: make([]*routeEntry, 0, size.routes),
			dups:       map[string][]manifest.Object{},
			mappings:   map[string]*dmEntry{},
		}
		if escaped := rd.run(extra, attempt); len(escaped) > 0 {
			// A unit carried over lost or won a host: run again with it,
			// and with every unit this attempt found dirty (it has taken
			// in the revisions' news already).
			extra = escaped
			maps.Copy(extra, rd.dirty)
			continue
		}
		// The next round reads this one's entries, not the one before:
		// holding that would keep every round ever run.
		rd.prior = nil
		r.last, r.prior = rd.res, rd
		return rd.res
	}
}

// run is one attempt at a round. It returns the units carried over whose
// host conflict this round changed, to recompute in another attempt; nil
// once the round is done.
func (rd *round) run(extra map[string]bool, attempt int) (escaped map[string]bool) {
	r := rd.r
	if r.prior == nil {
		r.prev = conditionsOf(r.last)
	} else {
		r.prev = nil
	}
	svcs, cfgs, routes, dms, cms, claims := rd.group()
	defer func() { r.declScratch = [3][]decl{svcs[:0], cfgs[:0], routes[:0]} }()
	rd.dirtyUnits(cms, claims, extra, attempt)
	rd.configMaps(cms)
	rd.domainClaims(claims)
	names := map[string]bool{} // standalone Configuration and Route keys
	for _, d := range cfgs {
		names[d.key] = true
	}
	for _, d := range routes {
		names[d.key] = true
	}
	for _, d := range svcs {
		if !rd.carry(d) {
			rd.service(d.Object, names)
		}
	}
	for _, d := range cfgs {
		if !rd.carry(d) {
			rd.configuration(d.Object)
		}
	}
	for _, d := range routes {
		if !rd.carry(d) {
			rd.route(d.Object)
		}
	}
	for _, o := range dms {
		rd.domainMapping(o)
	}
	rd.revisionStatuses()
	rd.configurationStatuses()
	if escaped := rd.routeStatuses(); len(escaped) > 0 {
		return escaped
	}
	rd.serviceStatuses()
	rd.mappingStatuses()
	rd.duplicateStatuses()
	rd.collect()
	rd.forget()
	rd.output()
	rd.remember()
	return nil
}

// decl is a declared object with its object key (its unit's, for a
// Service, Configuration or Route).
type decl struct {
	key string
	manifest.Object
}

// declared is the input's object i, in its namespace (the default one
// when it names none).
func (in *Input) declared(i int) manifest.Object {
	o := in.Objects[i]
	if o.Namespace == "" {
		o.Namespace = manifest.DefaultNamespace
	}
	return o
}

// group sorts the declared objects by kind, dropping duplicates and
// reporting objects kgate does not read.
func (rd *round) group() (svcs, cfgs, routes []decl, dms, cms, claims []manifest.Object) {
	// The units are most of what is declared: they are found again in
	// rd.units, the others in first.
	first := map[string]int{}
	rd.units = make(map[string]int, len(rd.in.Objects))
	svcs, cfgs, routes = rd.r.declScratch[0][:0], rd.r.declScratch[1][:0], rd.r.declScratch[2][:0]
	rd.r.declScratch = [3][]decl{} // this attempt's until it ends
	sorted := true
	for i := range rd.in.Objects {
		o := rd.in.declared(i)
		if o.Obj == nil {
			continue // skipped by the decoder, which said why
		}
		key := objectKey(o.Kind, o.Namespace, o.Name)
		seen := first
		switch o.Obj.(type) {
		case *servingv1.Service, *servingv1.Configuration, *servingv1.Route:
			seen = rd.units
		}
		if at, dup := seen[key]; dup {
			f := rd.in.declared(at)
			rd.problem(o, "", fmt.Sprintf("declared again (first at %s:%d); this one is ignored", f.File, f.Line))
			if len(rd.dups[key]) == 0 {
				rd.dups[key] = []manifest.Object{f}
			}
			rd.dups[key] = append(rd.dups[key], o)
			continue
		}
		seen[key] = i
		switch o.Obj.(type) {
		case *servingv1.Service:
			if n := len(svcs); n > 0 && CompareKeys(svcs[n-1].Namespace, svcs[n-1].Name, o.Namespace, o.Name) > 0 {
				sorted = false
			}
			svcs = append(svcs, decl{key, o})
		case *servingv1.Configuration:
			cfgs = append(cfgs, decl{key, o})
		case *servingv1.Route:
			routes = append(routes, decl{key, o})
		case *corev1.ConfigMap:
			cms = append(cms, o)
		case *v1beta1.DomainMapping:
			dms = append(dms, o)
		case *networkingv1alpha1.ClusterDomainClaim:
			claims = append(claims, o)
		case *servingv1.Revision:
			rd.problem(o, "", "Revisions are created by Configurations (or Services); a declared Revision is ignored")
		}
	}
	rd.inOrder = sorted && len(cfgs) == 0 && len(routes) == 0
	return svcs, cfgs, routes, dms, cms, claims
}

func (rd *round) problem(o manifest.Object, fieldPath, msg string) {
	rd.res.Problems = append(rd.res.Problems, problemAt(o, fieldPath, msg))
}

func (rd *round) fieldProblems(o manifest.Object, errs field.ErrorList) {
	rd.res.Problems = append(rd.res.Problems, fieldProblems(o, errs)...)
}

// duplicateStatuses makes each object declared more than once not Ready,
// naming every declaration: the first keeps serving (what served before
// keeps serving: the folder source hands the longest-standing declaration
// first), and nothing switches until the others are removed.
func (rd *round) duplicateStatuses() {
	if len(rd.dups) == 0 {
		return
	}
	mark := func(kind, ns, name string, c conds) {
		decls := rd.dups[objectKey(kind, ns, name)]
		if len(decls) == 0 {
			return
		}
		others := make([]string, 0, len(decls)-1)
		for _, d := range decls[1:] {
			others = append(others, fmt.Sprintf("%s:%d", d.File, d.Line))
		}
		c.set(condFalse(servingv1.ConditionReady, ReasonDuplicateDeclaration, fmt.Sprintf(
			"%s %s/%s is declared more than once: %s:%d is served, %s ignored; remove all but one declaration",
			kind, ns, name, decls[0].File, decls[0].Line, strings.Join(others, ", "))))
	}
	for _, e := range rd.services {
		mark(servingv1.KindService, e.out.Namespace, e.out.Name, e.cond)
	}
	for _, e := range rd.configs {
		if e.owner == "" {
			mark(servingv1.KindConfiguration, e.out.Namespace, e.out.Name, e.cond)
		}
	}
	for _, e := range rd.routes {
		if e.owner == "" {
			mark(servingv1.KindRoute, e.out.Namespace, e.out.Name, e.cond)
		}
	}
	for _, e := range rd.mappings {
		mark(v1beta1.KindDomainMapping, e.out.Namespace, e.out.Name, e.cond)
	}
}

// problemAt is a problem in object o, at fieldPath ("" for the whole object).
func problemAt(o manifest.Object, fieldPath, msg string) Problem {
	return Problem{
		File: o.File, Line: o.Line, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name,
		Field: fieldPath, Message: msg,
	}
}

// fieldProblems turns validation errors of object o into problems, one line
// each.
func fieldProblems(o manifest.Object, errs field.ErrorList) []Problem {
	out := make([]Problem, 0, len(errs))
	for _, e := range errs {
		msg := e.Detail
		if msg == "" {
			msg = strings.ToLower(string(e.Type))
		}
		out = append(out, problemAt(o, e.Field, strings.ReplaceAll(msg, "\n", "; ")))
	}
	return out
}

// fieldMessages renders errors as Knative's webhook does ("MESSAGE: PATHS"),
// one line each.
func fieldMessages(errs field.ErrorList) []string {
	msgs := fielderr.Messages(errs)
	for i := range msgs {
		msgs[i] = strings.ReplaceAll(msgs[i], "\n", "; ")
	}
	return msgs
}

// firstSeen returns the creation time of an object: its
// metadata.creationTimestamp when set, else when the reconciler first saw it.
func (rd *round) firstSeen(key string, meta metav1.ObjectMeta) time.Time {
	rd.live[key] = true
	if !meta.CreationTimestamp.IsZero() {
		return meta.CreationTimestamp.Time
	}
	t, ok := rd.r.seen[key]
	if !ok {
		t = rd.now
		rd.r.seen[key] = t
	}
	return t
}

// generation returns the object's generation, bumped when spec changed.
func (rd *round) generation(key string, spec any) int64 {
	s := mustJSON(spec)
	g, ok := rd.r.gens[key]
	if !ok {
		g = &generation{n: 1, spec: s}
		rd.r.gens[key] = g
	} else if g.spec != s {
		g.n++
		g.spec = s
	}
	return g.n
}

// accept validates the newest declared version of an object; when it is
// invalid, the last valid version is used instead (if any). It returns the
// declared version used and its checked (defaulted) form, whether there is
// one to serve, and the errors of the newest version.
func accept[T any](rd *round, key string, decl T, check func(T) (T, field.ErrorList)) (used, checked T, served bool, errs field.ErrorList) {
	checked, errs = check(clone(decl))
	if len(errs) == 0 {
		rd.r.good[key] = clone(decl)
		return decl, checked, true, nil
	}
	if g, ok := rd.r.good[key].(T); ok {
		if c, gerrs := check(clone(g)); len(gerrs) == 0 {
			return g, c, true, errs
		}
	}
	return decl, checked, false, errs
}

// service derives a Service's Configuration and Route.
func (rd *round) service(o manifest.Object, standalone map[string]bool) {
	key := objectKey(o.Kind, o.Namespace, o.Name)
	created := rd.firstSeen(key, o.Obj.(*servingv1.Service).ObjectMeta)
	e := &svcEntry{unit: unitOf(o), gen: rd.gen, src: o, cond: conds{}}
	for _, kind := range []string{servingv1.KindConfiguration, servingv1.KindRoute} {
		if standalone[objectKey(kind, o.Namespace, o.Name)] {
			e.notOwned = append(e.notOwned, kind)
		}
	}
	check := func(s *servingv1.Service) (*servingv1.Service, field.ErrorList) {
		tmpl := clone(s.Spec.Template)
		s.SetDefaults(rd.r.settings.Defaults)
		errs := rd.validator().Service(s)
		if len(errs) == 0 && len(e.notOwned) == 0 {
			_, errs = rd.r.plan(s.Namespace, s.Name, tmpl, field.NewPath("spec", "template"))
		}
		return s, errs
	}
	decl, svc, served, errs := accept(rd, key, o.Obj.(*servingv1.Service), check)
	rd.fieldProblems(o, errs)
	e.out, e.served, e.invalid = svc, served, errs
	svc.CreationTimestamp = metav1.NewTime(created)
	svc.Status = servingv1.ServiceStatus{}
	if served {
		svc.Generation = rd.generation(key, decl.Spec)
	}
	rd.services = append(rd.services, e)
	rd.freshServices = append(rd.freshServices, e)
	rd.svcIdx[svc.Namespace+"/"+svc.Name] = e
	if !served || len(e.notOwned) > 0 {
		return
	}

	labels := withLabel(svc.Labels, LabelService, svc.Name)
	annotations := withoutKey(svc.Annotations, lastApplied)
	cfg := &servingv1.Configuration{
		TypeMeta: metav1.TypeMeta{APIVersion: servingv1.APIVersion, Kind: servingv1.KindConfiguration},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: svc.Namespace, Name: svc.Name, Labels: labels, Annotations: annotations,
			CreationTimestamp: svc.CreationTimestamp,
		},
		Spec: svc.Spec.ConfigurationSpec,
	}
	rd.addConfiguration(&cfgEntry{unit: e.unit, src: o, out: cfg, owner: svc.Name, served: true, cond: conds{}}, decl.Spec.Template)

	route := &servingv1.Route{
		TypeMeta: metav1.TypeMeta{APIVersion: servingv1.APIVersion, Kind: servingv1.KindRoute},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: svc.Namespace, Name: svc.Name, Labels: labels, Annotations: annotations,
			CreationTimestamp: svc.CreationTimestamp,
		},
		Spec: clone(svc.Spec.RouteSpec),
	}
	// As Knative's Service reconciler does: latest-revision targets follow
	// the Service's own Configuration.
	for i := range route.Spec.Traffic {
		if route.Spec.Traffic[i].RevisionName == "" {
			route.Spec.Traffic[i].ConfigurationName = svc.Name
		}
	}
	rd.addRoute(&routeEntry{unit: e.unit, src: o, out: route, owner: svc.Name, served: true, cond: conds{}})
}

// configuration reconciles a standalone Configuration.
func (rd *round) configuration(o manifest.Object) {
	key := objectKey(o.Kind, o.Namespace, o.Name)
	created := rd.firstSeen(key, o.Obj.(*servingv1.Configuration).ObjectMeta)
	check := func(c *servingv1.Configuration) (*servingv1.Configuration, field.ErrorList) {
		tmpl := clone(c.Spec.Template)
		c.SetDefaults(rd.r.settings.Defaults)
		errs := rd.validator().Configuration(c)
		if len(errs) == 0 {
			_, errs = rd.r.plan(c.Namespace, c.Name, tmpl, field.NewPath("spec", "template"))
		}
		return c, errs
	}
	decl, cfg, served, errs := accept(rd, key, o.Obj.(*servingv1.Configuration), check)
	rd.fieldProblems(o, errs)
	cfg.CreationTimestamp = metav1.NewTime(created)
	cfg.Status = servingv1.ConfigurationStatus{}
	rd.addConfiguration(&cfgEntry{unit: unitOf(o), src: o, out: cfg, served: served, invalid: errs, cond: conds{}}, decl.Spec.Template)
}

// addConfiguration registers a Configuration and, when it is served, makes
// the revision of its template.
func (rd *round) addConfiguration(e *cfgEntry, declared servingv1.RevisionTemplateSpec) {
	e.gen, e.key = rd.gen, e.out.Namespace+"/"+e.out.Name
	rd.configs[e.key] = e
	rd.cfgOrder = append(rd.cfgOrder, e)
	rd.freshConfigs = append(rd.freshConfigs, e)
	rd.live[objectKey(servingv1.KindConfiguration, e.out.Namespace, e.out.Name)] = true
	if !e.served {
		return
	}
	cs := rd.r.apply(rd.now, e.out, declared, e.owner, rd.startsAtZero)
	e.out.Generation = cs.gen
}

// route reconciles a standalone Route.
func (rd *round) route(o manifest.Object) {
	key := objectKey(o.Kind, o.Namespace, o.Name)
	created := rd.firstSeen(key, o.Obj.(*servingv1.Route).ObjectMeta)
	check := func(rt *servingv1.Route) (*servingv1.Route, field.ErrorList) {
		rt.SetDefaults(rd.r.settings.Defaults)
		return rt, rd.validator().Route(rt)
	}
	_, rt, served, errs := accept(rd, key, o.Obj.(*servingv1.Route), check)
	rd.fieldProblems(o, errs)
	rt.CreationTimestamp = metav1.NewTime(created)
	rt.Status = servingv1.RouteStatus{}
	rd.addRoute(&routeEntry{unit: unitOf(o), src: o, out: rt, served: served, invalid: errs, cond: conds{}})
}

func (rd *round) addRoute(e *routeEntry) {
	key := objectKey(servingv1.KindRoute, e.out.Namespace, e.out.Name)
	e.gen, e.key = rd.gen, e.out.Namespace+"/"+e.out.Name
	rd.routes[e.key] = e
	rd.routeOrder = append(rd.routeOrder, e)
	rd.freshRoutes = append(rd.freshRoutes, e)
	rd.live[key] = true
	if e.served {
		e.out.Generation = rd.generation(key, e.out.Spec)
	}
}

// validator validates against the ConfigMaps in effect.
func (rd *round) validator() servingv1.Validator {
	return servingv1.Validator{Defaults: rd.r.settings.Defaults, Autoscaler: rd.r.settings.Autoscaler}
}

// forget drops the state of objects no longer declared: a deleted
// Configuration takes its revisions with it, as Knative's owner references do.
func (rd *round) forget() {
	r := rd.r
	if rd.dirty != nil {
		rd.forgetDirty()
		return
	}
	for k := range r.seen {
		if !rd.live[k] {
			delete(r.seen, k)
		}
	}
	for k := range r.good {
		if !rd.live[k] {
			delete(r.good, k)
		}
	}
	for k := range r.gens {
		if !rd.live[k] {
			delete(r.gens, k)
		}
	}
	for k := range r.configs {
		if e, ok := rd.configs[k]; !ok || !e.served {
			delete(r.configs, k)
		}
	}
	rd.forgetRevisions()
	for k := range r.routed {
		if e, ok := rd.routes[k]; !ok || !e.served {
			delete(r.routed, k)
		}
	}
}

// forgetDirty is forget in an incremental round: only the recomputed units
// (and the DomainMappings) can have let go of anything.
func (rd *round) forgetDirty() {
	r := rd.r
	gone := false
	drop := func(k string) {
		if _, ok := rd.units[k]; ok && !rd.recompute(k) {
			return // a unit carried over: live, though it did not say so
		}
		if !rd.live[k] {
			delete(r.seen, k)
			delete(r.good, k)
			delete(r.gens, k)
		}
	}
	for u := range rd.dirty {
		_, ns, name, ok := splitObjectKey(u)
		if !ok {
			continue
		}
		for _, kind := range []string{servingv1.KindService, servingv1.KindConfiguration, servingv1.KindRoute} {
			drop(objectKey(kind, ns, name))
		}
		key := ns + "/" + name
		if _, ok := r.configs[key]; ok {
			if e, ok := rd.configs[key]; !ok || !e.served {
				delete(r.configs, key)
				gone = true
			}
		}
		if _, ok := r.routed[key]; ok {
			if e, ok := rd.routes[key]; !ok || !e.served {
				delete(r.routed, key)
			}
		}
	}
	for _, e := range rd.prior.mappings {
		drop(objectKey(v1beta1.KindDomainMapping, e.out.Namespace, e.out.Name))
	}
	if gone {
		rd.forgetRevisions()
	}
}

// forgetRevisions drops the revisions of Configurations gone: a deleted
// Configuration takes its revisions with it, as Knative's owner references
// do.
func (rd *round) forgetRevisions() {
	r := rd.r
	for k, rev := range r.revisions {
		if _, ok := r.configs[rev.namespace+"/"+rev.config]; !ok {
			delete(r.revisions, k)
			r.revsMoved = true
			rd.gone = append(rd.gone, goneRevision{namespace: rev.namespace, name: rev.name, config: rev.config})
		}
	}
}

// output stamps the conditions and sorts everything into the Result. The
// units carried over keep their outputs, stamped already.
func (rd *round) output() {
	res := rd.res
	res.Recomputed = len(rd.units)
	if rd.dirty != nil {
		res.Changed = &ModelChange{Services: map[string]bool{}, Revisions: map[string]bool{}}
		res.Recomputed = 0
		for u := range rd.units {
			if rd.dirty[u] {
				res.Recomputed++
			}
		}
	}
	res.Services = slices.Grow(res.Services, len(rd.services))
	res.Configurations = slices.Grow(res.Configurations, len(rd.configs))
	res.Revisions = slices.Grow(res.Revisions, len(rd.r.revisions))
	res.Model.Revisions = slices.Grow(res.Model.Revisions, len(rd.r.revisions))
	for _, e := range rd.services {
		if e.gen == rd.gen {
			e.out.Status.Conditions = e.cond.stamp(rd.prevConditions(servingv1.KindService, e.out.Namespace, e.out.Name), rd.now)
		}
		res.Services = append(res.Services, e.out)
	}
	cfgs, routes := inOrder(rd.cfgOrder, rd.configs), inOrder(rd.routeOrder, rd.routes)
	// Each Service's Configuration and Route come in its order.
	ordered := rd.inOrder && len(cfgs) == len(rd.cfgOrder) && len(routes) == len(rd.routeOrder)
	for _, e := range cfgs {
		if e.gen == rd.gen {
			e.out.Status.Conditions = e.cond.stamp(rd.prevConditions(servingv1.KindConfiguration, e.out.Namespace, e.out.Name), rd.now)
		}
		res.Configurations = append(res.Configurations, e.out)
	}
	services := make([]model.Service, 0, len(rd.routes)+len(rd.mappings))
	res.Routes = make([]*servingv1.Route, 0, len(rd.routes))
	for _, e := range routes {
		if e.gen == rd.gen {
			e.out.Status.Conditions = e.cond.stamp(rd.prevConditions(servingv1.KindRoute, e.out.Namespace, e.out.Name), rd.now)
			if res.Changed != nil {
				res.Changed.Services[e.key] = true
			}
			// A Route that lost a host still sends its traffic to its
			// revisions, as its status says: they stay reachable.
			split := map[string]bool{}
			splitRevisions(e.model, split)
			e.splits = slices.Sorted(maps.Keys(split))
		}
		res.Routes = append(res.Routes, e.out)
		if e.model != nil && !e.lost {
			services = append(services, *e.model)
		}
	}
	rd.countRouted()
	for key, e := range rd.mappings {
		e.out.Status.Conditions = e.cond.stamp(rd.prevConditions(v1beta1.KindDomainMapping, e.out.Namespace, e.out.Name), rd.now)
		res.DomainMappings = append(res.DomainMappings, e.out)
		if e.model != nil && !e.lost {
			services = append(services, *e.model)
		}
		if res.Changed != nil {
			res.Changed.Services[key] = true
		}
	}
	if res.Changed != nil {
		for key := range rd.replaced {
			res.Changed.Services[key] = true // removed, perhaps
		}
		for key := range rd.prior.mappings {
			res.Changed.Services[key] = true
		}
		for _, g := range rd.gone {
			res.Changed.Revisions[g.namespace+"/"+g.name] = true
		}
	}
	for _, rev := range rd.r.sortedRevisions() {
		key := rev.key()
		if rev.fresh || rev.out == nil || rd.dirty == nil {
			out := rev.output()
			prev := rd.r.prev[objectKey(servingv1.KindRevision, rev.namespace, rev.name)]
			if rev.out != nil {
				prev = rev.out.Status.Conditions
			}
			out.Status.Conditions = rev.cond.stamp(prev, rd.now)
			rev.out, rev.mdl, rev.fresh = out, rev.model(), false
			if res.Changed != nil {
				res.Changed.Revisions[key] = true
			}
		}
		res.Revisions = append(res.Revisions, rev.out)
		// Every revision gets its cluster, routed or not: a route that
		// moves traffic to a revision then points at a cluster the gateways
		// have warmed already (make before break).
		res.Model.Revisions = append(res.Model.Revisions, rev.mdl)
	}
	res.Model.Services = services
	res.Routed = maps.Clone(rd.r.splitTo)
	res.Config = rd.r.settings
	res.Conflicts = rd.r.hosts.Conflicts()

	sort.SliceStable(res.Problems, func(i, j int) bool {
		a, b := res.Problems[i], res.Problems[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.String() < b.String()
	})
	// Most come in order already: the declarations' when they came sorted
	// (ordered: no check, which at 10,000 was a pass over scattered objects
	// per kind, a twentieth of a round), else a check tells in one pass.
	// The fields are compared directly: through metav1.Object's methods,
	// 10,000 of each took a tenth of a round.
	if !ordered {
		sortUnlessSorted(res.Services, func(a, b *servingv1.Service) int {
			return CompareKeys(a.Namespace, a.Name, b.Namespace, b.Name)
		})
		sortUnlessSorted(res.Configurations, func(a, b *servingv1.Configuration) int {
			return CompareKeys(a.Namespace, a.Name, b.Namespace, b.Name)
		})
		sortUnlessSorted(res.Routes, func(a, b *servingv1.Route) int {
			return CompareKeys(a.Namespace, a.Name, b.Namespace, b.Name)
		})
	}
	sortUnlessSorted(res.DomainMappings, func(a, b *v1beta1.DomainMapping) int {
		return CompareKeys(a.Namespace, a.Name, b.Namespace, b.Name)
	})
	sortUnlessSorted(res.Model.Services, func(a, b model.Service) int {
		return CompareKeys(a.Namespace, a.Name, b.Namespace, b.Name)
	})
	// The revisions come from sortedRevisions, in order by construction: no
	// check (a pass over 10,000 scattered objects, twice, each round).
}

// sortUnlessSorted sorts xs, stably, unless it is sorted already.
func sortUnlessSorted[T any](xs []T, cmp func(a, b T) int) {
	if !slices.IsSortedFunc(xs, cmp) {
		slices.SortStableFunc(xs, cmp)
	}
}

// inOrder is a round's entries in the order they came, or, should that
// list disagree with the index (an entry replaced), the index's.
func inOrder[E any](order []E, byKey map[string]E) []E {
	if len(order) == len(byKey) {
		return order
	}
	out := make([]E, 0, len(byKey))
	for _, e := range byKey {
		out = append(out, e)
	}
	return out
}

// sortedRevisions are the revisions sorted by key, kept from round to
// round while none comes or goes.
func (r *Reconciler) sortedRevisions() []*revisionState {
	byKey := func(a, b *revisionState) int { return CompareKeys(a.namespace, a.name, b.namespace, b.name) }
	if !r.revsMoved && len(r.revOrder)+len(r.revsNew) == len(r.revisions) {
		for _, rev := range r.revsNew {
			i, _ := slices.BinarySearchFunc(r.revOrder, rev, byKey)
			r.revOrder = slices.Insert(r.revOrder, i, rev)
		}
		r.revsNew = r.revsNew[:0]
		return r.revOrder
	}
	r.revsNew = r.revsNew[:0]
	r.revOrder = r.revOrder[:0]
	for _, rev := range r.revisions {
		r.revOrder = append(r.revOrder, rev)
	}
	slices.SortFunc(r.revOrder, byKey)
	r.revsMoved = false
	return r.revOrder
}

// countRouted keeps Reconciler.splitTo as the round's Routes leave it:
// recounted in a full round, moved by the Routes recomputed in another.
func (rd *round) countRouted() {
	r := rd.r
	if rd.dirty == nil {
		r.splitTo, r.splitCount = map[string]bool{}, map[string]int{}
	}
	for _, e := range rd.replaced {
		for _, k := range e.splits {
			if r.splitCount[k]--; r.splitCount[k] <= 0 {
				delete(r.splitCount, k)
				delete(r.splitTo, k)
			}
		}
	}
	for _, e := range rd.freshRoutes {
		for _, k := range e.splits {
			r.splitCount[k]++
			r.splitTo[k] = true
		}
	}
}

// prevConditions are an object's conditions in the previous round's
// result (conflict marks included): those of the stored object after a
// restore.
func (rd *round) prevConditions(kind, ns, name string) []servingv1.Condition {
	p := rd.prior
	if p == nil {
		return rd.r.prev[objectKey(kind, ns, name)]
	}
	key := ns + "/" + name
	switch kind {
	case servingv1.KindService:
		if e := p.svcIdx[key]; e != nil {
			return e.out.Status.Conditions
		}
	case servingv1.KindConfiguration:
		if e := p.configs[key]; e != nil {
			return e.out.Status.Conditions
		}
	case servingv1.KindRoute:
		if e := p.routes[key]; e != nil {
			return e.out.Status.Conditions
		}
	case v1beta1.KindDomainMapping:
		if e := p.mappings[key]; e != nil {
			return e.out.Status.Conditions
		}
	}
	return nil
}

// conditionsOf indexes a result's conditions by object key.
func conditionsOf(res *Result) map[string][]servingv1.Condition {
	out := map[string][]servingv1.Condition{}
	if res == nil {
		return out
	}
	for _, s := range res.Services {
		out[objectKey(servingv1.KindService, s.Namespace, s.Name)] = s.Status.Conditions
	}
	for _, c := range res.Configurations {
		out[objectKey(servingv1.KindConfiguration, c.Namespace, c.Name)] = c.Status.Conditions
	}
	for _, r := range res.Routes {
		out[objectKey(servingv1.KindRoute, r.Namespace, r.Name)] = r.Status.Conditions
	}
	for _, r := range res.Revisions {
		out[objectKey(servingv1.KindRevision, r.Namespace, r.Name)] = r.Status.Conditions
	}
	for _, d := range res.DomainMappings {
		out[objectKey(v1beta1.KindDomainMapping, d.Namespace, d.Name)] = d.Status.Conditions
	}
	return out
}

func sortByKey[T any](xs []T, key func(T) string) {
	sort.SliceStable(xs, func(i, j int) bool { return key(xs[i]) < key(xs[j]) })
}

// clone deep-copies an API value: with its generated DeepCopy when it has
// one (every API type does; a round copies thousands of them), else
// through JSON, the form it is declared in.
func clone[T any](x T) T {
	if d, ok := any(x).(interface{ DeepCopy() T }); ok {
		return d.DeepCopy()
	}
	if d, ok := any(&x).(interface{ DeepCopy() *T }); ok {
		return *d.DeepCopy()
	}
	var y T
	b, err := json.Marshal(x)
	if err == nil {
		err = json.Unmarshal(b, &y)
	}
	if err != nil {
		// The API types always round-trip; keep the original rather than lose it.
		return x
	}
	return y
}

// mustJSON is the canonical JSON of an API value (they always marshal).
func mustJSON(x any) string {
	b, err := json.Marshal(x)
	if err != nil {
		return fmt.Sprintf("%#v", x)
	}
	return string(b)
}

func withLabel(m map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for mk, mv := range m {
		out[mk] = mv
	}
	out[k] = v
	return out
}

func withoutKey(m map[string]string, k string) map[string]string {
	if _, ok := m[k]; !ok {
		return m
	}
	out := make(map[string]string, len(m))
	for mk, mv := range m {
		if mk != k {
			out[mk] = mv
		}
	}
	return out
}
