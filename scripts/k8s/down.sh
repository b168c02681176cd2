#!/usr/bin/env bash
# Stops the test cluster of scripts/k8s/up.sh and undoes what it changed on the host.
#
#   scripts/k8s/down.sh           stop; the cached binaries, PKI and images stay for a quick up
#   scripts/k8s/down.sh --purge   also remove the cluster's folder ($cache/k8s-cluster)
#
# In order: every pod is deleted through the API (so the kubelet tears down its containers,
# network namespaces and CNI rules), the processes up.sh started are stopped by their recorded
# pids (SIGTERM twice, then SIGKILL), containers left in the private containerd are killed, its
# mounts are undone, the CNI bridge is deleted, the kubelet's KUBE-* iptables chains are removed
# and the sysctls the kubelet set get their saved values back. Docker's engine, containerd,
# bridges and chains are not touched.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
cache=${CONVEYOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/conveyor}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'k8s/down.sh: error: %s\n' "$*" >&2; exit 1; }

purge=0
case ${1:-} in
"") ;;
--purge) purge=1 ;;
-h | --help)
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
	exit 0
	;;
*) die "unknown argument $1 (try --help)" ;;
esac
[ "$(id -u)" = 0 ] || die "needs root, as up.sh did"
run=$cache/k8s-cluster
[ -d "$run" ] || exit 0
run=$(cd "$run" && pwd)
images=""
# shellcheck source=scripts/k8s/common.sh
. "$here/common.sh"

alive() { [ -s "$run/pids/$1" ] && kill -0 "$(cat "$run/pids/$1")" 2>/dev/null; }

# 1. Pods, through the API, while the kubelet still runs.
if alive kubelet && api_ok; then
	say "deleting every pod"
	for ns in $(api_get /api/v1/namespaces | python3 -c 'import json,sys; print(" ".join(i["metadata"]["name"] for i in json.load(sys.stdin)["items"]))'); do
		curl -sf --max-time 10 --cacert "$run/pki/ca.crt" --cert "$run/pki/admin.crt" --key "$run/pki/admin.key" \
			-X DELETE "https://127.0.0.1:$api_port/api/v1/namespaces/$ns/pods?gracePeriodSeconds=1" >/dev/null || true
	done
	for _ in $(seq 150); do
		n=$(api_get /api/v1/pods | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))' 2>/dev/null || echo 0)
		[ "$n" = 0 ] && break
		sleep 0.2
	done
	# The kubelet tears down sandboxes shortly after the pods are gone.
	for _ in $(seq 50); do
		[ -z "$(k8sctr tasks ls -q 2>/dev/null)" ] && break
		sleep 0.2
	done
fi

# 2. The processes up.sh started, by pid.
stop() {
	local name=$1 pid i
	alive "$name" || { rm -f "$run/pids/$name"; return 0; }
	pid=$(cat "$run/pids/$name")
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		[ "$i" = 10 ] && kill -TERM "$pid" 2>/dev/null # kube-apiserver may ignore the first
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$run/pids/$name"
}
for c in kubelet kube-scheduler kube-controller-manager kube-apiserver etcd; do stop "$c"; done
if alive containerd; then
	# Containers the kubelet did not get to: kill their tasks, then their shims go.
	for t in $(k8sctr tasks ls -q 2>/dev/null); do k8sctr tasks kill -s KILL "$t" >/dev/null 2>&1 || true; done
	sleep 0.5
	for t in $(k8sctr tasks ls -q 2>/dev/null); do k8sctr tasks delete -f "$t" >/dev/null 2>&1 || true; done
fi
stop containerd
# Shims of this containerd (their -address is our private socket) outlive it.
for p in /proc/[0-9]*; do
	cmd=$({ tr "\0" " " <"$p/cmdline"; } 2>/dev/null) || continue
	case $cmd in *containerd-shim*"-address $ctr_sock"*) kill -KILL "${p#/proc/}" 2>/dev/null || true ;; esac
done

# 3. Mounts under the cluster's folder (container roots, sandbox shm), deepest first, and the
# pods' network namespaces the CRI left.
mounts=$(awk -v r="$run/" 'index($2, r) == 1 { print $2 }' /proc/self/mounts | sort -r || true)
while IFS= read -r m; do
	[ -z "$m" ] || umount -l "$m" 2>/dev/null || true
done <<<"$mounts"

# 4. Network: the bridge, the CNI's masquerade chains of this network, the kubelet's chains.
ip link del "$bridge" 2>/dev/null || true
for ipt in iptables ip6tables; do
	command -v "$ipt" >/dev/null || continue
	for table in filter nat mangle; do
		# Rules that jump to KUBE-* chains, or that the CNI made for this network.
		rules=$("$ipt" -t "$table" -S 2>/dev/null | grep -E -- '-j KUBE-|name: \\"conveyor-k8s\\"|"name: conveyor-k8s' | sed 's/^-A /-D /' || true)
		while IFS= read -r rule; do
			[ -z "$rule" ] || eval "$ipt -t $table $rule" 2>/dev/null || true
		done <<<"$rules"
		for chain in $("$ipt" -t "$table" -S 2>/dev/null | sed -n 's/^-N \(KUBE-[^ ]*\)$/\1/p'); do
			"$ipt" -t "$table" -F "$chain" 2>/dev/null || true
			"$ipt" -t "$table" -X "$chain" 2>/dev/null || true
		done
	done
	# The CNI firewall plugin's chains, when nothing else uses them any more.
	for chain in CNI-FORWARD CNI-ADMIN; do
		if "$ipt" -S "$chain" >/dev/null 2>&1 && [ "$("$ipt" -S "$chain" | grep -c '^-A' || true)" = 0 ]; then
			"$ipt" -D FORWARD -j "$chain" 2>/dev/null || true
			"$ipt" -D CNI-FORWARD -j "$chain" 2>/dev/null || true
			"$ipt" -X "$chain" 2>/dev/null || true
		fi
	done
done

# 5. Sysctls.
if [ -s "$run/sysctl.saved" ]; then
	while IFS= read -r kv; do sysctl -qw "$kv" 2>/dev/null || true; done <"$run/sysctl.saved"
	rm -f "$run/sysctl.saved"
fi

if [ $purge = 1 ]; then
	rm -rf --one-file-system "$run"
fi
say "test cluster stopped"
