package xdsclient

import (
	"errors"
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// DefaultUserAgent is the user_agent_name a Node gets when it sets none.
const DefaultUserAgent = "kgate"

// sendAllClustersFeature is the client feature telling an LRS server that
// the client honours send_all_clusters; Envoy and grpc-go advertise it too.
const sendAllClustersFeature = "envoy.lrs.supports_send_all_clusters"

// Node identifies a client to the xDS and LRS servers.
type Node struct {
	// ID is the node id; required.
	ID string
	// Cluster is the node cluster; optional.
	Cluster string
	// UserAgent is the user_agent_name, DefaultUserAgent when empty. It
	// must not start with "gRPC": kgate's server takes such a node for a
	// proxyless gRPC client and serves it API listeners.
	UserAgent string
}

// proto checks n and returns it as sent on the wire.
func (n Node) proto() (*corev3.Node, error) {
	if n.ID == "" {
		return nil, errors.New("xdsclient: the node needs an id")
	}
	agent := n.UserAgent
	if agent == "" {
		agent = DefaultUserAgent
	}
	if strings.HasPrefix(agent, "gRPC") {
		return nil, fmt.Errorf("xdsclient: user agent %q: must not start with \"gRPC\", which marks proxyless gRPC clients", agent)
	}
	return &corev3.Node{
		Id:             n.ID,
		Cluster:        n.Cluster,
		UserAgentName:  agent,
		ClientFeatures: []string{sendAllClustersFeature},
	}, nil
}
