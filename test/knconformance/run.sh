#!/bin/sh
# Runs Knative's ingress conformance suite against kgate's KIngress mode
# (TestConformance), as make test does, with the flags a manual run wants.
# Arguments go to go test (e.g. -run 'TestConformance/update' -v).
set -eu
cd "$(dirname "$0")/../.."
go test -count=1 -timeout 8m -run TestConformance "$@" ./test/knconformance/
