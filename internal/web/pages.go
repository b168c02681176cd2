package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// pathInt reads a positive path value; false: an error page is sent.
func (u *ui) pathInt(w http.ResponseWriter, r *http.Request, s *sess, name string) (int64, bool) {
	n, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || n <= 0 {
		u.errorPage(w, r, s, http.StatusNotFound, fmt.Sprintf("%s %q is not a number", name, r.PathValue(name)))
		return 0, false
	}
	return n, true
}

type repoRow struct {
	Repo api.Repo
	Last *api.Run
}

type homeView struct {
	Orgs  []api.Org
	Repos []repoRow
}

func (u *ui) home(w http.ResponseWriter, r *http.Request, s *sess) {
	var v homeView
	// One call, whatever the number of repositories: the API reads every
	// repository's latest run in one query.
	var repos api.RepoList
	if st, err := u.call(r, s, "GET", "/api/repos?latest_runs=true", nil, &repos); err != nil {
		u.errorPage(w, r, s, st, err.Error())
		return
	}
	last := make(map[int64]*api.Run, len(repos.LatestRuns))
	for i := range repos.LatestRuns {
		last[repos.LatestRuns[i].RepoID] = &repos.LatestRuns[i]
	}
	for _, repo := range repos.Repos {
		v.Repos = append(v.Repos, repoRow{Repo: repo, Last: last[repo.ID]})
	}
	if s.who.ServerAdmin {
		var orgs api.OrgList
		if _, err := u.call(r, s, "GET", "/api/orgs", nil, &orgs); err == nil {
			v.Orgs = orgs.Orgs
		}
	}
	u.render(w, r, http.StatusOK, "home", page{Title: "Repositories", S: s, Live: 5000, Data: v})
}

// runFilter is a runs list's filters, as its form and links carry them.
type runFilter struct {
	Status, Branch, Workflow, Event string
	Before                          string
}

type runsView struct {
	Repo     api.Repo
	Filter   runFilter
	Runs     []api.Run
	Next     int64
	Now      time.Time
	Statuses []string
	Events   []string
}

const runsPage = 25

func (u *ui) repoRuns(w http.ResponseWriter, r *http.Request, s *sess) {
	id, ok := u.pathInt(w, r, s, "id")
	if !ok {
		return
	}
	q := r.URL.Query()
	v := runsView{Now: u.Now(),
		Filter:   runFilter{Status: q.Get("status"), Branch: q.Get("branch"), Workflow: q.Get("workflow"), Event: q.Get("event"), Before: q.Get("before")},
		Statuses: []string{"queued", "waiting", "blocked", "running", "success", "failure", "cancelled", "skipped", "error"},
		Events:   []string{"push", "pull_request", "workflow_dispatch", "schedule", "release", "create", "delete", "tag"},
	}
	if st, err := u.call(r, s, "GET", "/api/repos/"+itoa(id), nil, &v.Repo); err != nil {
		u.errorPage(w, r, s, st, err.Error())
		return
	}
	aq := url.Values{"repo": {itoa(id)}, "limit": {strconv.Itoa(runsPage)}}
	for k, val := range map[string]string{"status": v.Filter.Status, "ref": v.Filter.Branch, "workflow": v.Filter.Workflow, "event": v.Filter.Event, "before": v.Filter.Before} {
		if val != "" {
			aq.Set(k, val)
		}
	}
	var list api.RunList
	if st, err := u.call(r, s, "GET", "/api/runs?"+aq.Encode(), nil, &list); err != nil {
		u.errorPage(w, r, s, st, err.Error())
		return
	}
	v.Runs, v.Next = list.Runs, list.NextBefore
	live := 5000
	if v.Filter.Before != "" {
		live = 0 // an older page does not change
	}
	u.render(w, r, http.StatusOK, "runs", page{Title: v.Repo.Name, S: s, Live: live, Data: v})
}

type runView struct {
	Repo      api.Repo
	Run       api.Run
	Jobs      []job
	Artifacts []api.Artifact
	Graph     graph
	Now       time.Time
	Terminal  bool
	HasFailed bool
	CanAct    bool
	// CanApproveRun: the caller may approve a fork's run (maintainer+).
	CanApproveRun bool
}

// MayReview reports whether the caller may approve or reject j, a job
// awaiting a review: the API says so on each such job, with the same
// check its approve route makes (reviewers, self review, token scope).
func (v *runView) MayReview(j job) bool {
	return j.AwaitingApproval() && j.Approval != nil && j.Approval.MayReview
}

// ReviewRefused is why the caller may not review j ("" when they may,
// or when j awaits no review).
func (v *runView) ReviewRefused(j job) string {
	if !j.AwaitingApproval() || j.Approval == nil || j.Approval.MayReview {
		return ""
	}
	return j.Approval.ReviewRefused
}

// runDetail reads a run, its jobs and its repository.
func (u *ui) runDetail(w http.ResponseWriter, r *http.Request, s *sess) (*runView, bool) {
	id, ok := u.pathInt(w, r, s, "id")
	if !ok {
		return nil, false
	}
	var d runDetail
	if st, err := u.call(r, s, "GET", "/api/runs/"+itoa(id), nil, &d); err != nil {
		u.errorPage(w, r, s, st, err.Error())
		return nil, false
	}
	v := &runView{Run: d.Run, Jobs: d.Jobs, Now: u.Now(), Terminal: terminal(d.Run.Status)}
	if _, err := u.call(r, s, "GET", "/api/repos/"+itoa(d.Run.RepoID), nil, &v.Repo); err != nil {
		v.Repo = api.Repo{ID: d.Run.RepoID, Name: "repository " + itoa(d.Run.RepoID)}
	}
	for _, j := range d.Jobs {
		if j.Status == "failure" || j.Status == "cancelled" || j.Status == "error" {
			v.HasFailed = true
		}
	}
	v.CanAct = s.rank() >= store.OrgDeveloper.Rank()
	v.CanApproveRun = d.Run.Status == store.StatusAwaitingApproval && s.rank() >= store.OrgMaintainer.Rank()
	return v, true
}

func (u *ui) runPage(w http.ResponseWriter, r *http.Request, s *sess) {
	v, ok := u.runDetail(w, r, s)
	if !ok {
		return
	}
	v.Graph = layoutGraph(v.Run.ID, v.Jobs, v.Now)
	var arts api.ArtifactList
	if _, err := u.call(r, s, "GET", "/api/runs/"+itoa(v.Run.ID)+"/artifacts", nil, &arts); err == nil {
		v.Artifacts = arts.Artifacts
	}
	live := 2000
	if v.Terminal {
		live = 0
	}
	u.render(w, r, http.StatusOK, "run", page{Title: fmt.Sprintf("%s #%d", v.Run.Name, v.Run.Number), S: s, Live: live, Data: v})
}

// runAction cancels, re-runs, approves or rejects a run.
func (u *ui) runAction(w http.ResponseWriter, r *http.Request, s *sess) {
	id, ok := u.pathInt(w, r, s, "id")
	if !ok {
		return
	}
	base := "/api/runs/" + itoa(id)
	var out api.Run
	var st int
	var err error
	switch r.PathValue("action") {
	case "approve", "reject":
		in := api.ApprovalInput{Comment: r.PostForm.Get("comment")}
		st, err = u.call(r, s, "POST", base+"/"+r.PathValue("action"), in, &out)
	case "cancel":
		st, err = u.call(r, s, "POST", base+"/cancel", nil, &out)
	case "rerun":
		st, err = u.call(r, s, "POST", base+"/rerun", api.RerunInput{}, &out)
	case "rerun-failed":
		st, err = u.call(r, s, "POST", base+"/rerun", api.RerunInput{Failed: true}, &out)
	default:
		u.errorPage(w, r, s, http.StatusNotFound, "no such action: "+r.PathValue("action"))
		return
	}
	if err != nil {
		u.errorPage(w, r, s, st, err.Error())
		return
	}
	http.Redirect(w, r, "/runs/"+itoa(out.ID), http.StatusSeeOther)
}

// jobAction approves or rejects a job waiting for a reviewer.
func (u *ui) jobAction(w http.ResponseWriter, r *http.Request, s *sess) {
	id, ok := u.pathInt(w, r, s, "id")
	if !ok {
		return
	}
	jobID, ok := u.pathInt(w, r, s, "job")
	if !ok {
		return
	}
	action := r.PathValue("action")
	if action != "approve" && action != "reject" {
		u.errorPage(w, r, s, http.StatusNotFound, "no such action: "+action)
		return
	}
	in := api.ApprovalInput{Comment: r.PostForm.Get("comment")}
	if st, err := u.call(r, s, "POST", fmt.Sprintf("/api/runs/%d/jobs/%d/%s", id, jobID, action), in, nil); err != nil {
		u.errorPage(w, r, s, st, err.Error())
		return
	}
	http.Redirect(w, r, "/runs/"+itoa(id), http.StatusSeeOther)
}

type jobView struct {
	runView
	Job *job
}

func (u *ui) jobPage(w http.ResponseWriter, r *http.Request, s *sess) {
	v, ok := u.runDetail(w, r, s)
	if !ok {
		return
	}
	jv := jobView{runView: *v}
	for i := range v.Jobs {
		if itoa(v.Jobs[i].ID) == r.PathValue("job") || v.Jobs[i].Key == r.PathValue("job") {
			jv.Job = &v.Jobs[i]
		}
	}
	if jv.Job == nil {
		u.errorPage(w, r, s, http.StatusNotFound, fmt.Sprintf("run %d has no job %q", v.Run.ID, r.PathValue("job")))
		return
	}
	live := 2000
	if terminal(jv.Job.Status) {
		live = 0
	}
	u.render(w, r, http.StatusOK, "job", page{Title: jv.Job.Title(), S: s, Live: live, Data: jv})
}

func (u *ui) logPath(w http.ResponseWriter, r *http.Request, s *sess) (string, bool) {
	id, ok := u.pathInt(w, r, s, "id")
	if !ok {
		return "", false
	}
	job, ok := u.pathInt(w, r, s, "job")
	if !ok {
		return "", false
	}
	return fmt.Sprintf("/api/runs/%d/jobs/%d/logs", id, job), true
}

// rawLog is the job's log as text; ?download=1 saves it as a file.
func (u *ui) rawLog(w http.ResponseWriter, r *http.Request, s *sess) {
	p, ok := u.logPath(w, r, s)
	if !ok {
		return
	}
	if r.URL.Query().Get("download") == "1" {
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="run-%s-job-%s.log"`, r.PathValue("id"), r.PathValue("job")))
	}
	u.proxy(w, r, s, p)
}

// logStream follows the job's log over SSE (the API's stream, resumed
// with Last-Event-ID).
func (u *ui) logStream(w http.ResponseWriter, r *http.Request, s *sess) {
	p, ok := u.logPath(w, r, s)
	if !ok {
		return
	}
	r.Header.Set("Accept", "text/event-stream")
	if after := r.URL.Query().Get("after"); after != "" {
		p += "?after=" + url.QueryEscape(after)
	}
	u.proxy(w, r, s, p)
}

// artifact downloads an artifact of a run (the API's tar.gz answer).
func (u *ui) artifact(w http.ResponseWriter, r *http.Request, s *sess) {
	id, ok := u.pathInt(w, r, s, "id")
	if !ok {
		return
	}
	u.proxy(w, r, s, "/api/runs/"+itoa(id)+"/artifacts/"+url.PathEscape(r.PathValue("name")))
}
