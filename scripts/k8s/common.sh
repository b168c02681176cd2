# Shared by scripts/k8s/up.sh and down.sh (sourced; needs $run, $cache, say, die).
# shellcheck shell=bash

api_port=16443
etcd_port=12379
etcd_peer_port=12380
kubelet_port=11250
kubelet_healthz_port=11248
bridge=conveyor-k8s0
pod_cidr=10.242.0.0/24
ctr_sock=$run/containerd/containerd.sock
pause_ref=docker.io/conveyor-test/pause:1
# The order processes stop in (reverse of the start).
components=(kubelet kube-scheduler kube-controller-manager kube-apiserver etcd containerd)

api_get() { # path: GET with the admin certificate, quiet
	curl -sf --max-time 5 --cacert "$run/pki/ca.crt" --cert "$run/pki/admin.crt" --key "$run/pki/admin.key" \
		"https://127.0.0.1:$api_port$1"
}
api_ok() { [ -s "$run/pki/admin.crt" ] && [ "$(api_get /readyz 2>/dev/null)" = ok ]; }
node_ready() { # Ready, and the node lifecycle controller has lifted the not-ready taint
	local n
	n=$(api_get /api/v1/nodes/conveyor-node 2>/dev/null | tr -d ' \n') || return 1
	case $n in *'"type":"Ready","status":"True"'*) ;; *) return 1 ;; esac
	case $n in *node.kubernetes.io/not-ready*) return 1 ;; esac
}
ctr_ok() { [ -S "$ctr_sock" ] && ctr --address "$ctr_sock" version >/dev/null 2>&1; }
k8sctr() { ctr --address "$ctr_sock" -n k8s.io "$@"; }

wait_for() { # what seconds cmd...
	local what=$1 secs=$2 i
	shift 2
	for ((i = 0; i < secs * 5; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	for c in "${components[@]}"; do
		[ -s "$run/logs/$c.log" ] && { echo "--- $c.log" >&2; tail -n 15 "$run/logs/$c.log" >&2; }
	done
	die "timed out after ${secs}s waiting for $what (logs: $run/logs)"
}

# start_bg name cmd...: starts a daemon detached, its pid in $run/pids/name.
start_bg() {
	local name=$1
	shift
	say "starting $name"
	# 7>&- 9>&-: daemons must not inherit (and hold forever) the set-up locks.
	setsid "$@" >>"$run/logs/$name.log" 2>&1 </dev/null 7>&- 9>&- &
	echo $! >"$run/pids/$name"
}

# ensure_pause_image builds the sandbox ("pause") image: a static Go program that sleeps until
# SIGTERM or SIGINT and reaps children; imported into Docker, from where import_images moves it.
ensure_pause_image() {
	docker image inspect "${pause_ref#docker.io/}" >/dev/null 2>&1 && return 0
	local tmp
	tmp=$(mktemp -d)
	cat >"$tmp/main.go" <<'EOF'
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range c {
		if s != syscall.SIGCHLD {
			return
		}
		for {
			if pid, _ := syscall.Wait4(-1, nil, syscall.WNOHANG, nil); pid <= 0 {
				break
			}
		}
	}
}
EOF
	printf 'module pause\n\ngo 1.21\n' >"$tmp/go.mod"
	mkdir -p "$tmp/root"
	(cd "$tmp" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags='-s -w' -o root/pause .)
	say "docker import pause image ${pause_ref#docker.io/}"
	tar -C "$tmp/root" --owner=0 --group=0 -c . |
		docker import --change 'ENTRYPOINT ["/pause"]' - "${pause_ref#docker.io/}" >/dev/null
	rm -rf "$tmp"
}

# import_images moves the pause and test images from Docker into the cluster's containerd, when
# the image there is not the same (Docker image IDs are remembered in $run/images.ids).
import_images() {
	local img id want=() ids=""
	for img in "${pause_ref#docker.io/}" $images; do
		id=$(docker image inspect --format '{{.Id}}' "$img" 2>/dev/null) || {
			say "warning: image $img is not in Docker; not imported into the cluster"
			continue
		}
		ids+="$img $id"$'\n'
		if ! grep -qxF "$img $id" "$run/images.ids" 2>/dev/null || ! k8sctr images check "name==docker.io/$img" 2>/dev/null | grep -q .; then
			want+=("$img")
		fi
	done
	if [ ${#want[@]} -gt 0 ]; then
		say "importing ${want[*]} into the cluster's containerd"
		docker save "${want[@]}" | k8sctr images import --no-unpack=false - >/dev/null
	fi
	printf '%s' "$ids" >"$run/images.ids"
}

# The kubelet sets these sysctls; down.sh puts the saved values back.
sysctls=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
save_sysctls() {
	[ -s "$run/sysctl.saved" ] && return 0
	local k
	for k in "${sysctls[@]}"; do
		sysctl -n "$k" 2>/dev/null | sed "s|^|$k=|"
	done >"$run/sysctl.saved.tmp"
	mv "$run/sysctl.saved.tmp" "$run/sysctl.saved"
}
