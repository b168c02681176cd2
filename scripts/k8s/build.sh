#!/usr/bin/env bash
# Builds the Kubernetes binaries of Conveyor's test cluster, once per machine and version.
#
#   scripts/k8s/build.sh            build (or find) the binaries; prints their directory on stdout
#   scripts/k8s/build.sh -h         this text
#
# kube-apiserver, kube-controller-manager, kube-scheduler and kubelet come from the Go module
# proxy: a throwaway module (outside Conveyor's module) requires k8s.io/kubernetes at
# $K8S_VERSION and replaces each k8s.io staging module (`=> ./staging/...` in kubernetes' own
# go.mod) with its published v0.<minor>.<patch>. The binaries land in
# $cache/k8s-$K8S_VERSION/bin; a cold build takes ~10 min on 2 cores (≈550 CPU-s, 1.7 GB RSS),
# a warm one nothing. etcd and the CNI plugins come from Debian (apt-get download + dpkg-deb -x
# into $cache/k8s-$K8S_VERSION/deb: nothing is installed or started system-wide).
#
# Environment: CONVEYOR_CACHE (default ~/.cache/conveyor), K8S_VERSION (default v1.31.0; several
# later 1.31 patch releases are incomplete on the proxy).
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.31.0}
: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
export HOME
cache=${CONVEYOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/conveyor}
command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || PATH=/usr/local/go/bin:$PATH

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'k8s/build.sh: error: %s\n' "$*" >&2; exit 1; }

case ${1:-} in
"") ;;
-h | --help)
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
	exit 0
	;;
*) die "unknown argument $1 (try --help)" ;;
esac

mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
top=$cache/k8s-$K8S_VERSION
bin=$top/bin
mkdir -p "$top"
exec 8>"$top/build.lock"
flock 8

cmds=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
have_all() {
	local c
	for c in "${cmds[@]}"; do [ -x "$bin/$c" ] || return 1; done
	[ -x "$top/deb/usr/bin/etcd" ] && [ -x "$top/deb/usr/lib/cni/bridge" ]
}
if have_all; then
	echo "$top"
	exit 0
fi

build_k8s() {
	local mod=$top/mod staging minor
	minor=v0.${K8S_VERSION#v1.}
	rm -rf "$mod"
	mkdir -p "$mod"
	say "go mod download k8s.io/kubernetes@$K8S_VERSION"
	local gomod
	gomod=$(cd "$mod" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
		sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
	[ -s "$gomod" ] || die "could not download k8s.io/kubernetes@$K8S_VERSION's go.mod"
	staging=$(sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*#\1#p' "$gomod" | sort -u)
	[ -n "$staging" ] || die "no staging replaces in $gomod"
	{
		echo "module conveyor.test/k8sbuild"
		echo
		echo "go $(sed -n 's/^go \([0-9.]*\).*/\1/p' "$gomod" | head -n1)"
		echo
		echo "require k8s.io/kubernetes $K8S_VERSION"
		echo
		echo "replace ("
		for m in $staging; do echo "	$m => $m $minor"; done
		echo ")"
	} >"$mod/go.mod"
	{
		echo "//go:build tools"
		echo
		echo "package tools"
		echo
		echo "import ("
		for c in "${cmds[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$c\""; done
		echo ")"
	} >"$mod/tools.go"
	say "go mod tidy (throwaway module $mod)"
	(cd "$mod" && GOFLAGS=-mod=mod go mod tidy >&2)
	mkdir -p "$bin.tmp"
	local c
	for c in "${cmds[@]}"; do
		say "go build $c"
		(cd "$mod" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' \
			-o "$bin.tmp/$c" "k8s.io/kubernetes/cmd/$c")
	done
	rm -rf "$bin"
	mv "$bin.tmp" "$bin"
}

fetch_debs() {
	local d=$top/deb tmp
	[ -x "$d/usr/bin/etcd" ] && [ -x "$d/usr/lib/cni/bridge" ] && return 0
	command -v apt-get >/dev/null || die "etcd and the CNI plugins come from Debian: no apt-get here"
	tmp=$(mktemp -d)
	say "apt-get download etcd-server containernetworking-plugins"
	if ! (cd "$tmp" && apt-get download etcd-server containernetworking-plugins >&2); then
		apt-get update -qq >&2 || true
		(cd "$tmp" && apt-get download etcd-server containernetworking-plugins >&2)
	fi
	mkdir -p "$d"
	for f in "$tmp"/*.deb; do dpkg-deb -x "$f" "$d"; done
	rm -rf "$tmp"
	[ -x "$d/usr/bin/etcd" ] || die "etcd-server's package has no usr/bin/etcd"
	[ -x "$d/usr/lib/cni/bridge" ] || die "containernetworking-plugins has no usr/lib/cni/bridge"
}

fetch_debs
for c in "${cmds[@]}"; do [ -x "$bin/$c" ] || { build_k8s; break; }; done
have_all || die "build finished but binaries are missing under $top"
echo "$top"
