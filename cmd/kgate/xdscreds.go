package main

import (
	"fmt"
	"net"

	"github.com/spf13/pflag"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kgate/kgate/pki"
)

// defaultXDSTLSDir is where the install mounts a component's control-plane
// credentials (a kubernetes.io/tls Secret with ca.crt).
const defaultXDSTLSDir = "/etc/kgate/xds-tls"

// xdsClientFlags are how a component authenticates to the control plane:
// the folder of its certificate, or plaintext to a development server on
// loopback.
type xdsClientFlags struct {
	tlsDir    string
	plaintext bool
}

func (f *xdsClientFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.tlsDir, "xds-tls-dir", defaultXDSTLSDir, "folder of this component's control-plane credentials: "+pki.CAFile+", "+pki.CertFile+", "+pki.KeyFile+" (re-read when they change)")
	fs.BoolVar(&f.plaintext, "plaintext", false, "no TLS to the control plane: only to a development server (kgate xds) on a loopback address")
}

// credentials are the transport credentials for a control plane at
// address.
func (f xdsClientFlags) credentials(address string) (credentials.TransportCredentials, error) {
	if f.plaintext {
		if err := requireLoopback("--xds-address", address, "--plaintext"); err != nil {
			return nil, err
		}
		return insecure.NewCredentials(), nil
	}
	src, err := pki.NewDir(f.tlsDir)
	if err != nil {
		return nil, fmt.Errorf("--xds-tls-dir: %w", err)
	}
	return credentials.NewTLS(pki.ClientConfig(src)), nil
}

// requireLoopback refuses plaintext control-plane traffic off this
// machine: kgate allows it only to and from a development server.
func requireLoopback(flag, address, why string) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%s %q: must be host:port: %w", flag, address, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%s %s: %s is allowed only on a loopback address (127.0.0.1, ::1, localhost); give TLS credentials instead", flag, address, why)
}
