#!/usr/bin/env bash
# Builds a real kube-apiserver and etcd from the Go module proxy, for the
# tests in test/kube (and controller-runtime's envtest, which takes the same
# folder through KUBEBUILDER_ASSETS).
#
# Each binary is built in a throwaway tool module under .cache/kube/src; kgate
# never imports them and its go.mod is untouched. k8s.io/kubernetes requires
# its staging modules (k8s.io/api, k8s.io/apiserver, ...) at v0.0.0 and
# replaces them with ./staging folders, so the tool module replaces exactly
# those modules, read from kubernetes' own go.mod, with their published
# v0.X.Y tags.
#
# Idempotent: when both binaries exist it exits at once. The first build
# downloads about 800 MB of modules, fills about 2.4 GB of build cache and
# takes 8 to 10 minutes on 2 cores (kube-apiserver is ~100 MB).
#
# Usage: test/kube/build.sh        prints the asset folder on its last line
set -euo pipefail
cd "$(dirname "$0")/../.."

KUBE_VERSION=v1.36.3
ETCD_VERSION=v3.6.7
STAGING_VERSION=v0${KUBE_VERSION#v1}   # v1.36.3 -> v0.36.3

assets=$PWD/.cache/kube/$KUBE_VERSION-etcd${ETCD_VERSION#v}
src=$PWD/.cache/kube/src/$KUBE_VERSION-etcd${ETCD_VERSION#v}

if [ -x "$assets/kube-apiserver" ] && [ -x "$assets/etcd" ]; then
	echo "$assets"
	exit 0
fi

fail() { echo "test/kube/build.sh: $*" >&2; exit 1; }
step() { echo "kube build: $*"; }
start=$(date +%s)
mkdir -p "$assets" "$src"

# One build at a time (test packages may start it together); whoever waited
# finds the binaries made.
exec 9>"$src.lock"
if ! flock -n 9; then
	step "waiting for another build.sh to finish"
	flock 9
fi
if [ -x "$assets/kube-apiserver" ] && [ -x "$assets/etcd" ]; then
	echo "$assets"
	exit 0
fi
# Tool modules only: no workspace, no VCS stamp, the local Go toolchain.
export GOFLAGS="-mod=mod -buildvcs=false" GOWORK=off GOTOOLCHAIN=local

if [ ! -x "$assets/etcd" ]; then
	step "etcd $ETCD_VERSION: generating the tool module in $src/etcd"
	rm -rf "$src/etcd"
	mkdir -p "$src/etcd"
	(
		cd "$src/etcd"
		cat >go.mod <<MOD
module kgate.local/kubetools/etcd

go 1.26.0
MOD
		cat >main.go <<'GO'
// Command etcd is etcd's own server main, built at a pinned version.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
		step "etcd $ETCD_VERSION: resolving go.etcd.io/etcd/server/v3@$ETCD_VERSION"
		go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >get.log 2>&1 ||
			fail "go get go.etcd.io/etcd/server/v3@$ETCD_VERSION failed: $(tail -3 get.log)"
		go mod tidy >>get.log 2>&1 || fail "go mod tidy for etcd failed: $(tail -3 get.log)"
		step "etcd $ETCD_VERSION: compiling"
		go build -trimpath -ldflags "-s -w" -o "$assets/etcd.tmp" . >build.log 2>&1 ||
			fail "building etcd failed: $(tail -3 build.log)"
	) || exit 1
	mv "$assets/etcd.tmp" "$assets/etcd"
	step "etcd $ETCD_VERSION: done after $(( $(date +%s) - start ))s"
fi

if [ ! -x "$assets/kube-apiserver" ]; then
	step "kube-apiserver $KUBE_VERSION: downloading k8s.io/kubernetes@$KUBE_VERSION"
	rm -rf "$src/kube-apiserver"
	mkdir -p "$src/kube-apiserver"
	cd "$src/kube-apiserver"
	printf 'module kgate.local/kubetools/kube-apiserver\n\ngo 1.26.0\n' >go.mod
	go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" >download.json 2>&1 ||
		fail "go mod download k8s.io/kubernetes@$KUBE_VERSION failed: $(grep -m1 '"Error"' download.json || tail -3 download.json)"
	gomod=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' download.json)
	[ -n "$gomod" ] && [ -f "$gomod" ] || fail "go mod download k8s.io/kubernetes@$KUBE_VERSION gave no go.mod"
	# The staging modules are the ones kubernetes requires at v0.0.0 and
	# replaces with ./staging/src/k8s.io/<name> (it also replaces two samples
	# it does not require; those are left out).
	required=$(sed -n 's|^[[:space:]]*\(require[[:space:]]\{1,\}\)\{0,1\}\(k8s\.io/[^[:space:]]*\)[[:space:]]\{1,\}v0\.0\.0\([[:space:]].*\)\{0,1\}$|\2|p' "$gomod" | sort -u)
	replaced=$(sed -n 's|^[[:space:]]*\(replace[[:space:]]\{1,\}\)\{0,1\}\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*$|\2|p' "$gomod" | sort -u)
	staging=$(comm -12 <(echo "$required") <(echo "$replaced"))
	count=$(echo "$staging" | grep -c . || true)
	[ "$count" -gt 0 ] || fail "found no staging replaces in $gomod"
	step "kube-apiserver $KUBE_VERSION: $count staging modules replaced with $STAGING_VERSION"
	(
		{
			echo "module kgate.local/kubetools/kube-apiserver"
			echo
			echo "go 1.26.0"
			echo
			echo "require k8s.io/kubernetes $KUBE_VERSION"
			echo
			echo "replace ("
			for m in $staging; do echo "	$m => $m $STAGING_VERSION"; done
			echo ")"
		} >go.mod
		step "kube-apiserver $KUBE_VERSION: resolving k8s.io/kubernetes/cmd/kube-apiserver"
		go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION" >get.log 2>&1 ||
			fail "go get k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION failed: $(tail -3 get.log)"
		step "kube-apiserver $KUBE_VERSION: compiling (the long step)"
		# The version stamps kubernetes' own build sets (hack/lib/version.sh),
		# so that /version reports the release instead of v0.0.0-master.
		major=${KUBE_VERSION#v}; minor=${major#*.}; major=${major%%.*}; minor=${minor%%.*}
		ldflags="-s -w"
		for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
			ldflags="$ldflags -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
		done
		go build -trimpath -ldflags "$ldflags" -o "$assets/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver >build.log 2>&1 ||
			fail "building kube-apiserver failed: $(tail -3 build.log)"
	) || exit 1
	mv "$assets/kube-apiserver.tmp" "$assets/kube-apiserver"
	step "kube-apiserver $KUBE_VERSION: done after $(( $(date +%s) - start ))s"
fi

step "both binaries in $(( $(date +%s) - start ))s"
echo "$assets"
