// Package manifest decodes manifest files — multi-document YAML or JSON — into
// the serving.knative.dev/v1 types, serving.knative.dev/v1beta1 DomainMappings
// and ConfigMaps, strictly and with errors
// located by file and line, so that a user editing a folder of manifests is
// told exactly what to fix and where.
package manifest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kgate/kgate/api/fielderr"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	servingv1beta1 "github.com/kgate/kgate/api/serving/v1beta1"
)

// DefaultNamespace is the namespace of an object whose metadata names none.
const DefaultNamespace = "default"

// Object is one decoded document of a manifest file.
type Object struct {
	File string // as given to Decode
	Line int    // 1-based line where the document starts (its first non-blank, non-comment line)

	APIVersion, Kind, Namespace, Name string // Namespace defaults to "default"

	// Obj is *servingv1.Service, *servingv1.Configuration, *servingv1.Route,
	// *servingv1.Revision, *servingv1beta1.DomainMapping or *corev1.ConfigMap.
	// It is nil for a document that was skipped because kgate does not read
	// its kind; Warnings then says so.
	// A serving.knative.dev/v1alpha1 document is converted to its v1 type
	// (APIVersion stays as written) and warned about.
	Obj any

	// Warnings are problems that do not stop the document from being used
	// (or, with a nil Obj, why it was skipped).
	Warnings []string
}

// Error is a decoding error located in a file.
type Error struct {
	File    string
	Line    int
	Message string
}

// Error returns "FILE:LINE: MESSAGE".
func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Message)
}

// nbsp is U+00A0, which web pages put in place of indentation spaces; YAML
// does not treat it as white space, so it silently changes a document's shape.
const nbsp = '\u00a0'

// Decode splits a multi-document YAML (or JSON) file and decodes every
// document it can; a bad document yields an *Error and does not stop the
// others. Empty documents are ignored. serving.knative.dev/v1 objects and
// serving.knative.dev/v1beta1 DomainMappings are decoded strictly (an
// unknown field is an error naming its path); serving.knative.dev/v1alpha1
// ones too, then converted to v1 with a deprecation warning (see
// v1alpha1.go); v1 ConfigMaps are accepted; other kinds are skipped with a
// warning.
func Decode(file string, data []byte) ([]Object, []error) {
	var objs []Object
	var errs []error
	for _, d := range split(data) {
		obj, err := decodeDocument(file, d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if obj != nil {
			objs = append(objs, *obj)
		}
	}
	return objs, errs
}

// document is one YAML document of a file.
type document struct {
	text  []byte
	first int // 1-based file line of text's first line
	lines []string
}

// fileLine turns a 1-based line within the document into a file line.
func (d document) fileLine(n int) int { return d.first + n - 1 }

// start returns the file line of the first line that is neither blank nor a
// comment, or 0 when there is none (an empty document).
func (d document) start() int {
	for i, l := range d.lines {
		t := strings.TrimFunc(l, unicode.IsSpace)
		if t != "" && !strings.HasPrefix(t, "#") {
			return d.first + i
		}
	}
	return 0
}

// nbspLine returns the file line of the first line containing U+00A0,
// preferring fileLine when it has one; 0 when no line has any.
func (d document) nbspLine(fileLine int) int {
	if i := fileLine - d.first; i >= 0 && i < len(d.lines) && strings.ContainsRune(d.lines[i], nbsp) {
		return fileLine
	}
	for i, l := range d.lines {
		if strings.ContainsRune(l, nbsp) {
			return d.first + i
		}
	}
	return 0
}

// separator matches a YAML document separator line ("---", optionally
// followed by white space or a comment).
var separator = regexp.MustCompile(`^---(\s.*)?$`)

// split cuts data into documents at "---" lines, remembering where each
// starts so that errors can name file lines.
func split(data []byte) []document {
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	var docs []document
	cur := document{first: 1}
	flush := func() {
		cur.text = []byte(strings.Join(cur.lines, "\n"))
		docs = append(docs, cur)
	}
	for i, l := range lines {
		if separator.MatchString(l) {
			flush()
			cur = document{first: i + 2}
			continue
		}
		cur.lines = append(cur.lines, l)
	}
	flush()
	return docs
}

// header is the part of every document that says what it is.
type header struct {
	APIVersion, Kind, Name, Namespace string
}

// readHeader reads apiVersion, kind and metadata's name and namespace from a
// JSON object. A value that is not a string is an error naming the field;
// YAML 1.1 reads unquoted y, n, yes, no, on and off as booleans, a common
// surprise in names.
func readHeader(js []byte) (header, string) {
	var doc struct {
		APIVersion any `json:"apiVersion"`
		Kind       any `json:"kind"`
		Metadata   any `json:"metadata"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		return header{}, err.Error()
	}
	var h header
	var problems []string
	str := func(path string, v any, dst *string) {
		switch v := v.(type) {
		case nil:
		case string:
			*dst = v
		case bool:
			problems = append(problems, fmt.Sprintf("%s must be a string, got %v (YAML reads unquoted y, n, yes, no, on and off as booleans; quote the value)", path, v))
		default:
			problems = append(problems, fmt.Sprintf("%s must be a string, got %v", path, v))
		}
	}
	str("apiVersion", doc.APIVersion, &h.APIVersion)
	str("kind", doc.Kind, &h.Kind)
	switch m := doc.Metadata.(type) {
	case nil:
	case map[string]any:
		str("metadata.name", m["name"], &h.Name)
		str("metadata.namespace", m["namespace"], &h.Namespace)
	default:
		problems = append(problems, "metadata must be an object")
	}
	return h, strings.Join(problems, "; ")
}

// decodeDocument decodes one document; it returns (nil, nil) for an empty one.
// Each rule is a step of checks.go; they run in this order until one stops
// the document: rejected (an error), skipped, empty, or decoded by the last.
func decodeDocument(file string, d document) (*Object, error) {
	s := &decoding{file: file, doc: d}
	for _, step := range []func(*decoding) bool{
		(*decoding).notBlank,
		(*decoding).bounded,
		(*decoding).validYAML,
		(*decoding).notNull,
		(*decoding).mapping,
		(*decoding).stringHeader,
		(*decoding).apiVersionAndKind,
		(*decoding).skipForeign,
		(*decoding).servingVersion,
		(*decoding).knownKind,
		(*decoding).named,
		(*decoding).fieldTypes,
		(*decoding).knownFieldsOnce,
		(*decoding).object,
		(*decoding).convertV1alpha1,
		(*decoding).namespaced,
		(*decoding).warnNBSP,
	} {
		if !step(s) {
			break
		}
	}
	return s.result()
}

// fieldErrorsLine returns the file line of the earliest field of errs (or,
// for a missing field, of its nearest parent) that the document has, or
// start.
func fieldErrorsLine(d document, start int, errs field.ErrorList) int {
	line := 0
	for _, e := range errs {
		n := 0
		for p := e.Field; n == 0 && p != ""; p = parentPath(p) {
			n = locate(d, p)
		}
		if n != 0 && (line == 0 || n < line) {
			line = n
		}
	}
	if line == 0 {
		return start
	}
	return line
}

// fieldErrorsMessage renders errs on one line, as Knative's webhook words
// them ("MESSAGE: PATH, PATH").
func fieldErrorsMessage(errs field.ErrorList) string {
	msgs := fielderr.Messages(errs)
	for i := range msgs {
		msgs[i] = strings.ReplaceAll(msgs[i], "\n", "; ")
	}
	return strings.Join(msgs, "; ")
}

// typeError matches encoding/json's type mismatch message, whose field is
// "Struct.path.to.field".
var typeError = regexp.MustCompile(`cannot unmarshal (\S+) into Go struct field [^.\s]+\.(\S+) of type (\S+)`)

// jsonPath drops the Go names of embedded structs (ConfigurationSpec, ...)
// that encoding/json puts in a type error's field path; JSON names start
// with a lower-case letter.
func jsonPath(goPath string) string {
	var keep []string
	for _, seg := range strings.Split(goPath, ".") {
		if seg != "" && unicode.IsUpper(rune(seg[0])) {
			continue
		}
		keep = append(keep, seg)
	}
	return strings.Join(keep, ".")
}

// cleanYAMLError drops the wrappers the YAML libraries add, keeping the
// parser's own words.
func cleanYAMLError(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "error converting YAML to JSON: ")
	s = strings.TrimPrefix(s, "yaml: ")
	s = yamlLineRef.ReplaceAllString(s, "")
	// yaml.v3 lists several errors on lines of their own ("unmarshal
	// errors:\n  key ... already set"): a problem prints on one line.
	s = strings.Replace(s, "unmarshal errors:", "", 1)
	return yamlLineBreak.ReplaceAllString(strings.TrimSpace(s), " ")
}

// yamlLineBreak is a line break in a parser message, with its indentation.
var yamlLineBreak = regexp.MustCompile(`[ \t]*\n[ \t]*`)

// yamlLineRef is the "line N: " in a parser message; the line moves to the
// Error's own Line, counted in the file rather than the document.
var yamlLineRef = regexp.MustCompile(`line \d+: `)

func nbspHint(line int) string {
	return fmt.Sprintf("line %d contains non-breaking spaces (U+00A0), a common copy-paste accident; replace them with plain spaces", line)
}

// printablePath quotes a field path that holds invisible or non-ASCII
// characters (such as U+00A0), so the user can see why it is unknown.
func printablePath(p string) string {
	for _, r := range p {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) {
			return strconv.Quote(p)
		}
	}
	return p
}

func orDefault(ns string) string {
	if ns == "" {
		return DefaultNamespace
	}
	return ns
}

func setNamespace(obj any, ns string) {
	switch o := obj.(type) {
	case *servingv1.Service:
		o.Namespace = ns
	case *servingv1.Configuration:
		o.Namespace = ns
	case *servingv1.Route:
		o.Namespace = ns
	case *servingv1.Revision:
		o.Namespace = ns
	case *servingv1beta1.DomainMapping:
		o.Namespace = ns
	case *corev1.ConfigMap:
		o.Namespace = ns
	}
}
