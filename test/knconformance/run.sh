#!/bin/sh
# Runs Knative's ingress conformance suite against kgate's KIngress mode
# (TestConformance, build tag knconformance). The suite's packages need
# go.sum entries kgate's go.mod does not hold yet: this runs with a copy of
# go.mod and go.sum (-modfile), so the repository's stay untouched.
# Arguments go to go test (e.g. -run 'TestConformance/update' -v).
# KGATE_CONFORMANCE_ALL=1 also runs the cases kgate is known to fail.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$root/go.mod" "$tmp/go.mod"
cp "$root/go.sum" "$tmp/go.sum"
cd "$root"
GOFLAGS=-mod=mod go test -modfile="$tmp/go.mod" -tags knconformance -count=1 -timeout 8m \
	-run TestConformance -parallel 32 "$@" ./test/knconformance/
