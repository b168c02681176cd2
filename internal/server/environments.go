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

// ApproveRun starts a fork's run once a maintainer approved it.
func (a approvals) ApproveRun(ctx context.Context, orgID, runID int64) (*store.Run, error) {
	r, err := a.s.store.ApproveRun(ctx, orgID, runID)
	if err != nil {
		return nil, err
	}
	a.s.wakeDispatch()
	a.s.wakeStatuses()
	return r, nil
}

// CancelRun ends a rejected fork's run.
func (a approvals) CancelRun(ctx context.Context, orgID, runID int64, reason string) (*store.Run, error) {
	r, err := a.s.store.CancelRun(ctx, orgID, runID, reason)
	if err != nil {
		return nil, err
	}
	a.s.cancels.Notify(runID)
	a.s.wakeStatuses()
	return r, nil
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
	jobs []*store.Job, jc *expr.Context) error {
	var c *expr.Context
	mapped, perBranch := deploy.Map(repo.EnvMap, run.Ref)
	for i, pj := range pw.Jobs {
		if pj.Source == nil || strings.TrimSpace(pj.Source.Environment) == "" {
			continue
		}
		if c == nil {
			var err error
			if c, err = s.envContext(ctx, repo, run, jc, mapped); err != nil {
				return err
			}
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
		branch := ""
		if perBranch && name == mapped {
			branch = strings.TrimPrefix(run.Ref, "refs/heads/")
		}
		d, deny, err := s.deployment(ctx, repo, run.Ref, actor, name, url, branch)
		if err != nil {
			return err
		}
		if skipsAnyway(pj.Source.If, c) {
			// It will skip itself: GitHub asks no review and checks no
			// branch rule for a job that does not run.
			d.Reviewers, d.WaitMinutes, deny = nil, 0, ""
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
func (s *Server) deployment(ctx context.Context, repo *store.Repo, ref, actor, name, url, branch string) (*store.Deployment, string, error) {
	if err := deploy.CheckName(name); err != nil {
		return nil, err.Error(), nil
	}
	env, err := s.store.EnsureEnvironment(ctx, repo.OrgID, repo.ID, name, branch)
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
	d, deny, err := s.deployment(ctx, repo, run.Ref, j.Deploy.Actor, j.Deploy.Environment, j.Deploy.URL, "")
	if err != nil {
		return err
	}
	nj.Deploy = d
	if deny != "" {
		nj.Status, nj.Error = store.StatusFailure, deny
	}
	return nil
}

// MappedVar is the variable holding the environment the repository's
// branch mapping gives a run's branch ("" without one): a job deploys by
// branch with environment: ${{ vars.CONVEYOR_ENVIRONMENT }}.
const MappedVar = "CONVEYOR_ENVIRONMENT"

// envContext is what a job's environment: reads: the run's contexts, with
// the repository's variables and MappedVar in vars.
func (s *Server) envContext(ctx context.Context, repo *store.Repo, run *store.Run, jc *expr.Context, mapped string) (*expr.Context, error) {
	_, vars, err := s.store.JobValues(ctx, repo.OrgID, repo.ID, "")
	if err != nil {
		return nil, err
	}
	vs := map[string]any{}
	for k, v := range vars {
		vs[k] = v
	}
	if mapped != "" {
		vs[MappedVar] = mapped
	}
	c := &expr.Context{Values: map[string]any{}}
	for k, v := range jc.Values {
		c.Values[k] = v
	}
	c.Values["vars"] = vs
	return c, nil
}

// mappedVar adds MappedVar to a leased job's variables.
func (s *Server) mappedVar(ctx context.Context, run *store.Run, vars map[string]string) error {
	repo, err := s.store.GetRepo(ctx, run.OrgID, run.RepoID)
	if err != nil {
		return err
	}
	if mapped, _ := deploy.Map(repo.EnvMap, run.Ref); mapped != "" {
		vars[MappedVar] = mapped
	}
	return nil
}

// dropBranchEnvironments deletes the per-branch environments of a deleted
// branch (and their secrets and variables).
func (s *Server) dropBranchEnvironments(ctx context.Context, orgID, repoID int64, ref string) error {
	branch, ok := strings.CutPrefix(ref, "refs/heads/")
	if !ok || branch == "" {
		return nil
	}
	names, err := s.store.DeleteBranchEnvironments(ctx, orgID, repoID, branch)
	if len(names) > 0 {
		s.log.Info("branch deleted: its environments too", "repo", repoID, "branch", branch, "environments", names)
	}
	return err
}

// planContexts are the contexts a job's if: may read when the run is
// planned; a condition reading another one is only known once it runs.
var planContexts = []string{"github", "inputs", "vars"}

// skipsAnyway reports whether a job's if: is false whatever its needs
// do: it uses no status function and reads only the run's contexts.
func skipsAnyway(cond string, c *expr.Context) bool {
	src := strings.TrimSpace(cond)
	if s, ok := strings.CutPrefix(src, "${{"); ok && strings.HasSuffix(s, "}}") && strings.Count(src, "${{") == 1 {
		src = strings.TrimSpace(strings.TrimSuffix(s, "}}"))
	}
	if src == "" || strings.Contains(src, "${{") {
		return false
	}
	e, err := expr.Parse(src, planContexts)
	if err != nil || e.UsesStatusFunc() {
		return false // an unknown context fails to parse: decided when the job runs
	}
	v, err := e.Eval(c)
	return err == nil && !expr.Truthy(v)
}
