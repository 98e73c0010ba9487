package devgateway

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// onlyFields refuses a message that sets a field outside known: the fields
// the gateway implements, and those it may ignore without serving
// differently from Envoy (names, stats, metadata). Any other field would
// change what Envoy does, so serving the config without it would route
// differently; refusing it (a NACK) makes the gap visible instead. A oneof
// member counts by its own name ("prefix", not "path_specifier").
func onlyFields(m proto.Message, known ...string) error {
	var err error
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if slices.Contains(known, string(fd.Name())) {
			return true
		}
		err = fmt.Errorf("%s.%s is not supported by the dev gateway", fd.ContainingMessage().Name(), fd.Name())
		return false
	})
	return err
}
