package kubernetes

import (
	"context"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// probed are the rights a probe asks for: what every job needs (its pod)
// and what steps of another image need (an ephemeral container added to
// the pod, its log followed), so that a role missing them fails the probe
// with the rule to add rather than a job mid-way.
var probed = []struct{ verb, resource, sub string }{
	{"create", "pods", ""},
	{"patch", "pods", "ephemeralcontainers"},
	{"get", "pods", "log"},
}

// Probe is a cheap authenticated health check: it asks the API server
// (SelfSubjectAccessReviews, nothing stored) whether the backend's
// credentials may create pods, add ephemeral containers to them and read
// their logs where it puts them: in Namespace, or with a NamespacePrefix
// in any namespace. A cluster that does not answer, a revoked token
// (Unauthorized) or a revoked role (not allowed: Forbidden) fail it.
func (b *Backend) Probe(ctx context.Context) error {
	const op = "kubernetes: probe"
	ns := b.opts.Namespace
	if b.opts.NamespacePrefix != "" {
		ns = ""
	}
	for _, p := range probed {
		r, err := b.cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: ns, Verb: p.verb, Resource: p.resource, Subresource: p.sub}},
		}, metav1.CreateOptions{})
		if err != nil {
			return errs.Wrap(op, kindOf(err), err)
		}
		if r.Status.Allowed {
			continue
		}
		where := "namespace " + ns
		if ns == "" {
			where = "all namespaces"
		}
		what := p.resource
		if p.sub != "" {
			what += "/" + p.sub
		}
		msg := "the credentials may not " + p.verb + " " + what + " in " + where + " (see the RBAC of docs/kubernetes.md)"
		if r.Status.Reason != "" {
			msg += ": " + r.Status.Reason
		}
		return errs.E(op, errs.Forbidden, "%s", msg)
	}
	return nil
}
