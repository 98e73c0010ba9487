#!/usr/bin/env bash
# Mutual TLS against plaintext on the control plane's two steady-state
# paths: a one-Service change reaching a delta gateway and ACKed
# (xds BenchmarkTransport/propagation), and load reports applied by the
# LRS server, one at a time and in bursts of 64 (xds/lrs
# BenchmarkTransport/loadreport). docs/performance.md has the figures and
# what they mean.
#
# Each test binary is built once. The benchmarks set up both transports in
# one process, then run them in interleaved rounds (plaintext first in odd
# rounds, mTLS first in even ones; 4 rounds a process, benchRounds in the
# tests), so that other work on a shared machine weighs on both alike;
# the script runs as many processes as COUNT rounds take. benchstat
# compares the transports (-col /transport), the rounds of a benchmark
# pooled as its samples (-ignore /round); the ratios below it pair the two
# runs of each round.
#
# Everything listens on 127.0.0.1. benchstat is built from the Go module
# proxy at a pinned version into .cache/bin.
#
# Usage: hack/bench-tls.sh [COUNT]
#        COUNT rounds of each benchmark (rounded up to a multiple of 4),
#        default 20; at least 10 for a verdict.
# Env:   GO (default go), BENCHTIME (go test -benchtime of each run,
#        default 1s), OUT (results folder, default .cache/bench-tls),
#        LIMIT (ratio of the verdict, default 1.10), BENCHES (space-separated
#        PACKAGE:PATTERN pairs to run instead of both benchmarks, e.g.
#        'xds:^BenchmarkTransport$/^propagation$/^services=10000$')
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-20}
benchtime=${BENCHTIME:-1s}
out=${OUT:-$PWD/.cache/bench-tls}
limit=${LIMIT:-1.10}
GO=${GO:-go}
BENCHSTAT_VERSION=v0.0.0-20260908200009-22c9c6c9d4da

bin=$PWD/.cache/bin
mkdir -p "$bin" "$out"
[ -x "$bin/benchstat" ] || GOBIN=$bin "$GO" install "golang.org/x/perf/cmd/benchstat@$BENCHSTAT_VERSION"

# package:benchmark, one -test.bench pattern per level, anchored.
benches=(
	"xds:^BenchmarkTransport\$/^propagation\$"
	"xds/lrs:^BenchmarkTransport\$/^loadreport\$"
)
if [ -n "${BENCHES:-}" ]; then
	read -r -a benches <<<"$BENCHES"
fi
rounds=4 # benchRounds in xds/tls_bench_test.go and xds/lrs/tls_bench_test.go
tests=$out/bin
mkdir -p "$tests"
for pkg in xds xds/lrs; do
	"$GO" test -c -o "$tests/${pkg//\//-}.test" "./$pkg"
done

raw=$out/raw.txt
: >"$raw"
{
	echo "# $(date -u +%Y-%m-%dT%H:%MZ) $("$GO" version | cut -d' ' -f3-) $(git rev-parse --short HEAD)$([ -z "$(git status --porcelain -- xds pki hack)" ] || echo ' +uncommitted changes')"
	echo "# nproc $(nproc), load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/machine.txt"

procs=$(((count + rounds - 1) / rounds))
for i in $(seq 1 "$procs"); do
	for b in "${benches[@]}"; do
		pkg=${b%%:*}
		# A test binary runs in its package's folder, as go test does.
		if ! (cd "$pkg" && "$tests/${pkg//\//-}.test" -test.run '^$' -test.bench "${b#*:}" \
			-test.benchmem -test.benchtime "$benchtime" -test.count 1) >>"$raw" 2>&1; then
			tail -n 20 "$raw" >&2
			exit 1
		fi
	done
	echo "process $i/$procs done: $((i * rounds)) rounds (load average $(cut -d' ' -f1 /proc/loadavg))" >&2
done
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/machine.txt"

"$bin/benchstat" -col /transport -ignore /round "$raw" | tee "$out/benchstat.txt"

# Paired ratios: round k's mTLS run over its plaintext run, per benchmark,
# for the time (sec/op) and the CPU (cpu-sec/op) per operation. Their
# median, with a distribution-free confidence interval of at least 95 %
# (order statistics of the sign test), and the verdict against LIMIT:
# "within" when the interval's upper end is at most LIMIT, "NOT within"
# when the median is above it, "not shown" otherwise (too noisy to tell);
# under 6 pairs the interval is only the range.
# benchstat's own ratio above is of the medians over all rounds.
echo
echo "mTLS / plaintext, paired by round (limit ${limit}×):"
awk -v limit="$limit" '
	$1 ~ /^Benchmark/ {
		name = $1; sub(/-[0-9]+$/, "", name)
		tr = name; sub(/.*\/transport=/, "", tr); sub(/\/round=[0-9]+\/transport=[^\/]*$/, "", name)
		for (f = 3; f < NF; f++) {
			u = $(f + 1)
			if (u != "ns/op" && u != "cpu-ns/op") continue
			u = u == "ns/op" ? "sec/op" : "cpu-sec/op"
			n = ++seen[name, u, tr]; val[name, u, tr, n] = $f; rows[name SUBSEP u] = 1
		}
	}
	# lower returns the rank of the interval'"'"'s lower end for n pairs: the
	# largest j with P(Binomial(n, 1/2) < j) <= 2.5 %, at least 1.
	function lower(n,   j, c, p) {
		c = 1; p = 2 ^ -n
		for (j = 0; j < n; j++) {
			if (p > 0.025) break
			c = c * (n - j) / (j + 1); p += c * 2 ^ -n
		}
		return j < 1 ? 1 : j
	}
	END {
		for (row in rows) {
			split(row, nu, SUBSEP); name = nu[1]; u = nu[2]
			k = seen[name, u, "plaintext"] < seen[name, u, "mtls"] ? seen[name, u, "plaintext"] : seen[name, u, "mtls"]
			for (i = 1; i <= k; i++) r[i] = val[name, u, "mtls", i] / val[name, u, "plaintext", i]
			# insertion sort: k is small
			for (i = 2; i <= k; i++) { x = r[i]; for (j = i - 1; j >= 1 && r[j] > x; j--) r[j + 1] = r[j]; r[j + 1] = x }
			med = k % 2 ? r[(k + 1) / 2] : (r[k / 2] + r[k / 2 + 1]) / 2
			lo = lower(k); hi = k + 1 - lo
			verdict = r[hi] <= limit ? "within" : med > limit ? "NOT within" : "not shown"
			if (k < 6) verdict = "(too few pairs) " verdict
			printf "  %-52s %-10s %2d pairs  median %.3f×  CI %.3f–%.3f×  %s %s×\n", name, u, k, med, r[lo], r[hi], verdict, limit
		}
	}' "$raw" | sort | tee "$out/ratios.txt"
echo
echo "raw results: $raw"
