package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// ServerConfig is the TLS config of the xDS server: its certificate from
// src, and a client certificate required, chained to src's CA and naming
// a kgate identity. Both are read from src at each handshake.
func ServerConfig(src Source) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			b, err := src.Bundle()
			if err != nil {
				return nil, fmt.Errorf("loading the server certificate: %w", err)
			}
			return &tls.Config{
				MinVersion:   tls.VersionTLS12,
				Certificates: []tls.Certificate{*b.Certificate()},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    b.Roots(),
				NextProtos:   []string{"h2"},
				VerifyConnection: func(cs tls.ConnectionState) error {
					_, err := PeerIdentity(cs)
					return err
				},
			}, nil
		},
	}
}

// ClientConfig is the TLS config of a control-plane client: its
// certificate from src, and a server certificate chained to src's CA and
// naming the xDS server's role. Host names are not checked: the identity
// is what is trusted, wherever the server is reached.
func ClientConfig(src Source) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2"},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			b, err := src.Bundle()
			if err != nil {
				return nil, fmt.Errorf("loading the client certificate: %w", err)
			}
			return b.Certificate(), nil
		},
		// The chain is checked in VerifyConnection, against the CA src
		// holds now, with the identity rather than a host name.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			b, err := src.Bundle()
			if err != nil {
				return fmt.Errorf("loading the trusted CA: %w", err)
			}
			id, err := verifyChain(cs, b.Roots())
			if err != nil {
				return fmt.Errorf("the xDS server's certificate: %w", err)
			}
			if id.Role != Server {
				return fmt.Errorf("the xDS server's certificate names %s, not role %s", id, Server)
			}
			return nil
		},
	}
}

// PeerIdentity is the identity of a verified TLS peer: the one its leaf
// certificate names.
func PeerIdentity(cs tls.ConnectionState) (Identity, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return Identity{}, errors.New("no verified client certificate")
	}
	return IdentityOf(cs.VerifiedChains[0][0])
}

func verifyChain(cs tls.ConnectionState, roots *x509.CertPool) (Identity, error) {
	if len(cs.PeerCertificates) == 0 {
		return Identity{}, errors.New("no certificate presented")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return Identity{}, err
	}
	return IdentityOf(leaf)
}
