#!/usr/bin/env bash
# A private PostgreSQL for Conveyor's tests, started once and reused.
#
#   eval "$(scripts/postgres.sh)"        start (or find running) and export CONVEYOR_TEST_POSTGRES
#   scripts/postgres.sh --stop           stop it (the data stays)
#   scripts/postgres.sh -h               this text
#
# stdout carries only the export line; messages go to stderr. Safe to run again and from
# several shells at once (a lock serialises set-up).
#
# Uses Debian's PostgreSQL packages (/usr/lib/postgresql/<major>/bin, the highest major wins).
# When none is installed and we are root with apt-get, it installs `postgresql`.
# The cluster lives in $cache/postgres-<major>/ (data/, run/ for the socket, postgres.log,
# password), listens on 127.0.0.1 only and trades durability for speed (fsync=off): it is
# for tests, never for data you keep. As root the server runs as the `postgres` user
# (PostgreSQL refuses root) and the folder belongs to it; as anyone else it runs as you.
#
# Environment: CONVEYOR_PG_PORT (default 55432), CONVEYOR_CACHE (default ~/.cache/conveyor),
# CONVEYOR_PG_DATABASE (default conveyor_test).
set -euo pipefail

port=${CONVEYOR_PG_PORT:-55432}
database=${CONVEYOR_PG_DATABASE:-conveyor_test}
: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
cache=${CONVEYOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/conveyor}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'postgres.sh: error: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }

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

# find_bindir prints the bin directory of the newest installed PostgreSQL server.
find_bindir() {
	local d best="" bestmajor=0 major
	for d in /usr/lib/postgresql/*/bin; do
		[ -x "$d/initdb" ] || continue
		major=$(basename "$(dirname "$d")")
		case $major in *[!0-9]* | "") continue ;; esac
		if [ "$major" -gt "$bestmajor" ]; then best=$d bestmajor=$major; fi
	done
	if [ -z "$best" ] && command -v initdb >/dev/null; then
		best=$(dirname "$(readlink -f "$(command -v initdb)")")
	fi
	[ -n "$best" ] && echo "$best"
}

bindir=$(find_bindir || true)
if [ -z "$bindir" ]; then
	[ "$action" = start ] || exit 0
	is_root && command -v apt-get >/dev/null ||
		die "PostgreSQL is not installed. Install Debian's 'postgresql' package (or run this script as root)."
	say "apt-get install postgresql"
	# A third-party source being unreachable must not stop us: judge by the install.
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || say "apt-get update reported errors; trying the install anyway"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
	bindir=$(find_bindir) || die "installed postgresql but found no initdb under /usr/lib/postgresql/*/bin"
fi
major=$("$bindir/initdb" --version | sed -n 's/.* \([0-9][0-9]*\)[.0-9]*.*/\1/p' | head -n1)
[ -n "$major" ] || die "cannot tell the version of $bindir/initdb"

mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
dir=$cache/postgres-$major
data=$dir/data
sock=$dir/run
log=$dir/postgres.log

# as_owner runs a command as the user that owns the cluster.
if is_root; then
	id postgres >/dev/null 2>&1 || die "no 'postgres' user (the postgresql package creates it)"
	as_owner() { runuser -u postgres -- "$@"; }
else
	as_owner() { "$@"; }
fi

# The server, running as postgres, must reach $dir through our home (0700 on Debian for
# root): grant search (x) permission on the ancestors it cannot pass, nothing more.
grant_traverse() {
	local p="" part rest=${1#/}
	while [ -n "$rest" ]; do
		part=${rest%%/*}
		[ "$part" = "$rest" ] && rest="" || rest=${rest#*/}
		[ -z "$rest" ] && break # the cluster folder itself belongs to postgres
		p=$p/$part
		runuser -u postgres -- test -x "$p" 2>/dev/null && continue
		if command -v setfacl >/dev/null; then
			say "granting the postgres user search access to $p (setfacl u:postgres:x)"
			setfacl -m u:postgres:x "$p"
		else
			say "granting search (o+x) access to $p so the postgres user reaches $1"
			chmod o+x "$p"
		fi
	done
}

running() { [ -f "$data/postmaster.pid" ] && as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; }
# running_port prints the port of the running server (line 4 of postmaster.pid).
running_port() { sed -n 4p "$data/postmaster.pid"; }

# One set-up at a time: parallel test runs would initdb or start the same cluster.
exec 9>"$cache/postgres.lock"
flock 9

if [ "$action" = stop ]; then
	if [ -d "$data" ] && running; then
		say "stopping PostgreSQL $major in $dir"
		as_owner "$bindir/pg_ctl" -D "$data" -m fast -w stop >&2
	fi
	exit 0
fi

if [ ! -s "$data/PG_VERSION" ]; then
	say "initdb PostgreSQL $major in $dir"
	rm -rf "$dir"
	mkdir -p "$dir"
	chmod 700 "$dir"
	# The password guards the TCP listener; the socket (in a 0700 folder) is trusted.
	(umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$dir/password")
	if is_root; then
		chown -R postgres: "$dir"
		grant_traverse "$dir"
	fi
	as_owner "$bindir/initdb" -D "$data" -U postgres -E UTF8 --locale=C --no-sync \
		--auth-local=trust --auth-host=scram-sha-256 --pwfile="$dir/password" >"$dir/initdb.log" 2>&1 ||
		{ tail -n 20 "$dir/initdb.log" >&2; die "initdb failed; log: $dir/initdb.log"; }
	as_owner mkdir -p "$sock"
	# Test speed over durability: a crash of this cluster loses only test data.
	as_owner tee -a "$data/postgresql.conf" >/dev/null <<-EOF

		# conveyor test cluster (scripts/postgres.sh)
		listen_addresses = '127.0.0.1'
		unix_socket_directories = '$sock'
		max_connections = 300
		fsync = off
		synchronous_commit = off
		full_page_writes = off
	EOF
elif is_root; then
	grant_traverse "$dir"
fi

if running && [ "$(running_port)" != "$port" ]; then
	say "PostgreSQL in $dir runs on port $(running_port); restarting it on $port"
	as_owner "$bindir/pg_ctl" -D "$data" -m fast -w stop >&2
fi
if ! running; then
	say "starting PostgreSQL $major on 127.0.0.1:$port (log: $log)"
	# 9>&-: the server must not inherit (and hold forever) the set-up lock.
	as_owner "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 -o "-p $port" start >&2 9>&- ||
		{ tail -n 20 "$log" >&2; die "PostgreSQL did not start; log: $log"; }
fi
for _ in $(seq 60); do
	"$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" && break
	sleep 0.5
done
"$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" || die "PostgreSQL on 127.0.0.1:$port is not ready; log: $log"

password=$(cat "$dir/password")
psql() { PGPASSWORD=$password "$bindir/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres "$@"; }
if [ "$(psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$database'")" != 1 ]; then
	say "creating database $database"
	psql -d postgres -c "CREATE DATABASE \"$database\"" >&2
fi

# The password is URL-safe base64: no quoting or escaping needed.
printf "export CONVEYOR_TEST_POSTGRES='%s'\n" \
	"postgres://postgres:$password@127.0.0.1:$port/$database?sslmode=disable"
