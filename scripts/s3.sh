#!/usr/bin/env bash
# A private S3-compatible server for Conveyor's cache tests, built once and reused.
#
#   eval "$(scripts/s3.sh)"     build (once), start (or find running) and export CONVEYOR_TEST_S3
#   scripts/s3.sh --stop        stop it (the data stays)
#   scripts/s3.sh -h            this text
#
# stdout carries only the export lines; messages go to stderr. Safe to run again and from
# several shells at once (a lock serialises set-up).
#
# The server is Versity S3 Gateway (github.com/versity/versitygw, Apache-2.0): a real S3
# protocol implementation over a POSIX folder. It is built from the Go module proxy with
# `go install` into $cache/versitygw-<version>/ (never into the product's go.mod), once per
# machine and version. Data lives in $cache/s3/data, listening on 127.0.0.1 only.
#
# Exports CONVEYOR_TEST_S3=http://127.0.0.1:PORT  CONVEYOR_TEST_S3_ACCESS_KEY  CONVEYOR_TEST_S3_SECRET_KEY
#
# Environment: CONVEYOR_S3_PORT (default 57070), CONVEYOR_CACHE (default ~/.cache/conveyor).
set -euo pipefail

VERSION=v1.8.0
port=${CONVEYOR_S3_PORT:-57070}
access=conveyor-test
secret=conveyor-test-secret
: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
cache=${CONVEYOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/conveyor}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 's3.sh: error: %s\n' "$*" >&2; exit 1; }

action=start
case ${1:-} in
"") ;;
--stop) action=stop ;;
-h | --help)
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
	exit 0
	;;
*) die "unknown argument $1 (try --help)" ;;
esac

command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || PATH=/usr/local/go/bin:$PATH
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
bindir=$cache/versitygw-$VERSION
bin=$bindir/versitygw
dir=$cache/s3
pidfile=$dir/versitygw.pid
log=$dir/versitygw.log
mkdir -p "$dir/data"

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
answering() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

if [ "$action" = stop ]; then
	if running; then kill "$(cat "$pidfile")"; fi
	rm -f "$pidfile"
	exit 0
fi

exec 8>"$dir/s3.lock"
flock 8

if [ ! -x "$bin" ]; then
	say "building versitygw $VERSION into $bindir (once per machine; a few minutes)"
	tmp=$(mktemp -d)
	# A throwaway module folder: the product's go.mod never sees the server's dependencies.
	(cd "$tmp" && GOBIN=$bindir.tmp GOFLAGS=-buildvcs=false go install "github.com/versity/versitygw/cmd/versitygw@$VERSION") >&2 ||
		{ rm -rf "$tmp" "$bindir.tmp"; die "go install versitygw@$VERSION failed"; }
	rm -rf "$tmp" "$bindir"
	mv "$bindir.tmp" "$bindir"
fi

if ! running; then
	say "starting versitygw on 127.0.0.1:$port (log: $log)"
	# 8>&- 9>&-: the server must not inherit (and hold forever) the set-up locks.
	ROOT_ACCESS_KEY_ID=$access ROOT_SECRET_ACCESS_KEY=$secret \
		setsid nohup "$bin" --port "127.0.0.1:$port" posix "$dir/data" >>"$log" 2>&1 </dev/null 8>&- 9>&- &
	echo $! >"$pidfile"
fi
for _ in $(seq 50); do
	answering && break
	running || { tail -n 20 "$log" >&2; die "versitygw exited; see $log"; }
	sleep 0.2
done
answering || die "versitygw does not answer on 127.0.0.1:$port; see $log"

printf 'export CONVEYOR_TEST_S3=%q\n' "http://127.0.0.1:$port"
printf 'export CONVEYOR_TEST_S3_ACCESS_KEY=%q\n' "$access"
printf 'export CONVEYOR_TEST_S3_SECRET_KEY=%q\n' "$secret"
