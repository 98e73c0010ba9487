package manifest

import (
	"regexp"
	"strconv"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
)

// step is one hop of a field path: a map key, or a list index when key is "".
type step struct {
	key   string
	index int
}

// pathStep matches "name", "name[0]" or "name[0][1]".
var pathStep = regexp.MustCompile(`^([^\[\]]*)((?:\[\d+\])*)$`)

// parsePath turns "spec.containers[0].foo" into steps; ok is false for a
// path it cannot read.
func parsePath(path string) (steps []step, ok bool) {
	for _, seg := range strings.Split(path, ".") {
		m := pathStep.FindStringSubmatch(seg)
		if m == nil {
			return nil, false
		}
		if m[1] != "" {
			steps = append(steps, step{key: m[1]})
		}
		for _, idx := range strings.Split(strings.Trim(m[2], "[]"), "][") {
			if idx == "" {
				continue
			}
			n, err := strconv.Atoi(idx)
			if err != nil {
				return nil, false
			}
			steps = append(steps, step{index: n})
		}
	}
	return steps, true
}

// locate returns the file line of the field at path in document d, or 0 when
// the document does not parse or has no such field. It reads the document a
// second time with a YAML parser that keeps positions, since the JSON decoder
// that found the problem knows none.
func locate(d document, path string) int {
	steps, ok := parsePath(path)
	if !ok {
		return 0
	}
	var root yamlv3.Node
	if err := yamlv3.Unmarshal(d.text, &root); err != nil || len(root.Content) == 0 {
		return 0
	}
	n := root.Content[0]
	line := n.Line
	for _, s := range steps {
		for n.Kind == yamlv3.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		next := (*yamlv3.Node)(nil)
		switch {
		case s.key != "" && n.Kind == yamlv3.MappingNode:
			// The last occurrence wins, as in the decoders; a duplicate key is
			// then reported at its second spelling.
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == s.key {
					next = n.Content[i+1]
					line = n.Content[i].Line
				}
			}
		case s.key == "" && n.Kind == yamlv3.SequenceNode && s.index < len(n.Content):
			next = n.Content[s.index]
			line = next.Line
		}
		if next == nil {
			return 0
		}
		n = next
	}
	return d.fileLine(line)
}

// parentPath drops the last step of a field path: "a.b[0]" → "a.b" → "a";
// "" when there is none.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}
