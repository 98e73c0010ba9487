package kube

import (
	"crypto/md5" //nolint:gosec // a name, not a secret: Knative's own scheme
	"encoding/hex"
)

// maxNameLength is the longest object name Kubernetes takes for a Service
// (a DNS label), which the Deployment's name follows too.
const maxNameLength = 63

// DeploymentName is the name of the revision's Deployment:
// "<revision>-deployment", shortened as Knative does when too long.
func DeploymentName(revision string) string { return childName(revision, "-deployment") }

// PrivateServiceName is the name of the revision's private Service:
// "<revision>-private", shortened as Knative does when too long.
func PrivateServiceName(revision string) string { return childName(revision, "-private") }

// childName is parent+suffix, or, when that would exceed 63 characters, the
// start of parent, the MD5 of the whole parent (32 hex digits) and suffix:
// the names Knative gives, so that objects of a cluster moved between
// Knative and kgate keep their names. suffix is short (< 31 characters).
func childName(parent, suffix string) string {
	if len(parent)+len(suffix) <= maxNameLength {
		return parent + suffix
	}
	sum := md5.Sum([]byte(parent)) //nolint:gosec // see the import
	keep := maxNameLength - hex.EncodedLen(len(sum)) - len(suffix)
	return parent[:keep] + hex.EncodeToString(sum[:]) + suffix
}
