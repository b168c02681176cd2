package api

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/deploy"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// EnvironmentStore keeps the repositories' environments (see
// store.Environments).
type EnvironmentStore interface {
	PutEnvironment(ctx context.Context, e *store.Environment) error
	GetEnvironment(ctx context.Context, orgID, repoID int64, name string) (*store.Environment, error)
	ListEnvironments(ctx context.Context, orgID, repoID int64) ([]*store.Environment, error)
	DeleteEnvironment(ctx context.Context, orgID, repoID int64, name string) error
}

// Approver decides on jobs awaiting approval; the server's wakes its
// workers when one may run.
type Approver interface {
	DecideJob(ctx context.Context, orgID, jobID int64, d store.Decision) (*store.Job, error)
	// ApproveRun starts a run awaiting approval (a fork's pull request);
	// CancelRun ends one that is rejected.
	ApproveRun(ctx context.Context, orgID, runID int64) (*store.Run, error)
	CancelRun(ctx context.Context, orgID, runID int64, reason string) (*store.Run, error)
}

// reviewer may call the approval routes; whether the caller reviews the
// job's environment is the handler's check (deploy.MayReview).
var reviewer = access{kind: userToken, role: store.OrgViewer, scope: store.RoleWrite}

// forkReviewer may approve the runs of forks' pull requests.
var forkReviewer = access{kind: userToken, role: store.OrgMaintainer, scope: store.RoleWrite}

func environmentRoutes() []route {
	return []route{
		{"GET", "/api/repos/{id}/environments", viewer, 200, nil, EnvironmentList{}, (*server).listEnvironments},
		{"GET", "/api/repos/{id}/environments/{name}", viewer, 200, nil, Environment{}, (*server).getEnvironment},
		{"PUT", "/api/repos/{id}/environments/{name}", settings, 200, EnvironmentInput{}, Environment{}, (*server).putEnvironment},
		{"DELETE", "/api/repos/{id}/environments/{name}", settings, 204, nil, nil, (*server).deleteEnvironment},
		{"POST", "/api/runs/{id}/jobs/{job}/approve", reviewer, 200, ApprovalInput{}, Job{}, (*server).approveJob},
		{"POST", "/api/runs/{id}/jobs/{job}/reject", reviewer, 200, ApprovalInput{}, Job{}, (*server).rejectJob},
		{"POST", "/api/runs/{id}/approve", forkReviewer, 200, ApprovalInput{}, Run{}, (*server).approveRun},
		{"POST", "/api/runs/{id}/reject", forkReviewer, 200, ApprovalInput{}, Run{}, (*server).rejectRun},
	}
}

// Reviewer is a user or an organisation role that may approve
// deployments to an environment.
type Reviewer struct {
	User string `json:"user,omitempty"`
	Role string `json:"role,omitempty"`
}

// EnvironmentInput is an environment's protection, replaced whole by PUT.
type EnvironmentInput struct {
	Reviewers []Reviewer `json:"reviewers,omitempty"`
	// WaitMinutes delays each job once ready (and approved): 0 to 43200.
	WaitMinutes int `json:"wait_minutes,omitempty"`
	// Branches and Tags are the patterns of refs that may deploy (both
	// empty: any ref).
	Branches          []string `json:"branches,omitempty"`
	Tags              []string `json:"tags,omitempty"`
	PreventSelfReview bool     `json:"prevent_self_review,omitempty"`
}

// Environment is a repository's environment.
type Environment struct {
	Name              string     `json:"name"`
	Reviewers         []Reviewer `json:"reviewers"`
	WaitMinutes       int        `json:"wait_minutes"`
	Branches          []string   `json:"branches"`
	Tags              []string   `json:"tags"`
	PreventSelfReview bool       `json:"prevent_self_review"`
	// Protected: a job deploying to it waits for a review or a timer.
	Protected bool `json:"protected"`
	// Branch is set on a per-branch environment of the branch mapping.
	Branch  string    `json:"branch,omitempty"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// EnvironmentList lists a repository's environments.
type EnvironmentList struct {
	Items []Environment `json:"items"`
}

// ApprovalInput is the body of the approve and reject routes.
type ApprovalInput struct {
	Comment string `json:"comment,omitempty"`
}

// JobEnvironment is a job's environment: as evaluated.
type JobEnvironment struct {
	Name string `json:"name"`
	URL  string `json:"url,omitempty"`
}

// Approval is what a job deploying to a protected environment waits for.
type Approval struct {
	Reviewers []Reviewer `json:"reviewers"`
	// WaitUntil is when its wait timer ends (once the job was ready).
	WaitUntil *time.Time `json:"wait_until,omitempty"`
	Decisions []Decision `json:"decisions"`
	// MayReview: the caller may approve or reject the job now (it awaits
	// a review); ReviewRefused is why not, as the approve route would
	// answer (not a reviewer, self review not allowed, token scope).
	MayReview     bool   `json:"may_review"`
	ReviewRefused string `json:"review_refused,omitempty"`
}

// Decision is a reviewer's answer.
type Decision struct {
	User     string    `json:"user"`
	Decision string    `json:"decision"` // approved or rejected
	Comment  string    `json:"comment,omitempty"`
	At       time.Time `json:"at"`
}

func toReviewers(rs []store.Reviewer) []Reviewer {
	out := []Reviewer{}
	for _, r := range rs {
		out = append(out, Reviewer{User: r.User, Role: string(r.Role)})
	}
	return out
}

func toEnvironment(e *store.Environment) Environment {
	return Environment{Name: e.Name, Reviewers: toReviewers(e.Reviewers), WaitMinutes: e.WaitMinutes,
		Branches: nonNilList(e.Branches), Tags: nonNilList(e.Tags), PreventSelfReview: e.PreventSelfReview,
		Protected: e.Gated(), Branch: e.Branch, Created: e.Created.UTC(), Updated: e.Updated.UTC()}
}

func nonNilList(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// deployOf fills a job's environment and approval answers.
func deployOf(out *Job, d *store.Deployment) {
	if d == nil {
		return
	}
	out.Environment = &JobEnvironment{Name: d.Environment, URL: d.URL}
	if !d.Gated() {
		return
	}
	ap := &Approval{Reviewers: toReviewers(d.Reviewers), WaitUntil: optTime(d.WaitUntil), Decisions: []Decision{}}
	for _, x := range d.Decisions {
		ap.Decisions = append(ap.Decisions, Decision{User: x.User, Decision: x.Decision, Comment: x.Comment, At: x.At.UTC()})
	}
	out.Approval = ap
}

// envRepo is the repository of the path, with the environment store.
func (a *server) envRepo(w http.ResponseWriter, r *http.Request, tok *store.Token) (*store.Repo, bool) {
	if a.Environments == nil {
		writeErrorMsg(w, errs.Unavailable, "this server does not keep environments")
		return nil, false
	}
	id, err := pathID(r, "id")
	if err != nil {
		a.fail(w, "", err)
		return nil, false
	}
	repo, err := a.Store.GetRepo(r.Context(), tok.OrgID, id)
	if err != nil {
		a.fail(w, fmt.Sprintf("repo %d", id), err)
		return nil, false
	}
	return repo, true
}

func (a *server) listEnvironments(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	repo, ok := a.envRepo(w, r, tok)
	if !ok {
		return
	}
	envs, err := a.Environments.ListEnvironments(r.Context(), tok.OrgID, repo.ID)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	out := EnvironmentList{Items: []Environment{}}
	for _, e := range envs {
		out.Items = append(out.Items, toEnvironment(e))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *server) getEnvironment(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	repo, ok := a.envRepo(w, r, tok)
	if !ok {
		return
	}
	name := r.PathValue("name")
	e, err := a.Environments.GetEnvironment(r.Context(), tok.OrgID, repo.ID, name)
	if err != nil {
		a.fail(w, "environment "+name, err)
		return
	}
	writeJSON(w, http.StatusOK, toEnvironment(e))
}

// mayProtect refuses a change to or from a protected environment to a
// caller below admin: protection is what stands between a maintainer's
// branch and production (docs/security.md).
func mayProtect(r *http.Request, name string, before, after store.Protection) error {
	c := callerOf(r)
	if c.effectiveRole().Rank() >= store.OrgAdmin.Rank() || isOpen(before) && isOpen(after) {
		return nil
	}
	return errs.E("", errs.Forbidden, "user %s: changing protected environment %s needs role admin", c.user, name)
}

func isOpen(p store.Protection) bool { return !p.Gated() && len(p.Branches) == 0 && len(p.Tags) == 0 }

func (a *server) putEnvironment(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	repo, ok := a.envRepo(w, r, tok)
	if !ok {
		return
	}
	name := r.PathValue("name")
	var in EnvironmentInput
	if err := decode(r, &in, true); err != nil {
		a.fail(w, "", err)
		return
	}
	prot := store.Protection{WaitMinutes: in.WaitMinutes, Branches: in.Branches, Tags: in.Tags, PreventSelfReview: in.PreventSelfReview}
	for _, rv := range in.Reviewers {
		prot.Reviewers = append(prot.Reviewers, store.Reviewer{User: rv.User, Role: store.OrgRole(rv.Role)})
	}
	err := deploy.CheckName(name)
	if err == nil {
		err = deploy.Check(prot)
	}
	if err == nil {
		err = a.checkReviewers(r.Context(), tok.OrgID, prot.Reviewers)
	}
	var before store.Protection
	if err == nil {
		old, gerr := a.Environments.GetEnvironment(r.Context(), tok.OrgID, repo.ID, name)
		switch {
		case gerr == nil:
			before = old.Protection
		case !errs.Is(gerr, errs.NotFound):
			err = gerr
		}
	}
	if err == nil {
		err = mayProtect(r, name, before, prot)
	}
	if err != nil {
		a.fail(w, "", err)
		return
	}
	e := &store.Environment{OrgID: tok.OrgID, RepoID: repo.ID, Name: name, Protection: prot}
	err = a.audited(r, tok.OrgID, "environment.set", func() (string, string) {
		return fmt.Sprintf("environment %s (repo %s)", e.Name, repo.Name), deploy.Describe(prot)
	}, func(ctx context.Context) error { return a.Environments.PutEnvironment(ctx, e) })
	if err != nil {
		a.fail(w, fmt.Sprintf("repo %d", repo.ID), err)
		return
	}
	writeJSON(w, http.StatusOK, toEnvironment(e))
}

// checkReviewers refuses a user who is not a member of the organisation.
func (a *server) checkReviewers(ctx context.Context, orgID int64, rs []store.Reviewer) error {
	if a.Accounts == nil {
		return nil
	}
	for _, rv := range rs {
		if rv.User == "" {
			continue
		}
		u, err := a.Accounts.UserByName(ctx, rv.User)
		if err == nil {
			_, err = a.Accounts.Member(ctx, orgID, u.ID)
		}
		if errs.Is(err, errs.NotFound) {
			return errs.E("", errs.Invalid, "reviewer %s is not a member of this organisation", rv.User)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (a *server) deleteEnvironment(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	repo, ok := a.envRepo(w, r, tok)
	if !ok {
		return
	}
	name := r.PathValue("name")
	old, err := a.Environments.GetEnvironment(r.Context(), tok.OrgID, repo.ID, name)
	if err == nil {
		err = mayProtect(r, old.Name, old.Protection, store.Protection{})
	}
	if err == nil {
		err = a.audited(r, tok.OrgID, "environment.delete", fixed(fmt.Sprintf("environment %s (repo %s)", old.Name, repo.Name), ""),
			func(ctx context.Context) error {
				return a.Environments.DeleteEnvironment(ctx, tok.OrgID, repo.ID, name)
			})
	}
	if err != nil {
		a.fail(w, "environment "+name, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *server) approveJob(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	a.decide(w, r, tok, store.Approved)
}

func (a *server) rejectJob(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	a.decide(w, r, tok, store.Rejected)
}

// MaxCommentSize caps a review comment.
const MaxCommentSize = 4096

// reviewInput is what a decision on a job or a run starts from: the run
// of the path and the caller's comment, within MaxCommentSize. It has
// answered the request when ok is false.
func (a *server) reviewInput(w http.ResponseWriter, r *http.Request, tok *store.Token) (run *store.Run, in ApprovalInput, ok bool) {
	if a.Approvals == nil {
		writeErrorMsg(w, errs.Unavailable, "this server does not take approvals")
		return nil, in, false
	}
	if run, ok = a.runFromPath(w, r, tok); !ok {
		return nil, in, false
	}
	if err := decode(r, &in, true); err != nil {
		a.fail(w, "", err)
		return nil, in, false
	}
	if len(in.Comment) > MaxCommentSize {
		a.fail(w, "", errs.E("", errs.Invalid, "comment: at most %d bytes", MaxCommentSize))
		return nil, in, false
	}
	return run, in, true
}

// decide records the caller's decision on a job awaiting approval: the
// job must await a review and the caller be one of its reviewers (or an
// organisation admin), and not its run's author when the environment
// forbids self review.
func (a *server) decide(w http.ResponseWriter, r *http.Request, tok *store.Token, decision string) {
	run, in, ok := a.reviewInput(w, r, tok)
	if !ok {
		return
	}
	job, err := a.jobOf(r, tok.OrgID, run)
	if err != nil {
		a.fail(w, fmt.Sprintf("job %s of run %d", r.PathValue("job"), run.ID), err)
		return
	}
	if !awaitingReview(job) {
		a.fail(w, "", errs.E("", errs.Conflict, "job %s of run %d is %s, not awaiting a review", job.Key, run.ID, job.Status))
		return
	}
	c := callerOf(r)
	if err := mayDecide(c, job); err != nil {
		a.fail(w, "", err)
		return
	}
	comment := strings.TrimSpace(in.Comment)
	action := map[string]string{store.Approved: "approval.approve", store.Rejected: "approval.reject"}[decision]
	err = a.audited(r, tok.OrgID, action, fixed(fmt.Sprintf("job %s of run %d (environment %s)", job.Key, run.ID, job.Deploy.Environment), comment),
		func(ctx context.Context) error {
			var derr error
			job, derr = a.Approvals.DecideJob(ctx, tok.OrgID, job.ID, store.Decision{User: c.user, Decision: decision, Comment: comment})
			return derr
		})
	if err != nil {
		a.fail(w, "", err)
		return
	}
	att, err := a.Store.Attempts(r.Context(), tok.OrgID, job.ID)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	out := []Job{toJob(job, att)}
	reviewRights(c, []*store.Job{job}, out)
	writeJSON(w, http.StatusOK, out[0])
}

// awaitingReview: the job waits for a reviewer's decision.
func awaitingReview(j *store.Job) bool {
	return j.Status == store.StatusAwaitingApproval && j.Deploy != nil && len(j.Deploy.Reviewers) > 0
}

// mayDecide is why c may not approve or reject j (nil: c may): the
// approval routes' access, then deploy.MayReview.
func mayDecide(c *caller, j *store.Job) error {
	if !c.may(reviewer) {
		return errs.E("approve", errs.Forbidden, "token %q has scope %s; approving a job needs %s", c.tok.Name, c.tok.Role, reviewer)
	}
	return deploy.MayReview(j.Deploy, deploy.Reviewer{User: c.user, Role: c.effectiveRole()})
}

// reviewRights tells the caller, on each job of out awaiting a review,
// whether they may decide on it, with the reason the approval routes
// would give: so that a page offers the buttons exactly when they work.
func reviewRights(c *caller, jobs []*store.Job, out []Job) {
	if c == nil { // a job's token: it reviews nothing
		return
	}
	for i, j := range jobs {
		if out[i].Approval == nil || !awaitingReview(j) {
			continue
		}
		if err := mayDecide(c, j); err != nil {
			out[i].Approval.ReviewRefused = publicMessage(err)
		} else {
			out[i].Approval.MayReview = true
		}
	}
}

// awaitingReason says what a job awaiting approval waits for.
func awaitingReason(d *store.Deployment) string {
	for _, x := range d.Decisions {
		if x.Decision == store.Approved {
			return fmt.Sprintf("approved by %s; waiting for the wait timer of environment %s", x.User, d.Environment)
		}
	}
	if len(d.Reviewers) == 0 {
		return "waiting for the wait timer of environment " + d.Environment
	}
	return "waiting for a review to deploy to " + d.Environment
}

// checkRepoUpdate validates the branch mapping, and refuses a change of
// the fork approval to a caller below admin: it keeps a fork's code from
// running unseen.
func checkRepoUpdate(r *http.Request, in RepoUpdate) error {
	if in.EnvMap != nil {
		if err := deploy.CheckMapping(*in.EnvMap); err != nil {
			return err
		}
	}
	if in.NetworkPolicy != nil {
		if _, err := backend.ParseNetworkPolicy(*in.NetworkPolicy); err != nil {
			return errs.E("", errs.Invalid, "network_policy: %v", err)
		}
	}
	if in.Runtime != nil && *in.Runtime != "" && !runtimeName.MatchString(*in.Runtime) {
		return errs.E("", errs.Invalid, "runtime %q: a runtime's name, e.g. runsc or kata-runtime", *in.Runtime)
	}
	c := callerOf(r)
	if c == nil || c.effectiveRole().Rank() >= store.OrgAdmin.Rank() {
		return nil
	}
	switch {
	case in.SkipForkApproval != nil:
		return errs.E("", errs.Forbidden, "user %s: changing skip_fork_approval needs role admin", c.user)
	case in.NetworkPolicy != nil || in.Runtime != nil:
		return errs.E("", errs.Forbidden, "user %s: changing the jobs' sandbox (network_policy, runtime) needs role admin", c.user)
	}
	return nil
}

// runtimeName is what an OCI runtime's name may be.
var runtimeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (a *server) approveRun(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	a.decideRun(w, r, tok, true)
}

func (a *server) rejectRun(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	a.decideRun(w, r, tok, false)
}

// decideRun approves a run awaiting a maintainer's approval (a fork's
// pull request), or rejects it: it is cancelled with the reason.
func (a *server) decideRun(w http.ResponseWriter, r *http.Request, tok *store.Token, approve bool) {
	run, in, ok := a.reviewInput(w, r, tok)
	if !ok {
		return
	}
	if run.Status != store.StatusAwaitingApproval {
		a.fail(w, "", errs.E("", errs.Conflict, "run %d is %s, not awaiting approval (approve a job: POST /api/runs/%d/jobs/{job}/approve)",
			run.ID, run.Status, run.ID))
		return
	}
	c := callerOf(r)
	comment := strings.TrimSpace(in.Comment)
	action := "approval.run.approve"
	if !approve {
		action = "approval.run.reject"
	}
	err := a.audited(r, tok.OrgID, action, fixed(fmt.Sprintf("run %d (%s)", run.ID, run.Name), comment), func(ctx context.Context) error {
		var derr error
		if approve {
			run, derr = a.Approvals.ApproveRun(ctx, tok.OrgID, run.ID)
			return derr
		}
		reason := "rejected by " + c.user
		if comment != "" {
			reason += ": " + comment
		}
		run, derr = a.Approvals.CancelRun(ctx, tok.OrgID, run.ID, reason)
		return derr
	})
	if err != nil {
		a.fail(w, "", err)
		return
	}
	writeJSON(w, http.StatusOK, toRun(run))
}
