// Package pki issues and checks the certificates kgate's components use to
// authenticate each other on the control plane: the xDS and load-reporting
// server and its clients (gateways, activators, proxyless gRPC clients and
// read-only tools).
//
// Every certificate names one Identity in a URI subject alternative name,
// spiffe://kgate.internal/<role>/<id>. The role decides what a client may
// receive and whether its load reports count (see package xds/auth); the id
// is the xDS node id the client must use. An id ending in "*" covers every
// node id with that prefix: a Deployment's pods share one Secret but each
// reports its pod name.
//
// The CA and the certificates are plain ECDSA P-256 X.509: Envoy, grpc-go
// and cert-manager all read them. Private keys are held in Bundle, whose
// log and print forms never show them.
package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// TrustDomain is the SPIFFE trust domain of every identity kgate issues.
const TrustDomain = "kgate.internal"

// Role says what a client of the control plane is.
type Role string

// Roles.
const (
	// Gateway is Envoy or the dev gateway: it gets the whole gateway
	// config and reports load.
	Gateway Role = "gateway"
	// Activator is kgate's activator: it gets clusters and endpoints and
	// reports load.
	Activator Role = "activator"
	// Proxyless is a proxyless gRPC client: it gets API listeners, routes,
	// clusters and endpoints, and reports load.
	Proxyless Role = "proxyless"
	// Observer is a read-only tool (a config dump for operators): it may
	// read config; its load reports never count.
	Observer Role = "observer"
	// Server is the xDS server itself; clients accept only this role on
	// the other end.
	Server Role = "xds-server"
)

// Roles lists every role, in a stable order.
var Roles = []Role{Gateway, Activator, Proxyless, Observer, Server}

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown role %q: must be one of gateway, activator, proxyless, observer, xds-server", s)
}

// Identity is who a certificate speaks for.
type Identity struct {
	Role Role
	// ID is the node id the holder uses; a trailing "*" matches any
	// suffix.
	ID string
}

func (id Identity) String() string { return string(id.Role) + "/" + id.ID }

// URI is the identity as a certificate carries it.
func (id Identity) URI() *url.URL {
	path := "/" + string(id.Role) + "/" + id.ID
	// RawPath keeps a trailing "*" as it is: a valid path character that
	// Path alone would escape.
	return &url.URL{Scheme: "spiffe", Host: TrustDomain, Path: path, RawPath: path}
}

// Check says whether the identity can be put in a certificate.
func (id Identity) Check() error {
	if _, err := ParseRole(string(id.Role)); err != nil {
		return err
	}
	if id.ID == "" {
		return errors.New("the identity needs an id")
	}
	if strings.ContainsAny(id.ID, "/?#% ") {
		return fmt.Errorf("id %q: must not contain '/', '?', '#', '%%' or spaces", id.ID)
	}
	if i := strings.IndexByte(id.ID, '*'); i >= 0 && i != len(id.ID)-1 {
		return fmt.Errorf("id %q: '*' may only end it", id.ID)
	}
	return nil
}

// Matches says whether nodeID is one the identity may use.
func (id Identity) Matches(nodeID string) bool {
	if prefix, ok := strings.CutSuffix(id.ID, "*"); ok {
		return strings.HasPrefix(nodeID, prefix) && nodeID != ""
	}
	return nodeID == id.ID
}

// IdentityOf reads the identity a verified certificate names: exactly one
// URI SAN in kgate's trust domain.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	var found []Identity
	for _, u := range cert.URIs {
		if u.Scheme != "spiffe" || u.Host != TrustDomain {
			continue
		}
		role, id, ok := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
		if !ok {
			return Identity{}, fmt.Errorf("certificate URI %q: want spiffe://%s/<role>/<id>", u, TrustDomain)
		}
		ident := Identity{Role: Role(role), ID: id}
		if err := ident.Check(); err != nil {
			return Identity{}, fmt.Errorf("certificate URI %q: %w", u, err)
		}
		found = append(found, ident)
	}
	switch len(found) {
	case 0:
		return Identity{}, fmt.Errorf("the certificate names no spiffe://%s identity", TrustDomain)
	case 1:
		return found[0], nil
	default:
		return Identity{}, errors.New("the certificate names more than one kgate identity")
	}
}
