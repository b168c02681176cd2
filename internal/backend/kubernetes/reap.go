package kubernetes

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/conveyor-ci/conveyor/internal/backend/docker"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// ReapOrphans deletes, in the backend's namespace, the job pods whose
// Conveyor process of this host is gone (kill -9, a crash: found by the
// owner annotation) and the job pods that have ended (their job is over
// whoever made them). Pods of live processes, and of other hosts, are left
// alone while they run. It returns how many pods it deleted.
func (b *Backend) ReapOrphans(ctx context.Context) (int, error) {
	const op = "kubernetes: reap orphans"
	pods := b.cs.CoreV1().Pods(b.opts.Namespace)
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: LabelManaged + "=" + managedBy})
	if err != nil {
		return 0, errs.Wrap(op, kindOf(err), err)
	}
	n := 0
	var firstErr error
	for _, p := range list.Items {
		ended := p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
		if p.DeletionTimestamp != nil || (!ended && !docker.OwnerGone(p.Annotations[AnnotationOwner])) {
			continue
		}
		err := pods.Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))})
		switch {
		case err == nil:
			n++
		case apierrors.IsNotFound(err):
		case firstErr == nil:
			firstErr = errs.Wrap(op, kindOf(err), err)
		}
	}
	return n, firstErr
}
