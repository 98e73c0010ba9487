// Package auth decides what an authenticated control-plane client may do:
// which xDS types its role may receive, whether its load reports count,
// and how many streams and names it may hold. The xDS server and the
// load-reporting server both ask it, with the identity the client's
// certificate names (see package pki).
//
// A connection without TLS carries no identity. Servers accept such
// connections only when they were started without TLS, which kgate does
// for a development server on loopback alone (`kgate xds`); such a peer is
// Anonymous and allowed everything, as before authentication existed.
package auth

import (
	"context"
	"errors"
	"fmt"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/kgate/kgate/pki"
)

// Peer is the client at the other end of a stream.
type Peer struct {
	// Identity is what its certificate names; zero when Anonymous.
	Identity pki.Identity
	// Anonymous says the connection has no TLS: a development server.
	Anonymous bool
}

func (p Peer) String() string {
	if p.Anonymous {
		return "anonymous"
	}
	return p.Identity.String()
}

// PeerOf returns the peer of a stream's context.
func PeerOf(ctx context.Context) (Peer, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return Peer{}, errors.New("no peer in the stream's context")
	}
	if p.AuthInfo == nil {
		return Peer{Anonymous: true}, nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return Peer{}, fmt.Errorf("unexpected transport security %q", p.AuthInfo.AuthType())
	}
	id, err := pki.PeerIdentity(info.State)
	if err != nil {
		return Peer{}, err
	}
	return Peer{Identity: id}, nil
}

// receives lists the types each role may receive.
var receives = map[pki.Role][]string{
	pki.Gateway:   {resource.ListenerType, resource.ScopedRouteType, resource.RouteType, resource.ClusterType, resource.EndpointType, resource.SecretType},
	pki.Activator: {resource.ClusterType, resource.EndpointType},
	pki.Proxyless: {resource.ListenerType, resource.RouteType, resource.ClusterType, resource.EndpointType},
	// An observer reads config, not private keys.
	pki.Observer: {resource.ListenerType, resource.ScopedRouteType, resource.RouteType, resource.ClusterType, resource.EndpointType},
}

// MayReceive says whether p may subscribe to typeURL.
func (p Peer) MayReceive(typeURL string) bool {
	if p.Anonymous {
		return true
	}
	for _, t := range receives[p.Identity.Role] {
		if t == typeURL {
			return true
		}
	}
	return false
}

// ReportsCount says whether p's load reports steer the autoscaler: those
// of the components that carry traffic.
func (p Peer) ReportsCount() bool {
	if p.Anonymous {
		return true
	}
	switch p.Identity.Role {
	case pki.Gateway, pki.Activator, pki.Proxyless:
		return true
	}
	return false
}

// IsGateway says whether p's ACKs decide a Route's readiness: a gateway,
// or anyone on a development server, where nobody is authenticated.
func (p Peer) IsGateway() bool {
	return p.Anonymous || p.Identity.Role == pki.Gateway
}

// CheckNode says whether p may use nodeID: the id its certificate names;
// anything for an anonymous peer, whose id only names it in logs.
func (p Peer) CheckNode(nodeID string) error {
	if p.Anonymous {
		return nil
	}
	if nodeID == "" {
		return errors.New("the request carries no node id")
	}
	if p.Identity.Matches(nodeID) {
		return nil
	}
	return fmt.Errorf("node id %q is not the certificate's (%s)", nodeID, p.Identity)
}
