package kubemode

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	networkingv1alpha1 "github.com/kgate/kgate/api/networking/v1alpha1"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/api/serving/v1beta1"
	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/pki"
	"github.com/kgate/kgate/pki/secrets"
	"github.com/kgate/kgate/translator"
	kubesource "github.com/kgate/kgate/watcher/kube"
)

// sdsGateway is a gateway that also asks for SDS secrets by name, as
// Envoy's on-demand selector does during a handshake, and counts the
// pushes of each.
type sdsGateway struct {
	mu     sync.Mutex
	certs  map[string][]byte // secret name → certificate chain PEM
	pushes map[string]int
}

func (e *env) connectSDSGateway(addr, id string, names ...string) *sdsGateway {
	e.t.Helper()
	conn := e.dialAs(addr, secrets.GatewaySecret)
	g := &sdsGateway{certs: map[string][]byte{}, pushes: map[string]int{}}
	cl, err := xdsclient.New(conn, xdsclient.Options{Node: xdsclient.Node{ID: "kgate-gateway-" + id, Cluster: "kgate-gateway"}})
	if err != nil {
		e.t.Fatal(err)
	}
	// Routes and endpoints as a gateway takes them, so that it ACKs what
	// Routes' readiness waits for.
	cl.Watch(resource.RouteType, func(u xdsclient.Update) error {
		for _, r := range u.Resources {
			_ = r.Message.(*routev3.RouteConfiguration)
		}
		return nil
	}, xdsclient.Wildcard)
	cl.Watch(resource.EndpointType, func(u xdsclient.Update) error {
		for _, r := range u.Resources {
			_ = r.Message.(*endpointv3.ClusterLoadAssignment)
		}
		return nil
	}, xdsclient.Wildcard)
	cl.Watch(resource.SecretType, func(u xdsclient.Update) error {
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, r := range u.Resources {
			g.certs[r.Name] = r.Message.(*tlsv3.Secret).GetTlsCertificate().GetCertificateChain().GetInlineBytes()
			g.pushes[r.Name]++
		}
		for _, n := range u.Removed {
			delete(g.certs, n)
		}
		return nil
	}, names...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = cl.Run(ctx); close(done) }()
	e.t.Cleanup(func() { cancel(); <-done })
	return g
}

// holds says whether the secret name carries the certificate cert.
func (g *sdsGateway) holds(name string, cert []byte) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if have, ok := g.certs[name]; !ok {
		return fmt.Errorf("no secret %s", name)
	} else if !bytes.Equal(have, cert) {
		return fmt.Errorf("secret %s holds another certificate", name)
	}
	return nil
}

func (g *sdsGateway) pushed(name string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pushes[name]
}

// tlsData is a kubernetes.io/tls Secret's data for hosts, from ca.
func tlsData(t *testing.T, ca *pki.CA, hosts ...string) map[string][]byte {
	t.Helper()
	cert, key, err := ca.IssueHost(hosts, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{corev1.TLSCertKey: cert, corev1.TLSPrivateKeyKey: key}
}

// HTTPS in a cluster without cert-manager: with external-domain-tls a
// Service's URL is https, the default-certificate Secret reaches the
// gateway as the SDS secret named by the host (and as the default for
// clients without SNI), a rotation of that Secret is one push of each,
// and a DomainMapping with spec.tls gets its own certificate, while a
// second mapping of its domain is refused.
func TestHTTPSCertificatesFromSecrets(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ca, err := pki.NewCA("test HTTPS CA", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: "config-autoscaler"},
			Data: map[string]string{"allow-zero-initial-scale": "true"}},
		// Mappings claim their domains (Knative's default is a claim made by
		// an administrator).
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: "config-network"},
			Data: map[string]string{"external-domain-tls": "Enabled", "autocreate-cluster-domain-claims": "true"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: "default-cert"},
			Type: corev1.SecretTypeTLS, Data: tlsData(t, ca, "*.default.example.com")},
	} {
		if err := e.client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	c, _ := e.startControllerWith(func(o *kubesource.Options) {
		o.DefaultCertificateSecret = types.NamespacedName{Namespace: systemNamespace, Name: "default-cert"}
		o.StaleAfter = 2 * time.Second
	})
	e.kubelet(ctx)
	const host, domain = "hello.default.example.com", "hello.example.org"
	gw := e.connectSDSGateway(c.XDSAddr().String(), "sds", host, domain, translator.DefaultCertificate)
	createService(t, e, "hello")

	t.Run("the Route's URL is https", func(t *testing.T) {
		e.eventually(60*time.Second, "Service hello Ready", func() error { return serviceReady(ctx, e, "hello") })
		var rt servingv1.Route
		if err := e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "hello"}, &rt); err != nil {
			t.Fatal(err)
		}
		if rt.Status.URL == nil || rt.Status.URL.String() != "https://"+host {
			t.Errorf("Route URL %v, want https://%s", rt.Status.URL, host)
		}
	})

	var def corev1.Secret
	if err := e.client.Get(ctx, client.ObjectKey{Namespace: systemNamespace, Name: "default-cert"}, &def); err != nil {
		t.Fatal(err)
	}
	t.Run("the default certificate", func(t *testing.T) {
		e.eventually(30*time.Second, "the host's secret", func() error { return gw.holds(host, def.Data[corev1.TLSCertKey]) })
		e.eventually(10*time.Second, "the default secret", func() error {
			return gw.holds(translator.DefaultCertificate, def.Data[corev1.TLSCertKey])
		})
	})

	t.Run("a rotation is one push", func(t *testing.T) {
		before, beforeDef := gw.pushed(host), gw.pushed(translator.DefaultCertificate)
		def.Data = tlsData(t, ca, "*.default.example.com")
		if err := e.client.Update(ctx, &def); err != nil {
			t.Fatal(err)
		}
		e.eventually(30*time.Second, "the rotated certificate", func() error { return gw.holds(host, def.Data[corev1.TLSCertKey]) })
		e.eventually(10*time.Second, "the rotated default", func() error {
			return gw.holds(translator.DefaultCertificate, def.Data[corev1.TLSCertKey])
		})
		// Rounds keep running (statuses, readiness): none re-pushes it.
		time.Sleep(time.Second)
		if n, m := gw.pushed(host)-before, gw.pushed(translator.DefaultCertificate)-beforeDef; n != 1 || m != 1 {
			t.Errorf("the rotation pushed the host's secret %d times and the default %d times, want once each", n, m)
		}
	})

	t.Run("a DomainMapping with its own certificate", func(t *testing.T) {
		dmData := tlsData(t, ca, domain)
		if err := e.client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "mapping-tls"},
			Type: corev1.SecretTypeTLS, Data: dmData}); err != nil {
			t.Fatal(err)
		}
		dm := &v1beta1.DomainMapping{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: domain},
			Spec: v1beta1.DomainMappingSpec{
				Ref: v1beta1.KReference{APIVersion: servingv1.APIVersion, Kind: servingv1.KindService, Name: "hello"},
				TLS: &v1beta1.SecretTLS{SecretName: "mapping-tls"},
			},
		}
		if err := e.client.Create(ctx, dm); err != nil {
			t.Fatal(err)
		}
		e.eventually(30*time.Second, "the DomainMapping Ready", func() error {
			if err := e.client.Get(ctx, client.ObjectKeyFromObject(dm), dm); err != nil {
				return err
			}
			return ready(dm.Generation, dm.Status.ObservedGeneration, dm.Status.Conditions)
		})
		if dm.Status.URL == nil || dm.Status.URL.String() != "https://"+domain {
			t.Errorf("DomainMapping URL %v, want https://%s", dm.Status.URL, domain)
		}
		e.eventually(30*time.Second, "the mapping's secret", func() error { return gw.holds(domain, dmData[corev1.TLSCertKey]) })
		// The mapping claimed its domain for its namespace, as Knative's
		// reconciler does with autocreate-cluster-domain-claims.
		e.eventually(30*time.Second, "the mapping's ClusterDomainClaim", func() error {
			var claim networkingv1alpha1.ClusterDomainClaim
			if err := e.client.Get(ctx, client.ObjectKey{Name: domain}, &claim); err != nil {
				return err
			}
			if claim.Spec.Namespace != "default" {
				return fmt.Errorf("ClusterDomainClaim %s delegates it to %q, want default", domain, claim.Spec.Namespace)
			}
			return nil
		})
		if err := gw.holds(host, def.Data[corev1.TLSCertKey]); err != nil {
			t.Errorf("the Service's host lost the default certificate: %v", err)
		}
	})

	t.Run("a second mapping of the domain", func(t *testing.T) {
		svc := &servingv1.Service{}
		svc.Namespace, svc.Name = "other", "hello"
		svc.Spec.Template.Annotations = map[string]string{"autoscaling.knative.dev/initial-scale": "0"}
		svc.Spec.Template.Spec.Containers = []corev1.Container{{Image: "ghcr.io/knative/helloworld-go"}}
		if err := e.client.Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
		dm := &v1beta1.DomainMapping{
			ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: domain},
			Spec: v1beta1.DomainMappingSpec{
				Ref: v1beta1.KReference{APIVersion: servingv1.APIVersion, Kind: servingv1.KindService, Name: "hello"},
			},
		}
		if err := e.client.Create(ctx, dm); err != nil {
			t.Fatal(err)
		}
		e.eventually(30*time.Second, "the second mapping refused", func() error {
			if err := e.client.Get(ctx, client.ObjectKeyFromObject(dm), dm); err != nil {
				return err
			}
			var claimed, readyCond *servingv1.Condition
			for i, c := range dm.Status.Conditions {
				switch c.Type {
				case v1beta1.ConditionDomainClaimed:
					claimed = &dm.Status.Conditions[i]
				case servingv1.ConditionReady:
					readyCond = &dm.Status.Conditions[i]
				}
			}
			if claimed == nil || claimed.Status != corev1.ConditionFalse || claimed.Reason != v1beta1.ReasonDomainAlreadyClaimed {
				return fmt.Errorf("DomainClaimed %+v, want False DomainAlreadyClaimed", claimed)
			}
			if readyCond == nil || readyCond.Status == corev1.ConditionTrue {
				return fmt.Errorf("Ready %+v, want not True", readyCond)
			}
			return nil
		})
		// The first mapping keeps its domain and its certificate.
		var first v1beta1.DomainMapping
		if err := e.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: domain}, &first); err != nil {
			t.Fatal(err)
		}
		if err := ready(first.Generation, first.Status.ObservedGeneration, first.Status.Conditions); err != nil {
			t.Errorf("the first mapping: %v", err)
		}
	})
}
