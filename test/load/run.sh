#!/usr/bin/env bash
# The seeds' load test against kgate local: `hey -z 30s -c 50` on Knative's
# autoscale sample with a concurrency target of 10, printing requests/s,
# latency percentiles and the revision's pods over time.
#
# hey is built from the Go module proxy at a pinned version into .cache/bin.
# Everything listens on 127.0.0.1 and is stopped on exit.
#
# Usage: test/load/run.sh [DURATION] [CONCURRENCY]   (defaults 30s 50)
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-30s}
concurrency=${2:-50}
HEY_VERSION=v0.1.4

bin=$PWD/.cache/bin
mkdir -p "$bin"
[ -x "$bin/hey" ] || GOBIN=$bin go install "github.com/rakyll/hey@$HEY_VERSION"
go build -o "$bin/kgate" ./cmd/kgate

work=$(mktemp -d)
log=$work/kgate.log
cleanup() {
	[ -n "${kgate_pid:-}" ] && kill -INT "$kgate_pid" 2>/dev/null && wait "$kgate_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

mkdir "$work/manifests"
cat > "$work/manifests/autoscale.yaml" <<'YAML'
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: autoscale
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/target: "10"
    spec:
      containers:
        - image: gcr.io/knative-samples/autoscale-go:0.1
YAML

http=127.0.0.1:28080
admin=127.0.0.1:29090
"$bin/kgate" local -f "$work/manifests" --state-dir "$work/state" --https-address 127.0.0.1:28443 --internal-https-address 127.0.0.1:28444 --envoy never --http-address $http --internal-address 127.0.0.1:28081 \
	--xds-address 127.0.0.1:28000 --admin-address $admin --activator-address 127.0.0.1:28012 >"$log" 2>&1 &
kgate_pid=$!

host=autoscale.default.127.0.0.1.nip.io
for _ in $(seq 100); do
	if "$bin/hey" -n 1 -c 1 -host "$host" "http://$http/" 2>/dev/null | grep -q '\[200\]'; then break; fi
	sleep 0.2
done

pods() {
	# ACTUAL, DESIRED and MODE are the last columns (REASON may be empty).
	"$bin/kgate" get revisions --admin-address $admin | awk 'NR > 1 { print $(NF-2) "/" $(NF-1) " " $NF }'
}

echo "kgate local: hey -z $duration -c $concurrency http://$host/ (autoscale sample, target 10)"
(
	start=$(date +%s)
	while kill -0 "$kgate_pid" 2>/dev/null; do
		echo "  t=$(( $(date +%s) - start ))s pods (actual/desired mode): $(pods)"
		sleep 3
	done
) &
sampler=$!
"$bin/hey" -z "$duration" -c "$concurrency" -host "$host" "http://$http/" >"$work/hey.txt"
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true

echo
grep -E "Requests/sec|Total:|Slowest|Fastest|Average" "$work/hey.txt"
grep -E "  (50|90|99)% in" "$work/hey.txt"
sed -n '/Status code distribution/,/^$/p' "$work/hey.txt"
echo "pods at the end (actual/desired mode): $(pods)"
