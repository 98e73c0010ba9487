#!/usr/bin/env bash
# Installs Debian's chromium for the headless-browser test of kgate local's live page
# (cmd/kgate's TestLivePageInBrowser) when it is missing, and prints the browser's path on its last line.
#
# Idempotent: when chromium is on PATH (or CHROMIUM names it) it exits at once. Installs with apt-get as
# root, or through sudo -n when sudo is available without a password; otherwise it exits 1 with the reason.
# One install at a time (test packages may start it together); whoever waited finds it installed.
#
# Usage: hack/chromium.sh
set -euo pipefail

find_browser() {
	if [ -n "${CHROMIUM:-}" ] && [ -x "$CHROMIUM" ]; then echo "$CHROMIUM"; return 0; fi
	for b in chromium chromium-browser; do
		if command -v "$b" >/dev/null 2>&1; then command -v "$b"; return 0; fi
	done
	return 1
}

if b=$(find_browser); then
	echo "$b"
	exit 0
fi

fail() { echo "hack/chromium.sh: $*" >&2; exit 1; }

if [ "$(id -u)" = 0 ]; then
	as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	as_root=(sudo -n)
else
	fail "chromium is not installed and cannot be: not root and no password-less sudo; install it with: apt-get install -y --no-install-recommends chromium"
fi
command -v apt-get >/dev/null 2>&1 || fail "chromium is not installed and there is no apt-get here; install chromium (or set CHROMIUM=/path/to/chrome)"

lock=${TMPDIR:-/tmp}/kgate-chromium-install.lock
exec 9>"$lock"
if ! flock -n 9; then
	echo "chromium: waiting for another hack/chromium.sh to finish" >&2
	flock 9
fi
if b=$(find_browser); then
	echo "$b"
	exit 0
fi

echo "chromium: installing Debian's chromium (apt-get, once)" >&2
export DEBIAN_FRONTEND=noninteractive
if ! "${as_root[@]}" apt-get install -y --no-install-recommends chromium >&2; then
	"${as_root[@]}" apt-get update >&2 || fail "apt-get update failed"
	"${as_root[@]}" apt-get install -y --no-install-recommends chromium >&2 || fail "apt-get install chromium failed"
fi
b=$(find_browser) || fail "chromium installed but not found on PATH"
echo "$b"
