// Package secrets keeps the control plane's CA and the data plane's
// certificates in Kubernetes Secrets of the system namespace: the
// controller creates them at start when absent and renews each before it
// expires. Gateways and activators mount theirs; the controller issues its
// own server certificate in memory from the CA.
//
// A Secret without kgate's managed-by label was made by someone else
// (cert-manager, say) and is left alone: kgate then only reads the CA.
package secrets

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kgate/kgate/pki"
)

// Names of the Secrets and the identities they carry.
const (
	// CASecret holds the CA: tls.crt, tls.key, and ca.crt, what the
	// issued certificates trust.
	CASecret = "kgate-xds-ca"
	// GatewaySecret is every gateway's certificate, for node ids
	// "kgate-gateway-*" (their pod names).
	GatewaySecret = "kgate-gateway-xds-tls"
	// ActivatorSecret is every activator's, for "kgate-activator-*".
	ActivatorSecret = "kgate-activator-xds-tls"

	managedBy = "app.kubernetes.io/managed-by"
	kgate     = "kgate"
)

// Issued lists the workload Secrets kgate keeps, with their identities.
var Issued = map[string]pki.Identity{
	GatewaySecret:   {Role: pki.Gateway, ID: "kgate-gateway-*"},
	ActivatorSecret: {Role: pki.Activator, ID: "kgate-activator-*"},
}

// Options configure a Manager.
type Options struct {
	// Client writes Secrets; Reader reads them straight from the API
	// server (a cached client would watch every Secret of the cluster).
	Client client.Client
	Reader client.Reader
	// Namespace is the system namespace.
	Namespace string
	// Lifetime of the workload certificates (default pki.DefaultLifetime);
	// each is renewed after two thirds of it.
	Lifetime time.Duration
	// ServerNames are the DNS names of the controller's xDS server.
	ServerNames []string
	// ServerIPs are its addresses, for clients that dial an IP and verify
	// the server's name against it, as grpc-go's xDS client does.
	ServerIPs []net.IP
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Manager keeps the Secrets and hands out the server's credentials.
type Manager struct {
	opts Options

	mu sync.Mutex
	ca *pki.CA
}

// New returns a manager; Ensure loads or creates the Secrets.
func New(opts Options) *Manager {
	if opts.Lifetime <= 0 {
		opts.Lifetime = pki.DefaultLifetime
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Manager{opts: opts}
}

// CA returns the CA in use; nil before Ensure.
func (m *Manager) CA() *pki.CA {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ca
}

// ServerSource is the xDS server's certificate, issued in memory from the
// CA and renewed as it ages.
func (m *Manager) ServerSource() pki.Source {
	return pki.NewIssuer(m.CA, pki.Request{
		Identity: pki.Identity{Role: pki.Server, ID: "kgate-controller"},
		DNSNames: m.opts.ServerNames, IPs: m.opts.ServerIPs, Lifetime: m.opts.Lifetime,
	}, m.opts.Now)
}

// Ensure loads the CA, creating it when absent, and creates or renews the
// workload Secrets that are due.
func (m *Manager) Ensure(ctx context.Context) error {
	ca, err := m.loadCA(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.ca = ca
	m.mu.Unlock()
	for name, id := range Issued {
		if err := m.ensureIssued(ctx, ca, name, id); err != nil {
			return err
		}
	}
	return nil
}

// Run calls Ensure every interval until ctx ends, logging failures: a
// failed renewal is retried long before the certificates expire.
func (m *Manager) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Ensure(ctx); err != nil && ctx.Err() == nil {
				m.opts.Logger.Error("renewing the control plane's certificates", "error", err)
			}
		}
	}
}

func (m *Manager) get(ctx context.Context, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	err := m.opts.Reader.Get(ctx, client.ObjectKey{Namespace: m.opts.Namespace, Name: name}, s)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading Secret %s/%s: %w", m.opts.Namespace, name, err)
	}
	return s, nil
}

// loadCA reads the CA Secret, creating it when absent. Two replicas racing
// to create it agree: the loser reads the winner's.
func (m *Manager) loadCA(ctx context.Context) (*pki.CA, error) {
	s, err := m.get(ctx, CASecret)
	if err != nil {
		return nil, err
	}
	if s == nil {
		ca, err := pki.NewCA("kgate control plane", m.opts.Now(), 0)
		if err != nil {
			return nil, err
		}
		s = m.secret(CASecret, ca.CertPEM(), ca.KeyPEM(), ca.CertPEM())
		switch err := m.opts.Client.Create(ctx, s); {
		case apierrors.IsAlreadyExists(err):
			return m.loadCA(ctx)
		case err != nil:
			return nil, fmt.Errorf("creating Secret %s/%s: %w", m.opts.Namespace, CASecret, err)
		}
		m.opts.Logger.Info("created the control plane's CA", "secret", CASecret, "ca", ca)
		return ca, nil
	}
	ca, err := pki.LoadCA(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return nil, fmt.Errorf("Secret %s/%s: %w", m.opts.Namespace, CASecret, err)
	}
	if trust := s.Data[pki.CAFile]; len(trust) > 0 && !bytes.Equal(trust, ca.CertPEM()) {
		ca = ca.Trusting(bytes.TrimPrefix(trust, ca.CertPEM()))
	}
	return ca, nil
}

// ensureIssued creates or renews one workload Secret, unless someone else
// manages it.
func (m *Manager) ensureIssued(ctx context.Context, ca *pki.CA, name string, id pki.Identity) error {
	s, err := m.get(ctx, name)
	if err != nil {
		return err
	}
	if s != nil && s.Labels[managedBy] != kgate {
		return nil
	}
	if s != nil && !m.due(s, ca) {
		return nil
	}
	b, err := ca.Issue(pki.Request{Identity: id, Now: m.opts.Now(), Lifetime: m.opts.Lifetime})
	if err != nil {
		return err
	}
	fresh := m.secret(name, b.CertPEM, b.KeyPEM, b.CAPEM)
	if s == nil {
		err = m.opts.Client.Create(ctx, fresh)
	} else {
		s.Data = fresh.Data
		err = m.opts.Client.Update(ctx, s)
	}
	if err != nil {
		return fmt.Errorf("writing Secret %s/%s: %w", m.opts.Namespace, name, err)
	}
	m.opts.Logger.Info("issued control-plane credentials", "secret", name, "credentials", b)
	return nil
}

// due says whether a Secret's certificate must be renewed: unreadable,
// past two thirds of its life, or not trusting the CA in use.
func (m *Manager) due(s *corev1.Secret, ca *pki.CA) bool {
	b, err := pki.NewBundle(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey], s.Data[pki.CAFile])
	if err != nil {
		return true
	}
	return pki.RenewalDue(b, m.opts.Now()) || !bytes.Equal(b.CAPEM, ca.TrustPEM())
}

func (m *Manager) secret(name string, cert, key, trust []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: m.opts.Namespace,
			Labels: map[string]string{managedBy: kgate, "app.kubernetes.io/name": kgate},
		},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: cert, corev1.TLSPrivateKeyKey: key, pki.CAFile: trust},
	}
}
