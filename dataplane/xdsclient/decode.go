package xdsclient

import (
	"errors"
	"fmt"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
)

// decode turns a response's resources into the update a handler sees:
// each decoded and validated. One bad resource fails the whole response,
// as it does in Envoy.
func decode(typeURL string, resources []*discoveryv3.Resource, removed []string) (Update, error) {
	u := Update{TypeURL: typeURL, Removed: removed}
	for _, r := range resources {
		m, err := decodeResource(typeURL, r)
		if err != nil {
			return Update{}, fmt.Errorf("resource %q: %w", r.GetName(), err)
		}
		u.Resources = append(u.Resources, Resource{Name: r.GetName(), Version: r.GetVersion(), Message: m})
	}
	return u, nil
}

// validator is implemented by every Envoy message (protoc-gen-validate).
type validator interface{ Validate() error }

func decodeResource(typeURL string, r *discoveryv3.Resource) (proto.Message, error) {
	a := r.GetResource()
	if a == nil {
		return nil, errors.New("no resource body")
	}
	if a.GetTypeUrl() != typeURL {
		return nil, fmt.Errorf("type %s in a %s response", a.GetTypeUrl(), typeURL)
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		return nil, fmt.Errorf("decoding: %w", err)
	}
	if v, ok := m.(validator); ok {
		if err := v.Validate(); err != nil {
			return nil, fmt.Errorf("invalid: %w", err)
		}
	}
	return m, nil
}
