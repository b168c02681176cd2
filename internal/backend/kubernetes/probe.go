package kubernetes

import (
	"context"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Probe is a cheap authenticated health check: it asks the API server
// (a SelfSubjectAccessReview) whether the backend's credentials may
// create pods where it puts them: in Namespace, or with a
// NamespacePrefix in any namespace. A cluster that does not answer, a
// revoked token (Unauthorized) or a revoked role (not allowed: Forbidden)
// fail it.
func (b *Backend) Probe(ctx context.Context) error {
	const op = "kubernetes: probe"
	ns := b.opts.Namespace
	if b.opts.NamespacePrefix != "" {
		ns = ""
	}
	r, err := b.cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: ns, Verb: "create", Resource: "pods"}},
	}, metav1.CreateOptions{})
	if err != nil {
		return errs.Wrap(op, kindOf(err), err)
	}
	if !r.Status.Allowed {
		where := "namespace " + ns
		if ns == "" {
			where = "all namespaces"
		}
		msg := "the credentials may not create pods in " + where
		if r.Status.Reason != "" {
			msg += ": " + r.Status.Reason
		}
		return errs.E(op, errs.Forbidden, "%s", msg)
	}
	return nil
}
