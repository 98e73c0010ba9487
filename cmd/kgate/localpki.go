package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/kgate/kgate/pki"
)

// localCALifetime bounds kgate local's per-run CA: it lives in memory and
// dies with the process, so only a run longer than this would outlive it.
const localCALifetime = 365 * 24 * time.Hour

// localPKI is kgate local's control-plane trust: a CA made for this run
// only, held in memory, never written where a user would trust it (it is
// not the HTTPS CA). Every component kgate local starts gets a certificate
// for its role from it; nothing else can read config or report load.
type localPKI struct {
	ca     *pki.CA
	server *pki.Issuer
}

func newLocalPKI() (*localPKI, error) {
	ca, err := pki.NewCA("kgate local control plane (this run only)", time.Now(), localCALifetime)
	if err != nil {
		return nil, err
	}
	l := &localPKI{ca: ca}
	l.server = l.issuer(pki.Identity{Role: pki.Server, ID: "kgate-local"},
		[]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback})
	return l, nil
}

func (l *localPKI) issuer(id pki.Identity, dns []string, ips []net.IP) *pki.Issuer {
	return pki.NewIssuer(func() *pki.CA { return l.ca }, pki.Request{Identity: id, DNSNames: dns, IPs: ips}, nil)
}

// serverTLS is the xDS server's TLS config.
func (l *localPKI) serverTLS() *tls.Config { return pki.ServerConfig(l.server) }

// client returns transport credentials for a component with id.
func (l *localPKI) client(id pki.Identity) credentials.TransportCredentials {
	return credentials.NewTLS(pki.ClientConfig(l.issuer(id, nil, nil)))
}

// writeBundle issues a certificate for id valid as long as the CA, for a
// process that reads it from files once (Envoy, an operator's tool), and
// writes it into dir.
func (l *localPKI) writeBundle(id pki.Identity, dir string) error {
	b, err := l.ca.Issue(pki.Request{Identity: id, Now: time.Now(), Lifetime: localCALifetime})
	if err != nil {
		return err
	}
	if err := b.WriteFiles(dir); err != nil {
		return fmt.Errorf("writing the credentials of %s: %w", id, err)
	}
	return nil
}
