package kubernetes

import (
	"context"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/conveyor-ci/conveyor/internal/backend/docker"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// ReapOrphans deletes, in the backend's namespaces, the job pods whose
// Conveyor process of this host is gone (kill -9, a crash: found by the
// owner annotation) and the job pods that have ended (their job is over
// whoever made them). Pods of live processes, and of other hosts, are left
// alone while they run. It returns how many pods it deleted.
func (b *Backend) ReapOrphans(ctx context.Context) (int, error) {
	const op = "kubernetes: reap orphans"
	list, err := b.cs.CoreV1().Pods(b.podScope()).List(ctx, metav1.ListOptions{LabelSelector: LabelManaged + "=" + managedBy})
	if err != nil {
		return 0, errs.Wrap(op, kindOf(err), err)
	}
	n := 0
	var firstErr error
	for _, p := range list.Items {
		ended := p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
		if !b.inScope(p.Namespace) || p.DeletionTimestamp != nil || (!ended && !docker.OwnerGone(p.Annotations[AnnotationOwner])) {
			continue
		}
		err := b.cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))})
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

// podScope is where the backend's pods are: every namespace with a
// NamespacePrefix (one per organisation), else its Namespace.
func (b *Backend) podScope() string {
	if b.opts.NamespacePrefix != "" {
		return metav1.NamespaceAll
	}
	return b.opts.Namespace
}

// inScope says whether ns is one of the backend's namespaces: a
// NamespacePrefix's (listing every namespace also finds those of other
// Conveyor deployments on the cluster, with prefixes of their own, whose
// jobs this one's database does not know), or its Namespace.
func (b *Backend) inScope(ns string) bool {
	if b.opts.NamespacePrefix != "" {
		return strings.HasPrefix(ns, b.opts.NamespacePrefix)
	}
	return ns == b.opts.Namespace
}

// JobDone says whether a server job's pod may go: the job is finished,
// unknown (deleted, or another server's database), or leased again
// (lease is the pod's fencing token, older than the job's).
type JobDone func(ctx context.Context, orgID, jobID, lease int64) (bool, error)

// SweepJobs deletes the pods of server jobs that done says are over,
// found by their labels (LabelJobID, LabelOrgID, LabelLease): what a
// server that crashed, or lost a job's lease, left running. It returns
// how many pods it deleted; a job done cannot answer for is left alone.
func (b *Backend) SweepJobs(ctx context.Context, done JobDone) (int, error) {
	const op = "kubernetes: sweep job pods"
	list, err := b.cs.CoreV1().Pods(b.podScope()).List(ctx, metav1.ListOptions{LabelSelector: LabelManaged + "=" + managedBy + "," + LabelJobID})
	if err != nil {
		return 0, errs.Wrap(op, kindOf(err), err)
	}
	n := 0
	var firstErr error
	keep := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	for _, p := range list.Items {
		if !b.inScope(p.Namespace) || p.DeletionTimestamp != nil {
			continue
		}
		orgID, e1 := strconv.ParseInt(p.Labels[LabelOrgID], 10, 64)
		jobID, e2 := strconv.ParseInt(p.Labels[LabelJobID], 10, 64)
		lease, e3 := strconv.ParseInt(p.Labels[LabelLease], 10, 64)
		over := e1 != nil || e2 != nil || e3 != nil // not one of ours to ask about: unknown
		if !over {
			if over, err = done(ctx, orgID, jobID, lease); err != nil {
				keep(errs.Wrap(op+": pod "+p.Namespace+"/"+p.Name, errs.KindOf(err), err))
				continue
			}
		}
		if !over {
			continue
		}
		err := b.cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))})
		switch {
		case err == nil:
			n++
		case apierrors.IsNotFound(err):
		default:
			keep(errs.Wrap(op, kindOf(err), err))
		}
	}
	return n, firstErr
}
