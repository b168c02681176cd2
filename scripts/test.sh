#!/usr/bin/env bash
# Conveyor's test command: the one CI runs and the README names.
#
#   ./scripts/test.sh [options] [go test args...]
#
#   ./scripts/test.sh                                 everything: engine, images, gofmt,
#                                                     go vet, staticcheck, go test -race ./...
#   ./scripts/test.sh -run Foo ./internal/expr/       vet, staticcheck and go test on that package
#   ./scripts/test.sh --no-lint -v ./internal/exec/...
#   eval "$(./scripts/test.sh --env)"                 prepare engine + images, then print the
#                                                     exports, so plain `go test` works in this shell
#
# Options (before any go test argument):
#   --no-lint   skip gofmt, go vet and staticcheck
#   --env       only prepare the Docker engine and the images; print `export` lines on stdout
#   -h, --help  this text
#   --          end of options; the rest goes to go test unchanged
#
# Everything else goes to `go test` after the defaults (-race -count=1 -timeout 40m), so
# later flags win: `-count=3`, `-race=false`, `-timeout 5m`. Packages are the arguments that
# start with ./ ../ or the module path (or `all`); without any, ./... is tested. go vet and
# staticcheck check the same packages; gofmt always checks the whole tree.
#
# What it does, each step cached and quick when already done:
#   1. A Docker engine must answer `docker info`. If none does and we are root on a Debian-like
#      machine, install docker.io (apt) and start dockerd in the background (log: $cache/dockerd.log).
#      As root it also installs debootstrap, busybox-static, git and python3 when missing.
#   2. Test images, built locally (no registry is needed):
#        conveyor-test/debian:bookworm-$DEBIAN_KEY  debootstrap minbase + bash, python3, git, node...
#          rootfs tarball cached in $cache/images/; needs root (or password-less sudo) once.
#        conveyor-test/busybox:$BUSYBOX_KEY         static /bin/busybox with its applet links.
#      Preset CONVEYOR_TEST_IMAGE / CONVEYOR_TEST_BUSYBOX_IMAGE to use an image of your own.
#   3. A private PostgreSQL (scripts/postgres.sh: Debian's postgresql package, installed when
#      missing; cluster in $cache/postgres-<major>/ on port 55432) for the store suite and the
#      multi-replica tests.
#   4. A private S3-compatible server (scripts/s3.sh: Versity S3 Gateway, built once with
#      go install) for the cache's S3 backend.
#   5. As root on Debian, a one-node Kubernetes cluster (scripts/k8s/up.sh: v1.31.0 built from
#      the Go module proxy once per machine into $cache/k8s-v1.31.0/, a private containerd, the
#      test images imported) for the kubernetes backend; CONVEYOR_K8S=0 goes without.
#   6. Exports CONVEYOR_TEST_IMAGE, CONVEYOR_TEST_BUSYBOX_IMAGE, CONVEYOR_COMPAT_DIR
#      (default ../shared/compat from the repo root), CONVEYOR_TEST_CHROMIUM (Debian's chromium,
#      installed with step 1's packages, for the web UI's browser tests), CONVEYOR_TEST_POSTGRES,
#      CONVEYOR_TEST_S3 (+ _ACCESS_KEY, _SECRET_KEY), CONVEYOR_TEST_KUBECONFIG, then runs the
#      checks and the tests.
#
# Environment: CONVEYOR_CACHE (default ~/.cache/conveyor), CONVEYOR_DEBIAN_MIRROR (default:
# the Debian mirror of this machine's apt sources, else http://deb.debian.org/debian).
# Under CI (CI=true) tests fail instead of skipping when the engine, images or compat material
# are missing (see internal/testenv).
set -euo pipefail

# Bump a key whenever what goes into that image changes; the old cache is then ignored.
DEBIAN_KEY=1
DEBIAN_PACKAGES=bash,coreutils,python3,git,ca-certificates,nodejs,procps
BUSYBOX_KEY=1
STATICCHECK_VERSION=v0.8.2 # staticcheck 2026.2.2, built for Go 1.26

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# CI shells may lack Go's usual place in PATH.
command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || PATH=/usr/local/go/bin:$PATH
: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}" # CI runners do not always set it
export HOME
cache=${CONVEYOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/conveyor}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

lint=1 env_only=0
while [ $# -gt 0 ]; do
	case $1 in
	--no-lint) lint=0 ;;
	--env) env_only=1 ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	--) shift; break ;;
	*) break ;;
	esac
	shift
done

# Messages go to stderr so that --env's stdout stays clean.
say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'test.sh: error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

# ---- phase timing -------------------------------------------------------------------------
phases=() failed=0
now() { printf '%s' "${EPOCHREALTIME/,/.}"; }
# run_phase NAME CMD...: runs CMD in a subshell with errexit in force, records its time and
# status; never exits itself.
run_phase() {
	local name=$1 start status
	shift
	say "$name"
	start=$(now)
	set +e
	(
		set -e
		"$@"
	)
	status=$?
	set -e
	phases+=("$(printf '%-12s %7.1fs  %s' "$name" "$(awk -v a="$start" -v b="$(now)" 'BEGIN { print b - a }')" \
		"$([ "$status" = 0 ] && echo ok || echo "FAILED (exit $status)")")")
	[ "$status" = 0 ] || failed=1
}
summary() {
	[ ${#phases[@]} -gt 0 ] || return 0
	printf '\n==> summary\n' >&2
	printf '    %s\n' "${phases[@]}" >&2
}
trap summary EXIT

# ---- 1. packages and the Docker engine -------------------------------------------------------
engine_up() { timeout 20 docker info >/dev/null 2>&1; }

apt_updated=0
apt_install() {
	[ $# -gt 0 ] || return 0
	say "apt-get install $*"
	if [ $apt_updated = 0 ]; then
		# A third-party source being unreachable must not stop us: judge by the install.
		DEBIAN_FRONTEND=noninteractive apt-get update -qq || say "apt-get update reported errors; trying the install anyway"
		apt_updated=1
	fi
	# With recommends: docker.io's apparmor is what dockerd needs on AppArmor kernels, and
	# debootstrap's debian-archive-keyring is what checks the mirror's signatures.
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# The static busybox: the dynamic one of Debian's "busybox" package cannot run in an empty image.
static_busybox() {
	local bb out
	for bb in /bin/busybox /usr/bin/busybox; do
		[ -x "$bb" ] || continue
		out=$(LC_ALL=C ldd "$bb" 2>&1) || true # ldd fails on static binaries: that is the answer
		case $out in *"not a dynamic executable"*)
			echo "$bb"
			return 0
			;;
		esac
	done
	return 1
}

start_dockerd() {
	local log=$cache/dockerd.log
	if [ -f /var/run/docker.pid ] && kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
		say "dockerd is running but not answering yet; waiting"
	else
		say "starting dockerd (log: $log)"
		# 9>&-: the daemon must not inherit (and hold forever) the set-up lock.
		setsid nohup dockerd >>"$log" 2>&1 </dev/null 9>&- &
	fi
	local i
	for i in $(seq 60); do
		engine_up && return 0
		sleep 1
	done
	tail -n 30 "$log" >&2 || true
	die "dockerd did not answer 'docker info' within 60 s; see $log"
}

setup_host() {
	local missing=()
	if is_root && command -v apt-get >/dev/null; then
		command -v debootstrap >/dev/null || missing+=(debootstrap)
		static_busybox >/dev/null || missing+=(busybox-static)
		command -v git >/dev/null || missing+=(git)
		command -v python3 >/dev/null || missing+=(python3)
		# Debian's Chromium, which the web UI's browser tests drive headless.
		[ -n "${CONVEYOR_TEST_CHROMIUM:-}" ] || command -v chromium >/dev/null || missing+=(chromium)
		if ! engine_up && ! { command -v dockerd && command -v docker; } >/dev/null; then
			missing+=(docker.io)
		fi
		apt_install "${missing[@]}"
	fi
	engine_up && return 0
	case ${DOCKER_HOST:-unix:///var/run/docker.sock} in
	unix:///var/run/docker.sock | unix:///run/docker.sock) ;;
	*) die "no Docker engine answers at DOCKER_HOST=$DOCKER_HOST" ;;
	esac
	if ! is_root; then
		die "no Docker engine answers 'docker info'. Start Docker (or join the docker group, or set
    DOCKER_HOST), or run this script as root on Debian to have it installed and started."
	fi
	command -v dockerd >/dev/null || die "no Docker engine answers and dockerd is not installed (no apt-get here?)"
	start_dockerd
}

# ---- 2. test images ------------------------------------------------------------------------
have_image() { docker image inspect "$1" >/dev/null 2>&1; }
# Our images carry a label naming their build, so that an image made by other means under the
# same tag, or left from an older key, is replaced rather than trusted.
label=dev.conveyor.test-image
image_current() {
	[ "$(docker image inspect --format "{{index .Config.Labels \"$label\"}}" "$1" 2>/dev/null)" = "$2" ]
}

# The Debian archive this machine's apt uses (deb822 .sources or one-line .list), for the
# host's own codename; deb.debian.org when the host is not Debian or nothing matches.
debian_mirror() {
	if [ -n "${CONVEYOR_DEBIAN_MIRROR:-}" ]; then
		echo "$CONVEYOR_DEBIAN_MIRROR"
		return
	fi
	local id="" codename="" uri=""
	if [ -r /etc/os-release ]; then
		id=$(. /etc/os-release && echo "${ID:-}")
		codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	fi
	if [ "$id" = debian ] && [ -n "$codename" ]; then
		uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk -v cn="$codename" '
			function flush() {
				if (!found && types ~ /(^| )deb( |$)/ && tolower(enabled) != "no" &&
					(" " suites " ") ~ (" " cn " ") && uris != "") {
					split(uris, u, " "); print u[1]; found = 1
				}
				types = uris = suites = enabled = ""
			}
			/^[ \t]*#/ { next }
			/^[ \t]*$/ { flush(); next }
			{
				key = tolower($1); val = $0; sub(/^[^:]*:[ \t]*/, "", val)
				if (key == "types:") types = val
				else if (key == "uris:") uris = val
				else if (key == "suites:") suites = val
				else if (key == "enabled:") enabled = val
			}
			END { flush() }')
		if [ -z "$uri" ]; then
			uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk -v cn="$codename" '
				$1 == "deb" {
					i = 2
					if ($2 ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
					if ($(i + 1) == cn) { print $i; exit }
				}')
		fi
	fi
	uri=${uri%/}
	echo "${uri:-http://deb.debian.org/debian}"
}

build_debian_tarball() {
	local tarball=$1 sudo="" mirror tmp
	if ! is_root; then
		sudo -n true 2>/dev/null || die "building the Debian test image needs root once (debootstrap).
    Run 'sudo ./scripts/test.sh --env' once, or preset CONVEYOR_TEST_IMAGE to an image of yours."
		sudo="sudo -n"
	fi
	command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
	mirror=$(debian_mirror)
	mkdir -p "$cache/images" "$cache/debs"
	$sudo rm -rf --one-file-system "$cache"/images/build.* # left by a failed or interrupted build (we hold the lock)
	tmp=$(mktemp -d "$cache/images/build.XXXXXX")
	say "debootstrap bookworm from $mirror (log: $tmp/debootstrap.log)"
	# Two stages so dpkg can run with force-unsafe-io: its fsyncs made one stage 3x slower.
	# --cache-dir keeps the .debs, so a rebuild after a key bump downloads only what changed.
	if ! $sudo debootstrap --foreign --variant=minbase --include="$DEBIAN_PACKAGES" \
		--cache-dir="$cache/debs" bookworm "$tmp/root" "$mirror" >"$tmp/debootstrap.log" 2>&1 ||
		! $sudo sh -c 'echo force-unsafe-io >"$1/etc/dpkg/dpkg.cfg.d/zz-unsafe-io"' sh "$tmp/root" ||
		! $sudo chroot "$tmp/root" /debootstrap/debootstrap --second-stage >>"$tmp/debootstrap.log" 2>&1; then
		tail -n 30 "$tmp/debootstrap.log" >&2
		die "debootstrap failed; full log in $tmp/debootstrap.log"
	fi
	# Nothing a test reads: docs, translations, apt indexes and packages. --one-file-system
	# everywhere: a failed second stage may leave /proc mounted under the build root.
	$sudo sh -c 'cd "$1" && rm -rf usr/share/doc/* usr/share/man/* usr/share/info/* usr/share/locale/* \
		var/lib/apt/lists/* var/cache/apt/*.bin var/cache/apt/archives/*.deb var/log/* etc/hostname \
		etc/dpkg/dpkg.cfg.d/zz-unsafe-io' \
		sh "$tmp/root"
	$sudo tar -C "$tmp/root" --one-file-system --numeric-owner -c . | gzip -1 >"$tmp/rootfs.tar.gz"
	mv "$tmp/rootfs.tar.gz" "$tarball"
	$sudo rm -rf --one-file-system "$tmp"
}

ensure_debian_image() {
	local tag=$1 build=debian-bookworm-$DEBIAN_KEY
	local tarball=$cache/images/$build.tar.gz
	if image_current "$tag" "$build"; then
		say "$tag present"
		return 0
	fi
	[ -s "$tarball" ] || build_debian_tarball "$tarball"
	say "docker import $tarball as $tag"
	docker import \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV LANG=C.UTF-8' \
		--change 'CMD ["bash"]' \
		--change "LABEL $label=$build" \
		"$tarball" "$tag" >/dev/null
}

ensure_busybox_image() {
	local tag=$1 build=busybox-$BUSYBOX_KEY bb tmp
	if image_current "$tag" "$build"; then
		say "$tag present"
		return 0
	fi
	bb=$(static_busybox) || die "no static busybox at /bin/busybox (apt-get install busybox-static)"
	tmp=$(mktemp -d)
	mkdir -p "$tmp"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,proc,sys,dev}
	chmod 1777 "$tmp/tmp"
	cp "$bb" "$tmp/bin/busybox"
	local applet
	for applet in $("$bb" --list-full); do
		[ -e "$tmp/$applet" ] || ln -s /bin/busybox "$tmp/$applet"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$tmp/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$tmp/etc/group"
	say "docker import busybox ($bb) as $tag"
	tar -C "$tmp" --numeric-owner --owner=0 --group=0 -c . |
		docker import --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' --change 'CMD ["sh"]' \
			--change "LABEL $label=$build" - "$tag" >/dev/null
	rm -rf "$tmp"
}

setup_images() {
	local img
	for img in "$CONVEYOR_TEST_IMAGE" "$CONVEYOR_TEST_BUSYBOX_IMAGE"; do
		case $img in
		"$debian_tag" | "$busybox_tag") ;;
		*) have_image "$img" || die "preset test image $img is not in the Docker engine" ;;
		esac
	done
	[ "$CONVEYOR_TEST_IMAGE" != "$debian_tag" ] || ensure_debian_image "$debian_tag"
	[ "$CONVEYOR_TEST_BUSYBOX_IMAGE" != "$busybox_tag" ] || ensure_busybox_image "$busybox_tag"
}

in_ci() { case ${CI:-} in "" | 0 | false) return 1 ;; esac; }

debian_tag=conveyor-test/debian:bookworm-$DEBIAN_KEY
busybox_tag=conveyor-test/busybox:$BUSYBOX_KEY
export CONVEYOR_TEST_IMAGE=${CONVEYOR_TEST_IMAGE:-$debian_tag}
export CONVEYOR_TEST_BUSYBOX_IMAGE=${CONVEYOR_TEST_BUSYBOX_IMAGE:-$busybox_tag}
compat=${CONVEYOR_COMPAT_DIR:-../shared/compat}
case $compat in /*) ;; *) compat=$repo/$compat ;; esac
export CONVEYOR_COMPAT_DIR=$(realpath -m "$compat")
if [ ! -d "$CONVEYOR_COMPAT_DIR" ]; then
	say "warning: no compat material at $CONVEYOR_COMPAT_DIR: conformance tests will $(in_ci && echo FAIL || echo skip)"
fi

# One set-up at a time per machine user: concurrent runs would build and import the same images.
exec 9>"$cache/setup.lock"
if ! flock -n 9; then
	say "another test.sh is setting up; waiting for it"
	flock 9
fi
# Set-up failures stop here: without the engine or the images every Docker test would fail.
for step in setup_host setup_images; do
	run_phase "${step#setup_}" "$step"
	[ $failed = 0 ] || exit 1
done
# A private PostgreSQL for the store suite and the multi-replica tests (Debian's packages,
# installed when missing; cluster cached in $cache/postgres-*). Preset CONVEYOR_TEST_POSTGRES
# to use a database of yours.
if [ -z "${CONVEYOR_TEST_POSTGRES:-}" ]; then
	say "postgres"
	pg_env=$(CONVEYOR_CACHE=$cache "$repo/scripts/postgres.sh") || die "could not start the test PostgreSQL (scripts/postgres.sh)"
	eval "$pg_env"
fi
export CONVEYOR_TEST_POSTGRES
# A private S3-compatible server (scripts/s3.sh: Versity S3 Gateway, built with go install into
# $cache/versitygw-<version>/ once) for the cache's S3 backend. Preset CONVEYOR_TEST_S3 (with
# CONVEYOR_TEST_S3_ACCESS_KEY and CONVEYOR_TEST_S3_SECRET_KEY) to use a store of yours.
if [ -z "${CONVEYOR_TEST_S3:-}" ]; then
	say "s3"
	s3_env=$(CONVEYOR_CACHE=$cache "$repo/scripts/s3.sh") || die "could not start the test S3 server (scripts/s3.sh)"
	eval "$s3_env"
fi
export CONVEYOR_TEST_S3 CONVEYOR_TEST_S3_ACCESS_KEY CONVEYOR_TEST_S3_SECRET_KEY
# A one-node Kubernetes cluster for the kubernetes backend's tests (scripts/k8s/up.sh: binaries
# built once per machine into $cache/k8s-*, ~10 min cold; a few seconds to start; nothing when
# running). Root on Debian only; preset CONVEYOR_TEST_KUBECONFIG to use a cluster of yours, or
# CONVEYOR_K8S=0 to go without (its tests then skip, and fail under CI).
if [ -z "${CONVEYOR_TEST_KUBECONFIG:-}" ] && [ "${CONVEYOR_K8S:-1}" != 0 ] && is_root && command -v apt-get >/dev/null; then
	say "kubernetes test cluster"
	k8s_env=$(CONVEYOR_CACHE=$cache "$repo/scripts/k8s/up.sh") || die "could not start the test Kubernetes cluster (scripts/k8s/up.sh; logs in $cache/k8s-cluster/logs)"
	eval "$k8s_env"
fi
export CONVEYOR_TEST_KUBECONFIG=${CONVEYOR_TEST_KUBECONFIG:-}
CONVEYOR_TEST_CHROMIUM=${CONVEYOR_TEST_CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}
export CONVEYOR_TEST_CHROMIUM
exec 9>&-

if [ $env_only = 1 ]; then
	for v in CONVEYOR_TEST_IMAGE CONVEYOR_TEST_BUSYBOX_IMAGE CONVEYOR_COMPAT_DIR CONVEYOR_TEST_POSTGRES \
		CONVEYOR_TEST_S3 CONVEYOR_TEST_S3_ACCESS_KEY CONVEYOR_TEST_S3_SECRET_KEY CONVEYOR_TEST_KUBECONFIG \
		CONVEYOR_TEST_CHROMIUM; do
		printf 'export %s=%q\n' "$v" "${!v}"
	done
	exit 0
fi

# ---- 3. checks and tests -------------------------------------------------------------------
command -v go >/dev/null || die "go is not in PATH (Go 1.26 or later: https://go.dev/dl/)"
test_args=(-race -count=1 -timeout 40m "$@") # the caller's flags come later, so they win
pkgs=()
for a in "$@"; do
	case $a in ./* | ../* | . | .. | all | github.com/conveyor-ci/conveyor*) pkgs+=("$a") ;; esac
done
if [ ${#pkgs[@]} = 0 ]; then
	pkgs=(./...)
	test_args+=(./...)
fi

check_gofmt() {
	local files
	if git rev-parse --git-dir >/dev/null 2>&1; then
		# Tracked and new files, minus deleted ones and testdata (fixtures may be unformatted on purpose).
		files=$(git ls-files -co --exclude-standard -- '*.go' ':!:**/testdata/**' |
			while IFS= read -r f; do [ ! -f "$f" ] || printf '%s\n' "$f"; done |
			xargs -r -d '\n' gofmt -l)
	else
		files=$(gofmt -l .)
	fi
	[ -z "$files" ] && return 0
	printf 'gofmt -l lists (run gofmt -w on them):\n%s\n' "$files" >&2
	return 1
}

staticcheck_bin=$cache/bin/staticcheck
check_staticcheck() {
	if ! "$staticcheck_bin" -version 2>/dev/null | grep -qF "(${STATICCHECK_VERSION#v})"; then
		say "installing staticcheck $STATICCHECK_VERSION into $cache/bin"
		GOBIN=$cache/bin go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
	fi
	"$staticcheck_bin" "${pkgs[@]}"
}

if [ $lint = 1 ]; then
	run_phase gofmt check_gofmt
	run_phase vet go vet "${pkgs[@]}"
	run_phase staticcheck check_staticcheck
fi
# Conformance counts: go test hides the output of passing tests, so the
# tests append their one-line results to this file, printed below.
report=$(mktemp)
export CONVEYOR_TEST_REPORT=$report
run_phase test go test "${test_args[@]}"
if [ -s "$report" ]; then
	echo "==> conformance and compatibility"
	sed 's/^/    /' "$report"
fi
rm -f "$report"

exit $failed
