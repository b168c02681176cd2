package server

import (
	"context"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/deploy"
	"github.com/conveyor-ci/conveyor/internal/expr"
	"github.com/conveyor-ci/conveyor/internal/plan"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// approvals is the API's Approver: the store's decision, then the
// workers and the log followers are woken (an approved job may run now, a
// rejected one ended and its run moved on).
type approvals struct{ s *Server }

func (a approvals) DecideJob(ctx context.Context, orgID, jobID int64, d store.Decision) (*store.Job, error) {
	j, err := a.s.store.DecideJob(ctx, orgID, jobID, d)
	if err != nil {
		return nil, err
	}
	a.s.hub.Notify(jobID)
	a.s.wakeDispatch()
	a.s.wakeStatuses()
	return j, nil
}

// openGates queues the jobs whose environment's wait timer ended.
func (s *Server) openGates(ctx context.Context, now time.Time) {
	n, err := s.store.OpenGates(ctx, now)
	if err != nil && ctx.Err() == nil {
		s.log.Error("opening environments' wait timers", "err", err)
	}
	if n > 0 {
		s.log.Info("wait timers ended", "jobs", n)
		s.wakeDispatch()
	}
}

// planDeployments links each job with an environment: to it, as GitHub
// does when the run is planned: the name and url are evaluated with the
// run's contexts (needs and matrix read as empty: all matrix legs of a
// job share one environment), the environment is made on its first use
// (unprotected), a ref its branch policy refuses fails the job before it
// runs, and a protected one's rules are copied onto the job.
func (s *Server) planDeployments(ctx context.Context, repo *store.Repo, run *store.Run, actor string, pw *plan.Workflow,
	jobs []*store.Job, c *expr.Context) error {
	for i, pj := range pw.Jobs {
		if pj.Source == nil || strings.TrimSpace(pj.Source.Environment) == "" {
			continue
		}
		name, err := interpolate(pj.Source.Environment, c)
		if err != nil {
			jobs[i].Status, jobs[i].Error = store.StatusFailure, "environment: "+err.Error()
			continue
		}
		if name == "" {
			continue
		}
		// A url reading steps or needs is not known yet: left empty.
		url, _ := interpolate(pj.Source.EnvironmentURL, c)
		d, deny, err := s.deployment(ctx, repo, run.Ref, actor, name, url)
		if err != nil {
			return err
		}
		jobs[i].Deploy = d
		if deny != "" {
			jobs[i].Status, jobs[i].Error = store.StatusFailure, deny
		}
	}
	return nil
}

// deployment is a job's Deployment to environment name for ref: the
// environment's protection now, or deny when the ref may not deploy.
func (s *Server) deployment(ctx context.Context, repo *store.Repo, ref, actor, name, url string) (*store.Deployment, string, error) {
	if err := deploy.CheckName(name); err != nil {
		return nil, err.Error(), nil
	}
	env, err := s.store.EnsureEnvironment(ctx, repo.OrgID, repo.ID, name, "")
	if err != nil {
		return nil, "", err
	}
	d := &store.Deployment{Environment: env.Name, URL: url, Reviewers: env.Reviewers, WaitMinutes: env.WaitMinutes,
		PreventSelfReview: env.PreventSelfReview, Actor: actor}
	if err := deploy.Allows(env.Name, env.Protection, ref); err != nil {
		return d, err.Error(), nil
	}
	return d, "", nil
}

// interpolate evaluates a string with ${{ }} to a string.
func interpolate(s string, c *expr.Context) (string, error) {
	if !strings.Contains(s, "${{") {
		return strings.TrimSpace(s), nil
	}
	v, err := expr.Interpolate(s, c)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(expr.ToString(v)), nil
}

// redeploy gives a re-run's job nj the deployment of j: a job that runs
// again is checked against its environment's protection as it is now
// (and waits for a new review); a reused one keeps j's for display.
func (s *Server) redeploy(ctx context.Context, run *store.Run, j, nj *store.Job, again bool) error {
	if j.Deploy == nil {
		return nil
	}
	if !again {
		d := *j.Deploy
		nj.Deploy = &d
		return nil
	}
	repo, err := s.store.GetRepo(ctx, run.OrgID, run.RepoID)
	if err != nil {
		return err
	}
	d, deny, err := s.deployment(ctx, repo, run.Ref, j.Deploy.Actor, j.Deploy.Environment, j.Deploy.URL)
	if err != nil {
		return err
	}
	nj.Deploy = d
	if deny != "" {
		nj.Status, nj.Error = store.StatusFailure, deny
	}
	return nil
}
