package kube

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/api/serving/v1beta1"
	"github.com/kgate/kgate/pki"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/watcher/knative"
)

// sink records the SDS pushes: "set host serial" or "delete host".
type sink struct {
	mu     sync.Mutex
	pushes []string
	held   map[string][]byte // host → certificate PEM
}

func (s *sink) SetSecret(sec *tlsv3.Secret) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cert := sec.GetTlsCertificate().GetCertificateChain().GetInlineBytes()
	s.pushes = append(s.pushes, "set "+sec.GetName())
	s.held[sec.GetName()] = cert
	return nil
}

func (s *sink) DeleteSecret(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pushes = append(s.pushes, "delete "+name)
	delete(s.held, name)
	return nil
}

func (s *sink) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.pushes
	s.pushes = nil
	slices.Sort(out)
	return out
}

// fakeWatches hands Secrets to the certificates by hand.
type fakeWatches struct {
	on     map[types.NamespacedName]func(*corev1.Secret)
	absent map[types.NamespacedName]func()
}

func newFakeWatches() *fakeWatches {
	return &fakeWatches{on: map[types.NamespacedName]func(*corev1.Secret){}, absent: map[types.NamespacedName]func(){}}
}

func (f *fakeWatches) watch(ref types.NamespacedName, ev secretEvents) func() {
	f.on[ref], f.absent[ref] = ev.changed, ev.absent
	return func() { delete(f.on, ref); delete(f.absent, ref) }
}

func tlsSecret(t *testing.T, ca *pki.CA, ref types.NamespacedName, version string, hosts ...string) *corev1.Secret {
	t.Helper()
	cert, key, err := ca.IssueHost(hosts, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name, ResourceVersion: version},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: cert, corev1.TLSPrivateKeyKey: key},
	}
}

func tlsResult(hosts []string, mappings ...*v1beta1.DomainMapping) *knative.Result {
	res := &knative.Result{DomainMappings: mappings}
	for _, h := range hosts {
		res.Model.Services = append(res.Model.Services, model.Service{Namespace: "default", Name: h,
			VirtualHosts: []model.VirtualHost{{Host: h, TLS: true}, {Host: h + ".plain", TLS: false}}})
	}
	return res
}

func mapping(ns, domain, secret string, claimedDomain bool) *v1beta1.DomainMapping {
	status := corev1.ConditionTrue
	if !claimedDomain {
		status = corev1.ConditionFalse
	}
	return &v1beta1.DomainMapping{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: domain},
		Spec:       v1beta1.DomainMappingSpec{TLS: &v1beta1.SecretTLS{SecretName: secret}},
		Status: v1beta1.DomainMappingStatus{Status: servingv1.Status{Conditions: []servingv1.Condition{
			{Type: v1beta1.ConditionDomainClaimed, Status: status},
		}}},
	}
}

func TestCertificateHosts(t *testing.T) {
	def := types.NamespacedName{Namespace: "kgate-system", Name: "default-cert"}
	res := tlsResult([]string{"a.example.com", "dm.example.org"},
		mapping("team", "dm.example.org", "dm-tls", true),
		mapping("other", "dm.example.org", "stolen-tls", false), // lost the domain: chooses nothing
		mapping("team", "unserved.example.org", "x-tls", true))  // not served over TLS: nothing
	got := certificateHosts(res, def, nil)
	want := map[string]types.NamespacedName{
		"a.example.com":               def,
		"dm.example.org":              {Namespace: "team", Name: "dm-tls"},
		translator.DefaultCertificate: def,
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for h, ref := range want {
		if got[h] != ref {
			t.Errorf("%s: got %v, want %v", h, got[h], ref)
		}
	}
	// Without a default certificate, hosts are listed with no Secret, and
	// no default is served.
	got = certificateHosts(tlsResult([]string{"a.example.com"}), types.NamespacedName{}, nil)
	if ref, ok := got["a.example.com"]; !ok || ref.Name != "" || len(got) != 1 {
		t.Errorf("without a default: %v", got)
	}
}

func TestCertificatesFollowSecrets(t *testing.T) {
	ca, err := pki.NewCA("test", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	out := &sink{held: map[string][]byte{}}
	w := newFakeWatches()
	def := types.NamespacedName{Namespace: "kgate-system", Name: "default-cert"}
	dmRef := types.NamespacedName{Namespace: "team", Name: "dm-tls"}
	c := newCertificates(log, out, def, w.watch)

	c.sync(certificateHosts(tlsResult([]string{"a.example.com", "dm.example.org"}, mapping("team", "dm.example.org", "dm-tls", true)), def, nil))
	if len(w.on) != 2 || w.on[def] == nil || w.on[dmRef] == nil {
		t.Fatalf("watches: %v", w.on)
	}
	if got := out.take(); len(got) != 0 {
		t.Fatalf("pushed before any Secret was read: %v", got)
	}

	// The default certificate serves its hosts and clients without SNI.
	defSecret := tlsSecret(t, ca, def, "1", "*.example.com")
	w.on[def](defSecret)
	if got, want := out.take(), []string{"set a.example.com", "set " + translator.DefaultCertificate}; !slices.Equal(got, want) {
		t.Fatalf("pushes: %v, want %v", got, want)
	}
	// The same version again (a resync) pushes nothing.
	w.on[def](defSecret)
	if got := out.take(); len(got) != 0 {
		t.Fatalf("a resync pushed %v", got)
	}

	// The mapping's own certificate: one push, its domain's. A late report
	// that the first list found nothing does not undo it.
	dmSecret := tlsSecret(t, ca, dmRef, "7", "dm.example.org")
	w.on[dmRef](dmSecret)
	w.absent[dmRef]()
	if got, want := out.take(), []string{"set dm.example.org"}; !slices.Equal(got, want) {
		t.Fatalf("pushes: %v, want %v", got, want)
	}
	if !bytes.Equal(out.held["dm.example.org"], dmSecret.Data[corev1.TLSCertKey]) {
		t.Error("the mapping's domain does not hold its Secret's certificate")
	}

	// A rotation of the mapping's Secret: one push of that host alone.
	rotated := tlsSecret(t, ca, dmRef, "8", "dm.example.org")
	w.on[dmRef](rotated)
	if got, want := out.take(), []string{"set dm.example.org"}; !slices.Equal(got, want) {
		t.Fatalf("rotation pushes: %v, want %v", got, want)
	}
	if !bytes.Equal(out.held["dm.example.org"], rotated.Data[corev1.TLSCertKey]) {
		t.Error("the rotation did not reach the SDS secret")
	}

	// A Secret that is not a key pair withdraws the certificate and says so,
	// by name only.
	broken := rotated.DeepCopy()
	broken.ResourceVersion = "9"
	broken.Data[corev1.TLSPrivateKeyKey] = defSecret.Data[corev1.TLSPrivateKeyKey]
	w.on[dmRef](broken)
	if got, want := out.take(), []string{"delete dm.example.org"}; !slices.Equal(got, want) {
		t.Fatalf("a broken Secret: %v, want %v", got, want)
	}
	if !strings.Contains(logs.String(), `host=dm.example.org secret=team/dm-tls`) {
		t.Errorf("the missing certificate is not logged by host and Secret:\n%s", logs.String())
	}
	for _, s := range []*corev1.Secret{defSecret, dmSecret, rotated} {
		if strings.Contains(logs.String(), string(s.Data[corev1.TLSPrivateKeyKey][30:60])) {
			t.Fatal("a private key reached the log")
		}
	}

	// The mapping goes: its Secret is no longer watched; its domain is
	// gone from TLS, so is its secret.
	c.sync(certificateHosts(tlsResult([]string{"a.example.com"}), def, nil))
	if len(w.on) != 1 || w.on[dmRef] != nil {
		t.Fatalf("watches after the mapping went: %v", w.on)
	}
	if got := out.take(); len(got) != 0 {
		t.Fatalf("pushes: %v", got) // dm.example.org was already withdrawn
	}
	// The default Secret deleted: every host it served loses it.
	w.on[def](nil)
	if got, want := out.take(), []string{"delete a.example.com", "delete " + translator.DefaultCertificate}; !slices.Equal(got, want) {
		t.Fatalf("pushes: %v, want %v", got, want)
	}
	c.stop()
	if len(w.on) != 0 {
		t.Errorf("watches after stop: %v", w.on)
	}
}

func TestCertificatesWithoutSource(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	out := &sink{held: map[string][]byte{}}
	w := newFakeWatches()
	c := newCertificates(log, out, types.NamespacedName{}, w.watch)
	c.sync(certificateHosts(tlsResult([]string{"a.example.com"}), types.NamespacedName{}, nil))
	c.sync(certificateHosts(tlsResult([]string{"a.example.com"}), types.NamespacedName{}, nil))
	if len(w.on) != 0 || len(out.take()) != 0 {
		t.Fatal("watched or pushed with no certificate configured")
	}
	if n := strings.Count(logs.String(), "host=a.example.com"); n != 1 {
		t.Errorf("the host without a certificate is logged %d times, want once:\n%s", n, logs.String())
	}
}

func TestParseSecretRef(t *testing.T) {
	if ref, err := ParseSecretRef("kourier-system/default-cert"); err != nil || ref.Namespace != "kourier-system" || ref.Name != "default-cert" {
		t.Errorf("got %v %v", ref, err)
	}
	for _, bad := range []string{"", "name", "/name", "ns/", "a/b/c"} {
		if _, err := ParseSecretRef(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

// A Secret that does not exist: its hosts are reported once its watch has
// listed it, not before.
func TestCertificatesMissingSecret(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	out := &sink{held: map[string][]byte{}}
	w := newFakeWatches()
	def := types.NamespacedName{Namespace: "kgate-system", Name: "nowhere"}
	c := newCertificates(log, out, def, w.watch)
	c.sync(certificateHosts(tlsResult([]string{"a.example.com"}), def, nil))
	if strings.Contains(logs.String(), "a.example.com") {
		t.Fatalf("reported before the Secret was listed:\n%s", logs.String())
	}
	w.absent[def]()
	if !strings.Contains(logs.String(), `host=a.example.com secret=kgate-system/nowhere reason="the Secret does not exist"`) {
		t.Errorf("the missing Secret is not reported:\n%s", logs.String())
	}
	if got := out.take(); len(got) != 0 {
		t.Errorf("pushed %v", got)
	}
}
