package lrs

import "strings"

// side says which reporter a cluster's load comes from.
type side int

const (
	// gateway is a revision cluster, "<ns>/<rev>": Envoy, the dev gateway
	// or a proxyless gRPC client.
	gateway side = iota
	// activator is a revision's pods, "<ns>/<rev>/pods": the activator's
	// upstream.
	activator
)

// podsSegment ends the cluster of a revision's pods (translator.PodsName).
const podsSegment = "pods"

// maxClusterName bounds the cluster names worth parsing: a namespace (a
// DNS label, 63), a revision name (a DNS subdomain, 253), two slashes and
// podsSegment. It keeps garbage names from costing more than a length
// check.
const maxClusterName = 63 + 1 + 253 + 1 + len(podsSegment)

// revisionOf returns the revision key, "<ns>/<rev>", whose load a cluster
// name reports and from which side; ok is false for any other name.
func revisionOf(cluster string) (rev string, s side, ok bool) {
	if len(cluster) > maxClusterName {
		return "", 0, false
	}
	// Counting slashes first keeps a revision named "pods" ("ns/pods") a
	// gateway cluster.
	switch strings.Count(cluster, "/") {
	case 1:
		rev, s = cluster, gateway
	case 2:
		i := strings.LastIndexByte(cluster, '/')
		if cluster[i+1:] != podsSegment {
			return "", 0, false
		}
		rev, s = cluster[:i], activator
	default:
		return "", 0, false
	}
	ns, name, _ := strings.Cut(rev, "/")
	if !isName(ns) || !isName(name) {
		return "", 0, false
	}
	return rev, s, true
}

// isName reports whether s could name a Kubernetes namespace or revision:
// lowercase letters, digits, '-' and '.', starting and ending with a letter
// or digit.
func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		alnum := 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
		edge := i == 0 || i == len(s)-1
		if !alnum && (edge || c != '-' && c != '.') {
			return false
		}
	}
	return true
}
