#!/usr/bin/env bash
# A one-node Kubernetes cluster for Conveyor's tests, started once and reused.
#
#   eval "$(scripts/k8s/up.sh)"     start (or find running); export CONVEYOR_TEST_KUBECONFIG
#   scripts/k8s/down.sh             stop it and undo what it changed on the host
#   scripts/k8s/up.sh -h            this text
#
# stdout carries only the export line; messages go to stderr. Needs root on Debian (a kubelet
# and containerd manage containers, cgroups and a network bridge). Safe to run again: when the
# cluster answers it only prints the export (well under a second).
#
# What runs, all private to this cluster and logged under $cache/k8s-cluster/:
#   - the binaries of scripts/k8s/build.sh (Kubernetes $K8S_VERSION from the Go module proxy,
#     etcd and the CNI plugins from Debian), cached in $cache/k8s-$K8S_VERSION/;
#   - containerd (Debian's, apt-installed when missing) with its own root, state and socket and
#     the CRI plugin, runc, cgroupfs, restrict_oom_score_adj (the VM lacks CAP_SYS_RESOURCE);
#   - a CNI bridge conveyor-k8s0 on 10.242.0.0/24 (Docker's bridges and socket are untouched);
#   - etcd on 127.0.0.1:12379, kube-apiserver on 127.0.0.1:16443 (self-made PKI, Node,RBAC),
#     controller-manager and scheduler (no leader election), a kubelet (port 11250);
#   - images: the pause image (a static Go binary that sleeps until signalled) and the test
#     images conveyor-test/busybox:1 and conveyor-test/debian:bookworm-1, moved from Docker with
#     docker save | ctr import (no registry). Pods must use imagePullPolicy IfNotPresent/Never.
# No cluster DNS and no kube-proxy: pods cannot reach Services (job pods need neither).
#
# Environment: CONVEYOR_CACHE (default ~/.cache/conveyor), K8S_VERSION (default v1.31.0),
# CONVEYOR_K8S_IMAGES (default: the two test images; space-separated Docker image names).
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.31.0}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
export HOME
cache=${CONVEYOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/conveyor}
command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || PATH=/usr/local/go/bin:$PATH
images=${CONVEYOR_K8S_IMAGES:-conveyor-test/busybox:1 conveyor-test/debian:bookworm-1}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'k8s/up.sh: error: %s\n' "$*" >&2; exit 1; }

case ${1:-} in
"") ;;
-h | --help)
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
	exit 0
	;;
*) die "unknown argument $1 (try --help)" ;;
esac
[ "$(id -u)" = 0 ] || die "the test cluster needs root (kubelet, containerd, a network bridge)"

mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
run=$cache/k8s-cluster
mkdir -p "$run"
# shellcheck source=scripts/k8s/common.sh
. "$here/common.sh"

export_line() { printf 'export CONVEYOR_TEST_KUBECONFIG=%q\n' "$run/admin.kubeconfig"; }

exec 7>"$run/up.lock"
flock 7
if api_ok && node_ready; then
	import_images # quick when the images are there
	export_line
	exit 0
fi

top=$("$here/build.sh")
bin=$top/bin
deb=$top/deb
if ! command -v containerd >/dev/null || ! command -v runc >/dev/null; then
	say "apt-get install containerd runc"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containerd runc >&2
fi
command -v openssl >/dev/null || die "openssl is needed for the cluster's certificates"

# Leftovers of a cluster whose processes died (a reboot, kill -9) would confuse the new one.
"$here/down.sh" >/dev/null 2>&1 || true
mkdir -p "$run"/{pki,logs,pids,containerd,cni/net.d,cni/ipam,kubelet,etcd}
node_ip=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
[ -n "$node_ip" ] || node_ip=$(hostname -I | awk '{print $1}')
[ -n "$node_ip" ] || die "cannot tell this machine's IP address"
node=conveyor-node

# ---- PKI -----------------------------------------------------------------------------------
pki=$run/pki
cert() { # name CN O [SANs]
	local name=$1 cn=$2 o=$3 san=${4:-}
	[ -s "$pki/$name.crt" ] && return 0
	openssl genrsa -out "$pki/$name.key" 2048 2>/dev/null
	openssl req -new -key "$pki/$name.key" -subj "/CN=$cn${o:+/O=$o}" -out "$pki/$name.csr" 2>/dev/null
	{
		echo "basicConstraints=CA:FALSE"
		echo "keyUsage=critical,digitalSignature,keyEncipherment"
		echo "extendedKeyUsage=serverAuth,clientAuth"
		[ -z "$san" ] || echo "subjectAltName=$san"
	} >"$pki/$name.ext"
	openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
		-days 3650 -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
}
if [ ! -s "$pki/ca.crt" ]; then
	say "PKI in $pki"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -out "$pki/ca.crt" -days 3650 \
		-subj "/CN=conveyor-test-ca" 2>/dev/null
	openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
	openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
fi
rm -f "$pki/apiserver.crt" # its SANs carry the node IP, which may have changed
cert apiserver kube-apiserver "" "IP:127.0.0.1,IP:10.96.0.1,IP:$node_ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert admin conveyor-admin system:masters
cert kubelet-client kube-apiserver-kubelet-client system:masters
cat >"$run/admin.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: conveyor-test
  cluster: {server: "https://127.0.0.1:$api_port", certificate-authority: "$pki/ca.crt"}
users:
- name: admin
  user: {client-certificate: "$pki/admin.crt", client-key: "$pki/admin.key"}
contexts:
- name: conveyor-test
  context: {cluster: conveyor-test, user: admin}
current-context: conveyor-test
EOF

# ---- containerd and CNI --------------------------------------------------------------------
ensure_pause_image
cat >"$run/containerd/config.toml" <<EOF
version = 2
root = "$run/containerd/root"
state = "$run/containerd/state"
[grpc]
  address = "$ctr_sock"
[ttrpc]
  address = "$ctr_sock.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_ref"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$deb/usr/lib/cni"
    conf_dir = "$run/cni/net.d"
EOF
cat >"$run/cni/net.d/10-conveyor-k8s.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "conveyor-k8s",
  "plugins": [
    {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$run/cni/ipam", "ranges": [[{"subnet": "$pod_cidr"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "firewall"},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
save_sysctls
start_bg containerd containerd --config "$run/containerd/config.toml"
wait_for "containerd" 30 ctr_ok
import_images

# ---- control plane -------------------------------------------------------------------------
start_bg etcd "$deb/usr/bin/etcd" --name conveyor --data-dir "$run/etcd" \
	--listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
	--listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
	--initial-cluster "conveyor=http://127.0.0.1:$etcd_peer_port" --unsafe-no-fsync --log-level warn
wait_for "etcd" 30 curl -sf "http://127.0.0.1:$etcd_port/health"
start_bg kube-apiserver "$bin/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
	--bind-address 127.0.0.1 --advertise-address "$node_ip" --secure-port "$api_port" \
	--tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" --client-ca-file "$pki/ca.crt" \
	--service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
	--service-account-issuer https://kubernetes.default.svc --service-cluster-ip-range 10.96.0.0/24 \
	--authorization-mode Node,RBAC --kubelet-client-certificate "$pki/kubelet-client.crt" \
	--kubelet-client-key "$pki/kubelet-client.key" --kubelet-preferred-address-types InternalIP,Hostname \
	--profiling=false
wait_for "kube-apiserver" 90 api_ok
start_bg kube-controller-manager "$bin/kube-controller-manager" --kubeconfig "$run/admin.kubeconfig" \
	--leader-elect=false --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
	--use-service-account-credentials=false --secure-port 0 --controllers '*,-nodeipam' --profiling=false
start_bg kube-scheduler "$bin/kube-scheduler" --kubeconfig "$run/admin.kubeconfig" --leader-elect=false \
	--secure-port 0 --profiling=false

# ---- kubelet -------------------------------------------------------------------------------
cat >"$run/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# Only the API server (its kubelet-client certificate, signed by this CA) may talk to the kubelet.
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: "$pki/ca.crt"}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
containerRuntimeEndpoint: "unix://$ctr_sock"
failSwapOn: false
address: "$node_ip"
port: $kubelet_port
healthzPort: $kubelet_healthz_port
readOnlyPort: 0
serializeImagePulls: false
evictionHard: {memory.available: "50Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
resolvConf: /etc/resolv.conf
EOF
start_bg kubelet "$bin/kubelet" --config "$run/kubelet/config.yaml" --kubeconfig "$run/admin.kubeconfig" \
	--root-dir "$run/kubelet/root" --cert-dir "$run/kubelet/pki" --hostname-override "$node" --node-ip "$node_ip"
wait_for "the node to be Ready" 120 node_ready
# Pods are refused until the default service account of a namespace exists.
wait_for "the default service account" 60 api_get /api/v1/namespaces/default/serviceaccounts/default
say "cluster up: kubeconfig $run/admin.kubeconfig (logs: $run/logs)"
export_line
