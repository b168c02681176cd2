package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// A job worker credential lets the in-pod worker of one job (the
// kubernetes backend's worker layout) speak the agent protocol for that
// job under that lease, and nothing else. It is stored as a job token
// without read rights (its own prefix keeps it apart from the job's
// GITHUB_TOKEN: only a cvw_ secret hashes to it), and revoked with the
// job's tokens when the job ends.

var (
	_ api.JobWorkers       = (*agentService)(nil)
	_ api.AssignmentSource = (*agentService)(nil)
)

// newJobWorkerToken mints job's worker credential for its current lease.
func (s *Server) newJobWorkerToken(ctx context.Context, job *store.Job) (string, error) {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	secret := api.JobWorkerTokenPrefix + hex.EncodeToString(b)
	sum := sha256.Sum256([]byte(secret))
	err := s.store.CreateJobToken(ctx, &store.JobToken{Hash: sum[:], OrgID: job.OrgID, RunID: job.RunID, JobID: job.ID,
		Lease: job.LeaseToken, Expires: time.Now().Add(jobTokenTTL)})
	if err != nil {
		return "", errs.Wrap("job worker credential", errs.KindOf(err), err)
	}
	return secret, nil
}

// JobWorkerByHash implements api.JobWorkers: the worker of the job whose
// credential hashes to hash, while that job runs under the lease it was
// made for.
func (g *agentService) JobWorkerByHash(ctx context.Context, hash []byte) (*store.Agent, error) {
	jt, err := g.s.store.JobTokenByHash(ctx, hash)
	if err != nil {
		return nil, err
	}
	if jt.ReadRun { // a GITHUB_TOKEN: never a worker credential
		return nil, errs.E("job worker", errs.NotFound, "not a job worker credential")
	}
	return &store.Agent{OrgID: jt.OrgID, Job: jt.JobID, Name: fmt.Sprintf("in-pod worker of job %d", jt.JobID)}, nil
}

// Assignment implements api.AssignmentSource: the job's assignment, made
// again for its in-pod worker (with a GITHUB_TOKEN of its own and the
// cache token an agent gets).
func (g *agentService) Assignment(ctx context.Context, a *store.Agent, jobID, token int64) (*api.AgentAssignment, error) {
	j, err := g.fence(ctx, a, jobID, token)
	if err != nil {
		return nil, err
	}
	run, err := g.s.store.GetRun(ctx, a.OrgID, j.RunID)
	if err != nil {
		return nil, err
	}
	asg, err := g.s.assignment(ctx, &store.Lease{Job: j, Run: run})
	if err != nil {
		return nil, err
	}
	asg.CacheToken = g.s.agentCacheToken(asg.OrgID, asg.Run)
	return asg, nil
}
