package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

const (
	defaultRunLimit = 50
	maxRunLimit     = 500
)

func (a *server) whoami(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	c := callerOf(r)
	writeJSON(w, http.StatusOK, WhoAmI{OrgID: tok.OrgID, Token: tok.Name, Role: string(tok.Role), User: c.user,
		OrgRole: string(c.role), ServerAdmin: c.serverAdmin, Expires: optTime(tok.Expires), Version: a.Version})
}

func (a *server) addRepo(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	var in RepoInput
	if err := decode(r, &in, false); err != nil {
		a.fail(w, "", err)
		return
	}
	var repo *store.Repo
	err := a.audited(r, tok.OrgID, "repo.create", fixed("repo "+in.RepoName(), fmt.Sprintf("forge %s, url %s", in.Forge, in.URL)),
		func(ctx context.Context) (err error) {
			repo, err = a.Actions.AddRepo(ctx, tok.OrgID, in)
			return err
		})
	if err != nil {
		a.fail(w, "", err)
		return
	}
	out := toRepo(repo, a.BaseURL)
	writeJSON(w, http.StatusCreated, RepoCreated{Repo: out, HookURL: out.HookURL, Secret: repo.Secret})
}

// listRepos lists the organisation's repositories; ?name=owner/repo
// selects one by name (an empty list when there is none);
// ?latest_runs=true adds the latest run of each, so that an overview of
// every repository's state costs one call (and one query) whatever their
// number.
func (a *server) listRepos(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	out := RepoList{Repos: []Repo{}}
	latest, err := boolParam(r, "latest_runs")
	if err != nil {
		a.fail(w, "", err)
		return
	}
	if name := r.URL.Query().Get("name"); name != "" {
		repo, err := a.Store.RepoByName(r.Context(), tok.OrgID, name)
		if err != nil && !errs.Is(err, errs.NotFound) {
			a.fail(w, "", err)
			return
		}
		if repo != nil && err == nil {
			out.Repos = append(out.Repos, toRepo(repo, a.BaseURL))
		}
	} else {
		repos, err := a.Store.ListRepos(r.Context(), tok.OrgID)
		if err != nil {
			a.fail(w, "", err)
			return
		}
		for _, repo := range repos {
			out.Repos = append(out.Repos, toRepo(repo, a.BaseURL))
		}
	}
	if latest && len(out.Repos) > 0 {
		if out.LatestRuns, err = a.latestRuns(r.Context(), tok.OrgID, out.Repos); err != nil {
			a.fail(w, "", err)
			return
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// latestRuns is the latest run of each of repos that has one.
func (a *server) latestRuns(ctx context.Context, orgID int64, repos []Repo) ([]Run, error) {
	runs, err := a.Store.LatestRuns(ctx, orgID)
	if err != nil {
		return nil, err
	}
	listed := make(map[int64]bool, len(repos))
	for _, repo := range repos {
		listed[repo.ID] = true
	}
	out := []Run{}
	for _, run := range runs {
		if listed[run.RepoID] {
			out = append(out, toRun(run))
		}
	}
	return out, nil
}

// boolParam reads an optional boolean query parameter (absent: false).
func boolParam(r *http.Request, name string) (bool, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, errs.E("", errs.Invalid, "%s=%q is not true or false", name, s)
	}
	return b, nil
}

func (a *server) getRepo(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	id, err := pathID(r, "id")
	if err != nil {
		a.fail(w, "", err)
		return
	}
	repo, err := a.Store.GetRepo(r.Context(), tok.OrgID, id)
	if err != nil {
		a.fail(w, fmt.Sprintf("repo %d", id), err)
		return
	}
	writeJSON(w, http.StatusOK, toRepo(repo, a.BaseURL))
}

// updateRepo changes a repository's settings.
func (a *server) updateRepo(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	id, err := pathID(r, "id")
	if err != nil {
		a.fail(w, "", err)
		return
	}
	// Another organisation's repository is not found, whatever the body.
	repo, err := a.Store.GetRepo(r.Context(), tok.OrgID, id)
	if err != nil {
		a.fail(w, fmt.Sprintf("repo %d", id), err)
		return
	}
	var in RepoUpdate
	if err := decode(r, &in, false); err != nil {
		a.fail(w, "", err)
		return
	}
	if err := checkRepoUpdate(r, in); err != nil {
		a.fail(w, "", err)
		return
	}
	update := func(ctx context.Context) (err error) {
		repo, err = a.Actions.UpdateRepo(ctx, tok.OrgID, id, in)
		return err
	}
	if detail := repoUpdateText(in); detail != "" { // else nothing changes
		err = a.audited(r, tok.OrgID, "repo.settings", fixed("repo "+repo.Name, detail), update)
	} else {
		err = update(r.Context())
	}
	if err != nil {
		a.fail(w, fmt.Sprintf("repo %d", id), err)
		return
	}
	writeJSON(w, http.StatusOK, toRepo(repo, a.BaseURL))
}

// repoUpdateText is the settings in changes, for the audit log ("": none).
func repoUpdateText(in RepoUpdate) string {
	var parts []string
	if in.RunTestDeliveries != nil {
		parts = append(parts, fmt.Sprintf("run_test_deliveries=%v", *in.RunTestDeliveries))
	}
	if in.EnvMap != nil {
		b, _ := json.Marshal(in.EnvMap)
		parts = append(parts, "env_map="+string(b))
	}
	if in.SkipForkApproval != nil {
		parts = append(parts, fmt.Sprintf("skip_fork_approval=%v", *in.SkipForkApproval))
	}
	if in.NetworkPolicy != nil {
		parts = append(parts, fmt.Sprintf("network_policy=%q", *in.NetworkPolicy))
	}
	if in.Runtime != nil {
		parts = append(parts, fmt.Sprintf("runtime=%q", *in.Runtime))
	}
	if in.Secret != nil {
		parts = append(parts, "webhook secret replaced")
	}
	return strings.Join(parts, ", ")
}

func (a *server) dispatch(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	id, err := pathID(r, "id")
	if err != nil {
		a.fail(w, "", err)
		return
	}
	what := fmt.Sprintf("repo %d", id)
	// Checked here too so that org scoping never depends on Actions.
	if _, err := a.Store.GetRepo(r.Context(), tok.OrgID, id); err != nil {
		a.fail(w, what, err)
		return
	}
	var in DispatchInput
	if err := decode(r, &in, false); err != nil {
		a.fail(w, "", err)
		return
	}
	if in.Workflow == "" {
		a.fail(w, "", errs.E("", errs.Invalid, "workflow is required"))
		return
	}
	if c := callerOf(r); c != nil {
		in.Actor = c.user
	}
	evID, err := a.Actions.Dispatch(r.Context(), tok.OrgID, id, in)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	writeJSON(w, http.StatusAccepted, Dispatched{EventID: evID})
}

func (a *server) getEvent(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	id, err := pathID(r, "id")
	if err != nil {
		a.fail(w, "", err)
		return
	}
	ev, err := a.Store.GetEvent(r.Context(), tok.OrgID, id)
	if err != nil {
		a.fail(w, fmt.Sprintf("event %d", id), err)
		return
	}
	writeJSON(w, http.StatusOK, toEvent(ev))
}

var runStatuses = map[string]bool{
	store.StatusBlocked: true, store.StatusWaiting: true, store.StatusQueued: true,
	store.StatusRunning: true, store.StatusSuccess: true, store.StatusFailure: true,
	store.StatusCancelled: true, store.StatusSkipped: true, store.StatusError: true,
}

func (a *server) listRuns(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	q := r.URL.Query()
	f := store.RunFilter{Limit: defaultRunLimit, Status: q.Get("status"), Workflow: q.Get("workflow"), Event: q.Get("event")}
	if ref := q.Get("ref"); ref != "" {
		f.Refs = refCandidates(ref)
	}
	var err error
	if s := q.Get("repo"); s != "" {
		if f.RepoID, err = parseID("repo", s); err != nil {
			a.fail(w, "", err)
			return
		}
	}
	if s := q.Get("before"); s != "" {
		if f.Before, err = parseID("before", s); err != nil {
			a.fail(w, "", err)
			return
		}
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxRunLimit {
			a.fail(w, "", errs.E("", errs.Invalid, "limit %q is not between 1 and %d", s, maxRunLimit))
			return
		}
		f.Limit = n
	}
	if f.Status != "" && !runStatuses[f.Status] {
		a.fail(w, "", errs.E("", errs.Invalid, "status %q is not a run status", f.Status))
		return
	}
	runs, err := a.Store.ListRuns(r.Context(), tok.OrgID, f)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	out := RunList{Runs: []Run{}}
	for _, run := range runs {
		out.Runs = append(out.Runs, toRun(run))
	}
	if len(runs) == f.Limit && len(runs) > 0 {
		out.NextBefore = runs[len(runs)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

// runFromPath reads the {id} run of the caller's organisation, answering
// the error itself when there is none.
func (a *server) runFromPath(w http.ResponseWriter, r *http.Request, tok *store.Token) (*store.Run, bool) {
	id, err := pathID(r, "id")
	if err != nil {
		a.fail(w, "", err)
		return nil, false
	}
	run, err := a.Store.GetRun(r.Context(), tok.OrgID, id)
	if err != nil {
		a.fail(w, fmt.Sprintf("run %d", id), err)
		return nil, false
	}
	return run, true
}

func (a *server) getRun(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	run, ok := a.runFromPath(w, r, tok)
	if !ok {
		return
	}
	jobs, err := a.Store.Jobs(r.Context(), tok.OrgID, run.ID)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	out := RunDetail{Run: toRun(run), Jobs: []Job{}}
	for _, j := range jobs {
		// Always asked: an attempt interrupted on the last allowed lease
		// leaves Attempt unchanged and the job in error.
		att, err := a.Store.Attempts(r.Context(), tok.OrgID, j.ID)
		if err != nil {
			a.fail(w, "", err)
			return
		}
		out.Jobs = append(out.Jobs, toJob(j, att))
	}
	a.waitingReasons(r.Context(), tok.OrgID, jobs, out.Jobs)
	reviewRights(callerOf(r), jobs, out.Jobs)
	writeJSON(w, http.StatusOK, out)
}

func (a *server) cancel(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	run, ok := a.runFromPath(w, r, tok)
	if !ok {
		return
	}
	err := a.audited(r, tok.OrgID, "run.cancel", fixed(fmt.Sprintf("run %d (%s)", run.ID, run.Name), ""), func(ctx context.Context) (err error) {
		run, err = a.Actions.Cancel(ctx, tok.OrgID, run.ID)
		return err
	})
	if err != nil {
		a.fail(w, "", err)
		return
	}
	writeJSON(w, http.StatusOK, toRun(run))
}

func (a *server) rerun(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	run, ok := a.runFromPath(w, r, tok)
	if !ok {
		return
	}
	var in RerunInput
	if err := decode(r, &in, true); err != nil {
		a.fail(w, "", err)
		return
	}
	newRun, err := a.Actions.Rerun(r.Context(), tok.OrgID, run.ID, in.Failed)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	writeJSON(w, http.StatusCreated, toRun(newRun))
}

// refCandidates are the refs a ref filter means: a full ref as is, a
// short name as the branch or the tag of that name.
func refCandidates(ref string) []string {
	if strings.HasPrefix(ref, "refs/") {
		return []string{ref}
	}
	return []string{"refs/heads/" + ref, "refs/tags/" + ref}
}

// rotateHookSecret gives a repository a new random webhook secret and
// shows it, once.
func (a *server) rotateHookSecret(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	id, err := pathID(r, "id")
	if err != nil {
		a.fail(w, "", err)
		return
	}
	repo, err := a.Store.GetRepo(r.Context(), tok.OrgID, id)
	if err != nil {
		a.fail(w, fmt.Sprintf("repo %d", id), err)
		return
	}
	b := make([]byte, 20)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	secret := hex.EncodeToString(b)
	err = a.audited(r, tok.OrgID, "repo.hook_secret", fixed("repo "+repo.Name, "webhook secret replaced"), func(ctx context.Context) (err error) {
		repo, err = a.Actions.UpdateRepo(ctx, tok.OrgID, id, RepoUpdate{Secret: &secret})
		return err
	})
	if err != nil {
		a.fail(w, fmt.Sprintf("repo %d", id), err)
		return
	}
	out := toRepo(repo, a.BaseURL)
	writeJSON(w, http.StatusOK, RepoCreated{Repo: out, HookURL: out.HookURL, Secret: secret})
}
