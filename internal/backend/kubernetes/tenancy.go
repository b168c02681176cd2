package kubernetes

import (
	"context"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// LabelNetwork is a job pod's network policy (none, no-private), which
// the namespace's NetworkPolicy of that name selects; open pods have none.
const LabelNetwork = "conveyor.dev/network"

// QuotaName is the ResourceQuota made in an organisation's namespace.
const QuotaName = "conveyor-jobs"

// privateV4 and privateV6 are what no-private denies: private, loopback,
// link-local (cloud metadata) and carrier-grade NAT ranges.
var (
	privateV4 = []string{"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16"}
	privateV6 = []string{"::1/128", "fc00::/7", "fe80::/10"}
)

// NetworkPolicyName is the NetworkPolicy of a job network policy.
func NetworkPolicyName(p backend.NetworkPolicy) string { return "conveyor-network-" + string(p) }

// networkPolicy is the NetworkPolicy enforcing p on the pods labelled
// with it: none denies all egress (the job's services are containers of
// its pod, on localhost); no-private allows public addresses, DNS to the
// cluster's resolver and allow (the server endpoint's CIDRs).
func networkPolicy(p backend.NetworkPolicy, allow []string) *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: NetworkPolicyName(p), Labels: map[string]string{LabelManaged: managedBy}},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{LabelNetwork: string(p)}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress:      []networkingv1.NetworkPolicyEgressRule{},
		},
	}
	if p != backend.NetworkNoPrivate {
		return np
	}
	udp, tcp, dns := corev1.ProtocolUDP, corev1.ProtocolTCP, intstr.FromInt32(53)
	public := networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{
		{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: privateV4}},
		{IPBlock: &networkingv1.IPBlock{CIDR: "::/0", Except: privateV6}},
	}}
	resolver := networkingv1.NetworkPolicyEgressRule{
		To: []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}},
			PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
		}},
		Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &dns}, {Protocol: &tcp, Port: &dns}},
	}
	np.Spec.Egress = append(np.Spec.Egress, public, resolver)
	if len(allow) > 0 {
		var to []networkingv1.NetworkPolicyPeer
		for _, c := range allow {
			to = append(to, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: c}})
		}
		np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: to})
	}
	return np
}

// resourceQuota caps an organisation's namespace at maxJobs pods.
func resourceQuota(maxJobs int) *corev1.ResourceQuota {
	return &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: QuotaName, Labels: map[string]string{LabelManaged: managedBy}},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{
			corev1.ResourcePods: *resource.NewQuantity(int64(maxJobs), resource.DecimalSI),
		}},
	}
}

// ensureTenancy makes, in the job's namespace, the NetworkPolicy of its
// network policy and, in an organisation's namespace, the ResourceQuota of
// its quota of concurrent jobs (deleted when the quota is gone). What this
// process applied already is not asked about again.
func (b *Backend) ensureTenancy(ctx context.Context, ns string, job *backend.JobSpec) error {
	if p := job.Network; p == backend.NetworkNone || p == backend.NetworkNoPrivate {
		np := networkPolicy(p, b.opts.EgressAllow)
		if err := b.once(ns+"/netpol/"+np.Name, "", func() error { return b.applyNetworkPolicy(ctx, ns, np) }); err != nil {
			return err
		}
	}
	if b.opts.NamespacePrefix == "" || job.Tenant.Org == "" {
		return nil
	}
	return b.once(ns+"/quota", strconv.Itoa(job.Tenant.MaxJobs), func() error { return b.applyQuota(ctx, ns, job.Tenant.MaxJobs) })
}

// once runs apply unless it last succeeded for key with the same value.
func (b *Backend) once(key, val string, apply func() error) error {
	b.appliedMu.Lock()
	last, ok := b.applied[key]
	b.appliedMu.Unlock()
	if ok && last == val {
		return nil
	}
	if err := apply(); err != nil {
		return err
	}
	b.appliedMu.Lock()
	b.applied[key] = val
	b.appliedMu.Unlock()
	return nil
}

func (b *Backend) applyNetworkPolicy(ctx context.Context, ns string, np *networkingv1.NetworkPolicy) error {
	op := fmt.Sprintf("kubernetes: network policy %s/%s", ns, np.Name)
	api := b.cs.NetworkingV1().NetworkPolicies(ns)
	cur, err := api.Get(ctx, np.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = api.Create(ctx, np, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	case err == nil && !apiequality.Semantic.DeepEqual(cur.Spec, np.Spec):
		cur.Spec = np.Spec
		_, err = api.Update(ctx, cur, metav1.UpdateOptions{})
	}
	if err != nil {
		return errs.Wrap(op, kindOf(err), err)
	}
	return nil
}

func (b *Backend) applyQuota(ctx context.Context, ns string, maxJobs int) error {
	op := fmt.Sprintf("kubernetes: resource quota %s/%s", ns, QuotaName)
	api := b.cs.CoreV1().ResourceQuotas(ns)
	cur, err := api.Get(ctx, QuotaName, metav1.GetOptions{})
	rq := resourceQuota(maxJobs)
	switch {
	case maxJobs <= 0 && err == nil:
		err = api.Delete(ctx, QuotaName, metav1.DeleteOptions{})
	case maxJobs <= 0 && apierrors.IsNotFound(err):
		err = nil
	case apierrors.IsNotFound(err):
		_, err = api.Create(ctx, rq, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	case err == nil && !apiequality.Semantic.DeepEqual(cur.Spec.Hard, rq.Spec.Hard):
		cur.Spec.Hard = rq.Spec.Hard
		_, err = api.Update(ctx, cur, metav1.UpdateOptions{})
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return errs.Wrap(op, kindOf(err), err)
	}
	return nil
}
