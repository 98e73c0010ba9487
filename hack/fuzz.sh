#!/usr/bin/env bash
# Runs every native Go fuzz target of the repository (each `func FuzzXxx(f
# *testing.F)` of a *_test.go file), one after another, for FUZZTIME each,
# then prints per target the executions and the new interesting inputs of
# its last progress line. docs/fuzzing.md says what each target checks.
#
# One target at a time, with one worker by default: go test -fuzz takes one
# target per run, and the machines this runs on (CI's, a laptop shared with
# other work) have few cores. Every target runs even when one fails; the
# script fails at the end, naming the failures. A failing input is written
# by go test to the target's testdata/fuzz/FuzzXxx/ folder: commit it with
# the fix, so that `go test` replays it from then on.
#
# Minimization is capped (FUZZMINIMIZETIME): go test spends up to 60 s
# shrinking every new interesting input by default, and with inputs of a
# few kilobytes that are slow to run (a manifest through every validator)
# the first minutes of a run went almost wholly to it.
#
# Usage: hack/fuzz.sh [FUZZTIME]   (default 1m; make fuzz-brief, which CI runs: 5s)
# Env:   FUZZPARALLEL (workers per target, default 1), FUZZMINIMIZETIME
#        (default 10s; 0 turns minimization off), FUZZ (a regexp: only the
#        targets whose names match, default all), GO (default go)
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-1m}
parallel=${FUZZPARALLEL:-1}
minimize=${FUZZMINIMIZETIME:-10s}
only=${FUZZ:-.}
GO=${GO:-go}

# The test files: those git knows of or would (not .cache, which it
# ignores); outside a git checkout, every one but .cache's.
test_files() {
	if git rev-parse --git-dir >/dev/null 2>&1; then
		git ls-files --cached --others --exclude-standard -- '*_test.go'
	else
		find . -path ./.cache -prune -o -name '*_test.go' -print | sed 's#^\./##'
	fi
}

# "dir name" per target.
mapfile -t targets < <(
	test_files |
		xargs grep -H -o '^func Fuzz[A-Za-z0-9_]*(f \*testing\.F)' |
		sed -E 's#^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*#\1 \2#' |
		awk -v only="$only" '$2 ~ only' | sort
)
if [ ${#targets[@]} -eq 0 ]; then
	echo "no fuzz target matches FUZZ=$only" >&2
	exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$SECONDS
failed=()
summary=()
for t in "${targets[@]}"; do
	dir=${t% *} name=${t#* }
	echo "== $name (./$dir) for $fuzztime" >&2
	if "$GO" test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" \
		-parallel "$parallel" "./$dir" >"$log" 2>&1; then
		last=$(grep '^fuzz: elapsed' "$log" | tail -n 1 || true)
		# "fuzz: elapsed: 10m0s, execs: 123 (0/sec), new interesting: 4 (total: 40)", or, when the
		# time ran out while it replayed the corpus and the cache, "fuzz: elapsed: 5s, gathering
		# baseline coverage: 30/80 completed"
		execs=$(sed -E -n 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
		interesting=$(sed -E -n 's/.*new interesting: ([0-9]+) \(total: ([0-9]+)\).*/\1 new of \2/p' <<<"$last")
		if [ -n "$execs" ]; then
			summary+=("$(printf '%-24s %-16s %12s execs  %s interesting' "$name" "$dir" "$execs" "$interesting")")
		else
			replayed=$(sed -E -n 's/.*baseline coverage: ([0-9]+\/[0-9]+).*/\1/p' <<<"$last")
			summary+=("$(printf '%-24s %-16s replayed %s inputs of the corpus and the cache; no time left to fuzz' "$name" "$dir" "${replayed:-?}")")
		fi
	elif grep -q '^    context deadline exceeded$' "$log" && ! grep -q 'Failing input written' "$log"; then
		# go test's own false failure: the time ran out just as it finished replaying the corpus
		# and the cache (seen with a cache of 554 inputs and 5 s). No input failed and none was
		# written; the target replayed everything it had.
		summary+=("$(printf '%-24s %-16s replayed the corpus and the cache; go test timed out as fuzzing began (no failing input)' "$name" "$dir")")
	else
		cat "$log" >&2
		failed+=("$name (./$dir)")
		summary+=("$(printf '%-24s %-16s FAILED' "$name" "$dir")")
	fi
done

echo
printf '%s\n' "${summary[@]}"
echo "${#targets[@]} target(s), $fuzztime each, $((SECONDS - start)) s in all"
if [ ${#failed[@]} -gt 0 ]; then
	echo "failed: ${failed[*]}; each failing input is in the target's testdata/fuzz/ (docs/fuzzing.md)" >&2
	exit 1
fi
