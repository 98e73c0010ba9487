package kube

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/kgate/kgate/api/serving/v1beta1"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/watcher/knative"
)

// Certificates from Secrets.
//
// Every host served over TLS gets the SDS secret named by the host (the
// translator's on-demand selector asks for the SNI): a DomainMapping's
// domain the certificate of its spec.tls Secret, every other host the
// default certificate (--default-certificate-secret), which is also served
// as translator.DefaultCertificate to clients that send no SNI.
//
// The controller reads only the Secrets it is told about: one informer per
// referenced Secret, namespaced and filtered by the field selector
// metadata.name, started when a host first needs it and stopped when none
// does. The API server sends it that Secret's changes and no other Secret,
// so a rotation reaches the gateways as soon as it is written (one SDS push
// per host it serves), without listing the Secrets of the cluster or
// polling. The cost is a watch per referenced Secret, which the client
// multiplexes over its HTTP/2 connection.

// secretSink is where certificates go: the xDS engine's SDS secrets.
type secretSink interface {
	SetSecret(*tlsv3.Secret) error
	DeleteSecret(name string) error
}

// watchSecretFunc watches one Secret by name until stop is called: ev.changed
// gets it on every change (nil once it is deleted), ev.absent is called when
// the first list finds no such Secret.
type watchSecretFunc func(ref types.NamespacedName, ev secretEvents) (stop func())

// secretEvents are what a Secret's watch reports.
type secretEvents struct {
	changed func(*corev1.Secret)
	absent  func()
}

// certPair is a Secret's certificate, checked to be a usable key pair.
type certPair struct {
	certPEM, keyPEM []byte
	// version is the Secret's resourceVersion: a push happens when it
	// changes.
	version string
}

// pushedCert is what a host's SDS secret holds.
type pushedCert struct {
	from    types.NamespacedName
	version string
}

// certificates keeps the gateways' SDS secrets in line with the hosts
// served over TLS and the Secrets their certificates come from. Its
// methods are safe for concurrent use: rounds call sync, the Secrets'
// informers call changed.
type certificates struct {
	log   *slog.Logger
	out   secretSink
	def   types.NamespacedName // the default certificate; zero: none
	watch watchSecretFunc

	mu      sync.Mutex
	want    map[string]types.NamespacedName // host → its Secret (zero: none)
	pairs   map[types.NamespacedName]*certPair
	invalid map[types.NamespacedName]string // why a Secret is not usable
	// reported are the Secrets whose informer has said what they hold
	// (nothing, when absent): until then a host waiting for one is not
	// reported missing.
	reported map[types.NamespacedName]bool
	watches  map[types.NamespacedName]func()
	pushed   map[string]pushedCert
	missing  map[string]bool // hosts logged as lacking a certificate
}

func newCertificates(log *slog.Logger, out secretSink, def types.NamespacedName, watch watchSecretFunc) *certificates {
	return &certificates{
		log: log, out: out, def: def, watch: watch,
		want: map[string]types.NamespacedName{}, pairs: map[types.NamespacedName]*certPair{},
		invalid: map[types.NamespacedName]string{}, reported: map[types.NamespacedName]bool{}, watches: map[types.NamespacedName]func(){},
		pushed: map[string]pushedCert{}, missing: map[string]bool{},
	}
}

// ParseSecretRef parses "namespace/name", as --default-certificate-secret
// takes it.
func ParseSecretRef(s string) (types.NamespacedName, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, fmt.Errorf("%q: want NAMESPACE/NAME", s)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}

// certificateHosts says which Secret each host served over TLS takes its
// certificate from: a DomainMapping that holds its domain and names a
// Secret, a Route's host whose cert-manager Certificate is Ready (issued:
// host → its Secret, see certmanager.go), else the default certificate
// (def, zero when there is none). With a default certificate,
// translator.DefaultCertificate is served too.
func certificateHosts(res *knative.Result, def types.NamespacedName, issued map[string]types.NamespacedName) map[string]types.NamespacedName {
	want := map[string]types.NamespacedName{}
	for _, svc := range res.Model.Services {
		for _, vh := range svc.VirtualHosts {
			if vh.TLS {
				want[vh.Host] = def
				if ref, ok := issued[vh.Host]; ok {
					want[vh.Host] = ref
				}
			}
		}
	}
	for _, dm := range res.DomainMappings {
		if dm.Spec.TLS == nil || dm.Spec.TLS.SecretName == "" || !claimed(dm) {
			continue // a mapping that lost its domain does not choose its certificate
		}
		if _, served := want[dm.Name]; served {
			want[dm.Name] = types.NamespacedName{Namespace: dm.Namespace, Name: dm.Spec.TLS.SecretName}
		}
	}
	if def.Name != "" {
		want[translator.DefaultCertificate] = def
	}
	return want
}

func claimed(dm *v1beta1.DomainMapping) bool {
	for _, c := range dm.Status.Conditions {
		if c.Type == v1beta1.ConditionDomainClaimed {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// sync makes the SDS secrets follow want (host → Secret): the Secrets
// named are watched, those no host needs any more are not, and every host
// whose Secret holds a usable certificate gets it.
func (c *certificates) sync(want map[string]types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.want = want
	refs := map[types.NamespacedName]bool{}
	for _, ref := range want {
		if ref.Name != "" {
			refs[ref] = true
		}
	}
	for ref, stop := range c.watches {
		if !refs[ref] {
			stop()
			delete(c.watches, ref)
			delete(c.pairs, ref)
			delete(c.invalid, ref)
			delete(c.reported, ref)
		}
	}
	for _, ref := range slices.SortedFunc(maps.Keys(refs), compareRefs) {
		if _, ok := c.watches[ref]; !ok {
			c.watches[ref] = c.watch(ref, secretEvents{
				changed: func(s *corev1.Secret) { c.changed(ref, s) },
				absent:  func() { c.absent(ref) },
			})
		}
	}
	c.pushLocked()
}

// changed records a watched Secret's new state and pushes what it
// changes.
func (c *certificates) changed(ref types.NamespacedName, s *corev1.Secret) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, watched := c.watches[ref]; !watched {
		return // a late event of a Secret no longer needed
	}
	delete(c.pairs, ref)
	delete(c.invalid, ref)
	c.reported[ref] = true
	if s != nil {
		if pair, err := secretPair(s); err != nil {
			c.invalid[ref] = err.Error()
			// Names only: a Secret's content never reaches the log.
			c.log.Warn("a certificate Secret is not usable", "secret", ref.String(), "error", err)
		} else {
			c.pairs[ref] = pair
		}
	}
	c.pushLocked()
}

// absent records that a watched Secret does not exist, unless an event
// said otherwise first (the two come from different goroutines): its hosts
// are then reported without a certificate.
func (c *certificates) absent(ref types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, watched := c.watches[ref]; !watched || c.reported[ref] {
		return
	}
	c.reported[ref] = true
	c.pushLocked()
}

// secretPair reads a kubernetes.io/tls Secret's tls.crt and tls.key and
// checks that they make a key pair (the error says which part is wrong,
// never what it holds).
func secretPair(s *corev1.Secret) (*certPair, error) {
	cert, key := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	if len(cert) == 0 || len(key) == 0 {
		return nil, fmt.Errorf("want %s and %s", corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
	}
	if _, err := tls.X509KeyPair(cert, key); err != nil {
		return nil, fmt.Errorf("%s and %s are not a key pair: %w", corev1.TLSCertKey, corev1.TLSPrivateKeyKey, err)
	}
	return &certPair{certPEM: cert, keyPEM: key, version: s.ResourceVersion}, nil
}

// pushLocked pushes each host's certificate when its Secret or the
// Secret's version changed, withdraws those of hosts no longer served over
// TLS (or whose Secret went away), and logs once each host that has no
// certificate.
func (c *certificates) pushLocked() {
	for _, host := range slices.Sorted(maps.Keys(c.want)) {
		ref := c.want[host]
		pair := c.pairs[ref]
		if pair == nil {
			c.withdrawLocked(host)
			switch {
			case c.missing[host]:
			case ref.Name == "":
				c.missing[host] = true
				c.log.Warn("no certificate for a host served over HTTPS: TLS handshakes for it fail (set --default-certificate-secret, a DomainMapping's spec.tls, or config-certmanager's issuerRef, whose Certificate may still be issuing)", "host", host)
			case c.reported[ref]:
				c.missing[host] = true
				c.log.Warn("no certificate for a host served over HTTPS: TLS handshakes for it fail", "host", host, "secret", ref.String(), "reason", cmp.Or(c.invalid[ref], "the Secret does not exist"))
			}
			continue
		}
		delete(c.missing, host)
		have := pushedCert{from: ref, version: pair.version}
		if c.pushed[host] == have {
			continue
		}
		if err := c.out.SetSecret(translator.Secret(host, pair.certPEM, pair.keyPEM)); err != nil {
			c.log.Error("pushing a host's certificate", "host", host, "secret", ref.String(), "error", err)
			continue
		}
		c.pushed[host] = have
		c.log.Debug("pushed a certificate", "host", host, "secret", ref.String(), "version", pair.version)
	}
	for host := range c.pushed {
		if _, ok := c.want[host]; !ok {
			c.withdrawLocked(host)
		}
	}
	for host := range c.missing {
		if _, ok := c.want[host]; !ok {
			delete(c.missing, host)
		}
	}
}

// servedFrom is the Secret whose certificate a host's SDS secret holds
// (zero: none).
func (c *certificates) servedFrom(host string) types.NamespacedName {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pushed[host].from
}

func (c *certificates) withdrawLocked(host string) {
	if _, ok := c.pushed[host]; !ok {
		return
	}
	if err := c.out.DeleteSecret(host); err != nil {
		c.log.Error("withdrawing a host's certificate", "host", host, "error", err)
		return
	}
	delete(c.pushed, host)
}

// stop ends every Secret's watch.
func (c *certificates) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ref, stop := range c.watches {
		stop()
		delete(c.watches, ref)
	}
}

func compareRefs(a, b types.NamespacedName) int { return strings.Compare(a.String(), b.String()) }

// informerWatch watches Secrets one at a time with a namespaced informer
// whose list and watch carry the field selector metadata.name=NAME: the API
// server sends this one Secret and nothing else.
func informerWatch(ctx context.Context, cs kubernetes.Interface) watchSecretFunc {
	return func(ref types.NamespacedName, ev secretEvents) func() {
		lw := toolscache.NewListWatchFromClient(cs.CoreV1().RESTClient(), "secrets", ref.Namespace,
			fields.OneTermEqualSelector("metadata.name", ref.Name))
		store, inf := toolscache.NewInformerWithOptions(toolscache.InformerOptions{
			ListerWatcher: lw, ObjectType: &corev1.Secret{},
			Handler: toolscache.ResourceEventHandlerFuncs{
				AddFunc:    func(obj any) { ev.changed(asSecret(obj)) },
				UpdateFunc: func(_, obj any) { ev.changed(asSecret(obj)) },
				DeleteFunc: func(any) { ev.changed(nil) },
			},
		})
		wctx, cancel := context.WithCancel(ctx)
		go inf.RunWithContext(wctx)
		go func() {
			// A Secret that does not exist sends no event: once the first
			// list is in, say so, so that its hosts are reported missing.
			if toolscache.WaitForCacheSync(wctx.Done(), inf.HasSynced) && len(store.List()) == 0 {
				ev.absent()
			}
		}()
		return cancel
	}
}

func asSecret(obj any) *corev1.Secret {
	s, _ := obj.(*corev1.Secret)
	return s
}
