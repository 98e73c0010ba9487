package manifest

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	sjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	corev1 "k8s.io/api/core/v1"

	networkingv1alpha1 "github.com/kgate/kgate/api/networking/v1alpha1"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	servingv1beta1 "github.com/kgate/kgate/api/serving/v1beta1"
)

// The steps of decodeDocument, one rule each, in the order it runs them. A
// step returns false to stop the document: with an error (fail) it is
// rejected, with an Object it is skipped, with neither it is empty; the last
// step that returns true leaves the decoded Object.

// decoding is the state decodeDocument threads through its steps; each field
// is set by the step its comment names and read by later ones.
type decoding struct {
	file string
	doc  document

	start  int     // file line where the document starts (notBlank)
	js     []byte  // the document as JSON (validYAML)
	head   header  // what the document says it is (stringHeader)
	into   any     // the Go value the document decodes into (knownKind)
	strict []error // strict decoding's complaints (fieldTypes)

	obj *Object // the result: decoded (object) or skipped (skipForeign)
	err *Error  // why the document is rejected (fail)
}

// result is decodeDocument's return: the error, else the object, if any.
func (s *decoding) result() (*Object, error) {
	if s.err != nil {
		return nil, s.err
	}
	return s.obj, nil
}

// fail rejects the document with an error at line, naming any non-breaking
// spaces, a likely cause; it returns false, to stop the steps.
func (s *decoding) fail(line int, format string, args ...any) bool {
	msg := fmt.Sprintf(format, args...)
	if n := s.doc.nbspLine(line); n != 0 {
		msg += "; " + nbspHint(n)
	}
	s.err = &Error{File: s.file, Line: line, Message: msg}
	return false
}

// notBlank: a document of only blank lines and comments is empty, not an error.
func (s *decoding) notBlank() bool {
	s.start = s.doc.start()
	return s.start != 0
}

// MaxDocumentBytes bounds one document: the API server takes requests of at
// most 3 MiB, and parsing a larger one would cost memory (a 50 MB document
// took 437 MB) for an object no cluster would accept.
const MaxDocumentBytes = 3 << 20

// bounded: a document larger than the API server would take is refused
// before it is parsed.
func (s *decoding) bounded() bool {
	if n := len(s.doc.text); n > MaxDocumentBytes {
		return s.fail(s.start, "document is %d bytes; the API server accepts at most %d (3 MiB)", n, MaxDocumentBytes)
	}
	return true
}

// yamlLine finds the "line N" a YAML parser error names.
var yamlLine = regexp.MustCompile(`line (\d+)`)

// validYAML: the document must parse, duplicate keys included; the error is on the parser's line.
func (s *decoding) validYAML() bool {
	js, err := yaml.YAMLToJSONStrict(s.doc.text)
	if err != nil {
		line := s.start
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			n, _ := strconv.Atoi(m[1])
			line = s.doc.fileLine(n)
		}
		return s.fail(line, "invalid YAML: %s", cleanYAMLError(err))
	}
	s.js = bytes.TrimSpace(js)
	return true
}

// notNull: a document that is just a null ("~", "null") is empty too.
func (s *decoding) notNull() bool {
	return !bytes.Equal(s.js, []byte("null"))
}

// mapping: a document must be an object, since only objects have apiVersion, kind and metadata.
func (s *decoding) mapping() bool {
	if len(s.js) == 0 || s.js[0] != '{' {
		return s.fail(s.start, "document is not a mapping (an object with apiVersion, kind and metadata)")
	}
	return true
}

// stringHeader: apiVersion, kind, metadata.name and .namespace must be strings (YAML booleans are named).
func (s *decoding) stringHeader() bool {
	h, problem := readHeader(s.js)
	if problem != "" {
		return s.fail(s.start, "%s", problem)
	}
	s.head = h
	return true
}

// apiVersionAndKind: a document must say what it is, to be read or skipped.
func (s *decoding) apiVersionAndKind() bool {
	var missing []string
	if s.head.APIVersion == "" {
		missing = append(missing, "apiVersion")
	}
	if s.head.Kind == "" {
		missing = append(missing, "kind")
	}
	if len(missing) > 0 {
		return s.fail(s.start, "missing field(s): %s", strings.Join(missing, ", "))
	}
	return true
}

// skipForeign: what is neither serving.knative.dev nor a v1 ConfigMap is skipped with a warning, not rejected.
func (s *decoding) skipForeign() bool {
	h := s.head
	if strings.HasPrefix(h.APIVersion, servingv1.GroupName+"/") || h.APIVersion == "v1" && h.Kind == "ConfigMap" ||
		h.APIVersion == networkingv1alpha1.APIVersion && h.Kind == networkingv1alpha1.KindClusterDomainClaim {
		return true
	}
	s.obj = &Object{
		File: s.file, Line: s.start,
		APIVersion: h.APIVersion, Kind: h.Kind, Namespace: orDefault(h.Namespace), Name: h.Name,
		Warnings: []string{fmt.Sprintf("skipped %s %s: kgate reads only %s objects, %s DomainMappings, %s ClusterDomainClaims and v1 ConfigMaps",
			h.APIVersion, h.Kind, servingv1.APIVersion, servingv1beta1.APIVersion, networkingv1alpha1.APIVersion)},
	}
	return false
}

// servingVersion: serving.knative.dev is read at v1, at v1alpha1 by conversion, and at v1beta1 for
// DomainMapping alone, the one kind Knative serves there; other versions are errors.
func (s *decoding) servingVersion() bool {
	switch v := s.head.APIVersion; {
	case v == servingv1.APIVersion, v == v1alpha1, !strings.HasPrefix(v, servingv1.GroupName+"/"):
		return true
	case v == servingv1beta1.APIVersion && s.head.Kind == servingv1beta1.KindDomainMapping:
		return true
	}
	return s.fail(s.start, "%s is not supported; use %s", s.head.APIVersion, servingv1.APIVersion)
}

// knownKind: the kind must be one of the version's (Service, Configuration, Route, Revision; DomainMapping;
// or ConfigMap).
func (s *decoding) knownKind() bool {
	switch s.head.APIVersion {
	case servingv1.APIVersion:
		s.into = servingInto(s.head.Kind)
	case v1alpha1:
		s.into = alphaInto(s.head.Kind) // a nil alphaObject converts to a nil any
	case servingv1beta1.APIVersion: // servingVersion let only DomainMapping through
		s.into = &servingv1beta1.DomainMapping{}
	case networkingv1alpha1.APIVersion: // skipForeign let only ClusterDomainClaim through
		s.into = &networkingv1alpha1.ClusterDomainClaim{}
	default: // v1, whose one kind that gets here is ConfigMap (see skipForeign)
		s.into = &corev1.ConfigMap{}
	}
	if s.into == nil {
		return s.fail(s.start, "unknown kind %q in %s: want Service, Configuration, Route or Revision", s.head.Kind, s.head.APIVersion)
	}
	return true
}

// servingInto returns the serving.knative.dev/v1 type to decode kind into, or
// nil for a kind kgate does not read.
func servingInto(kind string) any {
	switch kind {
	case servingv1.KindService:
		return &servingv1.Service{}
	case servingv1.KindConfiguration:
		return &servingv1.Configuration{}
	case servingv1.KindRoute:
		return &servingv1.Route{}
	case servingv1.KindRevision:
		return &servingv1.Revision{}
	}
	return nil
}

// named: an object kgate reads must have metadata.name, which identifies it.
func (s *decoding) named() bool {
	if s.head.Name == "" {
		return s.fail(s.start, "missing field(s): metadata.name")
	}
	return true
}

// fieldTypes: every value must have its field's type; the error names the field, on its line.
func (s *decoding) fieldTypes() bool {
	strict, err := sjson.UnmarshalStrict(s.js, s.into)
	if err != nil {
		line, msg := s.start, err.Error()
		if m := typeError.FindStringSubmatch(msg); m != nil {
			path := jsonPath(m[2])
			if n := locate(s.doc, path); n != 0 {
				line = n
			}
			msg = fmt.Sprintf("cannot decode %s into %s: %s", m[1], m[3], printablePath(path))
		}
		return s.fail(line, "%s", msg)
	}
	s.strict = strict
	return true
}

// knownFieldsOnce: fields are known and set once, lest a typo be lost; all are named, on the first one's line.
func (s *decoding) knownFieldsOnce() bool {
	if len(s.strict) == 0 {
		return true
	}
	var unknown, dup []string
	line := 0
	for _, e := range s.strict {
		fe, ok := e.(sjson.FieldError)
		if !ok {
			return s.fail(s.start, "%s", e.Error())
		}
		path := fe.FieldPath()
		if n := locate(s.doc, path); n != 0 && (line == 0 || n < line) {
			line = n
		}
		if strings.Contains(e.Error(), "duplicate field") {
			dup = append(dup, printablePath(path))
		} else {
			unknown = append(unknown, printablePath(path))
		}
	}
	if line == 0 {
		line = s.start
	}
	var msgs []string
	if len(unknown) > 0 {
		sort.Strings(unknown)
		msgs = append(msgs, "must not set the field(s): "+strings.Join(unknown, ", "))
	}
	if len(dup) > 0 {
		sort.Strings(dup)
		msgs = append(msgs, "duplicate field(s): "+strings.Join(dup, ", "))
	}
	return s.fail(line, "%s", strings.Join(msgs, "; "))
}

// object: the document decoded, in metadata's namespace or "default".
func (s *decoding) object() bool {
	h := s.head
	s.obj = &Object{
		File: s.file, Line: s.start,
		APIVersion: h.APIVersion, Kind: h.Kind, Namespace: orDefault(h.Namespace), Name: h.Name,
		Obj: s.into,
	}
	return true
}

// convertV1alpha1: v1alpha1 is converted to v1 and warned about; what cannot convert is an error on its line.
func (s *decoding) convertV1alpha1() bool {
	alpha, ok := s.into.(alphaObject)
	if !ok {
		return true
	}
	obj, notes, errs := alpha.convert()
	if len(errs) > 0 {
		return s.fail(fieldErrorsLine(s.doc, s.start, errs), "%s", fieldErrorsMessage(errs))
	}
	s.obj.Obj = obj
	s.obj.Warnings = append(s.obj.Warnings, deprecation(notes))
	return true
}

// namespaced: the object's own metadata gets the namespace it is filed under.
func (s *decoding) namespaced() bool {
	setNamespace(s.obj.Obj, s.obj.Namespace)
	return true
}

// warnNBSP: non-breaking spaces that left the document valid may still have changed a value, so they warn.
func (s *decoding) warnNBSP() bool {
	if n := s.doc.nbspLine(0); n != 0 {
		s.obj.Warnings = append(s.obj.Warnings, nbspHint(n))
	}
	return true
}
