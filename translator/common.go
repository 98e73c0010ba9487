package translator

import (
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// Envoy extension names.
const (
	hcmFilterName         = "envoy.filters.network.http_connection_manager"
	routerFilterName      = "envoy.filters.http.router"
	earlyHeaderMutation   = "envoy.http.early_header_mutation.header_mutation"
	upstreamHTTPOptionKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
)

// ads is the config source of every dynamic resource: the one ADS stream.
func ads() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
}

// mustAny packs a message. Marshalling a well-formed generated message
// cannot fail; a failure is a programming error in this package.
func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic("translator: marshal " + string(proto.MessageName(m)) + ": " + err.Error())
	}
	return a
}

// routerFilter is the terminal HTTP filter of every connection manager.
func routerFilter() *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{
		Name:       routerFilterName,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerv3.Router{})},
	}
}

func socketAddress(address string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Protocol:      corev3.SocketAddress_TCP,
		Address:       address,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// validateDeep runs Envoy's validation rules on m and on every message
// packed in an Any inside it, at any depth: a generated ValidateAll stops
// at an Any, where extensions' configs (overload monitors, transport
// sockets, protocol options) live.
func validateDeep(m proto.Message) error {
	if v, ok := m.(interface{ ValidateAll() error }); ok {
		if err := v.ValidateAll(); err != nil {
			return err
		}
	}
	var err error
	walkAnys(m.ProtoReflect(), func(a *anypb.Any) bool {
		err = validateAny(a)
		return err == nil
	})
	return err
}

// validateAny unpacks a and validates what it holds, deeply.
func validateAny(a *anypb.Any) error {
	inner, err := a.UnmarshalNew()
	if err != nil {
		return fmt.Errorf("unpack %s: %w", a.GetTypeUrl(), err)
	}
	if err := validateDeep(inner); err != nil {
		return fmt.Errorf("%s: %w", a.GetTypeUrl(), err)
	}
	return nil
}

// walkAnys calls visit with each Any directly reachable from msg (not
// those inside an Any), until visit returns false.
func walkAnys(msg protoreflect.Message, visit func(*anypb.Any) bool) bool {
	if a, ok := msg.Interface().(*anypb.Any); ok {
		return visit(a)
	}
	more := true
	msg.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Message() == nil:
		case fd.IsList():
			for i := 0; more && i < v.List().Len(); i++ {
				more = walkAnys(v.List().Get(i).Message(), visit)
			}
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					more = walkAnys(mv.Message(), visit)
					return more
				})
			}
		default:
			more = walkAnys(v.Message(), visit)
		}
		return more
	})
	return more
}
