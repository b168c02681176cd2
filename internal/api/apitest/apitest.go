// Package apitest is an in-memory fake of everything the API reads and
// does (store readers, Actions, LogNotifier), for tests of the API, its
// client and the CLI. It is safe for concurrent use.
package apitest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/logs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// Fake is the in-memory state. Ids come from one counter, so ids of
// different kinds never collide (which makes mix-ups visible in tests).
type Fake struct {
	mu       sync.Mutex
	hub      *logs.Hub
	next     int64
	tokens   map[string]*store.Token // by hex hash
	members  map[int64]*store.Member // by user id: one organisation each
	repos    []*store.Repo
	events   []*store.Event
	runs     []*store.Run
	jobs     []*store.Job
	attempts map[int64][]*store.Attempt
	chunks   map[int64][]store.LogChunk
	keep     map[[2]int64]store.Retention // by org, repo (0: the organisation's)
}

var (
	_ api.Store          = (*Fake)(nil)
	_ api.Actions        = (*Fake)(nil)
	_ api.LogNotifier    = (*Fake)(nil)
	_ api.RetentionStore = (*Fake)(nil)
)

// New returns an empty fake.
func New() *Fake {
	return &Fake{hub: logs.NewHub(), tokens: map[string]*store.Token{}, members: map[int64]*store.Member{},
		attempts: map[int64][]*store.Attempt{}, chunks: map[int64][]store.LogChunk{}, keep: map[[2]int64]store.Retention{}}
}

// Deps wires the fake into api.Deps with a fast poll.
func (f *Fake) Deps(baseURL string) api.Deps {
	return api.Deps{Store: f, Actions: f, Notifier: f, Retention: f,
		BaseURL: baseURL, Version: "test", Poll: 50 * time.Millisecond}
}

// Server starts an httptest server with the real API handler on the fake.
func (f *Fake) Server(t testing.TB) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.Config.Handler = api.New(f.Deps("http://" + srv.Listener.Addr().String()))
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func (f *Fake) id() int64 { f.next++; return f.next }

// AddToken stores a token of org with role as its scope, for a new user
// of the same name whose role in org follows the scope (admin: admin,
// write: developer, read and others: viewer), and returns its secret.
func (f *Fake) AddToken(orgID int64, name string, role store.Role) string {
	member := map[store.Role]store.OrgRole{store.RoleAdmin: store.OrgAdmin, store.RoleWrite: store.OrgDeveloper}[role]
	if member == "" {
		member = store.OrgViewer
	}
	return f.AddUserToken(orgID, name, member, role)
}

// AddUserToken stores a token of scope for a new user called name with
// role member in org, and returns its secret.
func (f *Fake) AddUserToken(orgID int64, name string, member store.OrgRole, scope store.Role) string {
	secret := "cvy_" + rand.Text()
	sum := sha256.Sum256([]byte(secret))
	f.mu.Lock()
	defer f.mu.Unlock()
	user := f.id()
	f.members[user] = &store.Member{OrgID: orgID, UserID: user, Name: name, Role: member}
	f.tokens[hex.EncodeToString(sum[:])] = &store.Token{ID: f.id(), OrgID: orgID, UserID: user, Name: name, Role: scope,
		Kind: store.TokenAPI, Hash: sum[:]}
	return secret
}

// Member implements api.TokenReader.
func (f *Fake) Member(_ context.Context, orgID, userID int64) (*store.Member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m, ok := f.members[userID]; ok && m.OrgID == orgID {
		c := *m
		return &c, nil
	}
	return nil, errs.E("fake", errs.NotFound, "user %d is not a member", userID)
}

// GetUser implements api.TokenReader.
func (f *Fake) GetUser(_ context.Context, id int64) (*store.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m, ok := f.members[id]; ok {
		return &store.User{ID: id, Name: m.Name}, nil
	}
	return nil, errs.E("fake", errs.NotFound, "no user %d", id)
}

// AddRun stores a run of org/repo and its jobs (ids, run and repo fields
// are filled in) and returns the stored run.
func (f *Fake) AddRun(orgID, repoID int64, run store.Run, jobs ...store.Job) *store.Run {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := run
	r.ID, r.OrgID, r.RepoID = f.id(), orgID, repoID
	if r.Created.IsZero() {
		r.Created = time.Now()
	}
	if r.Attempt == 0 {
		r.Attempt = 1
	}
	f.runs = append(f.runs, &r)
	for _, j := range jobs {
		j.ID, j.RunID, j.OrgID, j.RepoID = f.id(), r.ID, orgID, repoID
		f.jobs = append(f.jobs, &j)
	}
	return &r
}

// AppendLog stores a chunk of a job's output and wakes followers.
func (f *Fake) AppendLog(jobID int64, data string) {
	f.mu.Lock()
	seq := int64(len(f.chunks[jobID]) + 1)
	f.chunks[jobID] = append(f.chunks[jobID], store.LogChunk{JobID: jobID, Seq: seq, Data: []byte(data), Time: time.Now()})
	f.mu.Unlock()
	f.hub.Notify(jobID)
}

// SetJobStatus changes a job's status (and the run's, when given) and
// wakes followers.
func (f *Fake) SetJobStatus(jobID int64, status, runStatus string) {
	f.mu.Lock()
	for _, j := range f.jobs {
		if j.ID == jobID {
			j.Status = status
			for _, r := range f.runs {
				if r.ID == j.RunID && runStatus != "" {
					r.Status = runStatus
				}
			}
		}
	}
	f.mu.Unlock()
	f.hub.Notify(jobID)
}

// AddAttempt records an interrupted attempt of a job.
func (f *Fake) AddAttempt(a store.Attempt) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts[a.JobID] = append(f.attempts[a.JobID], &a)
}

// Event returns a stored event by id (nil when there is none).
func (f *Fake) Event(id int64) *store.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.events {
		if e.ID == id {
			c := *e
			return &c
		}
	}
	return nil
}

// Wait implements api.LogNotifier.
func (f *Fake) Wait(jobID int64) <-chan struct{} { return f.hub.Wait(jobID) }

// TokenByHash implements api.TokenReader.
func (f *Fake) TokenByHash(_ context.Context, hash []byte) (*store.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t, ok := f.tokens[hex.EncodeToString(hash)]; ok {
		c := *t
		return &c, nil
	}
	return nil, errs.E("fake", errs.NotFound, "no token")
}

func find[T any](list []*T, ok func(*T) bool) (*T, bool) {
	for _, v := range list {
		if ok(v) {
			c := *v
			return &c, true
		}
	}
	return nil, false
}

// GetRepo implements api.RepoReader.
func (f *Fake) GetRepo(_ context.Context, orgID, id int64) (*store.Repo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := find(f.repos, func(r *store.Repo) bool { return r.OrgID == orgID && r.ID == id }); ok {
		return r, nil
	}
	return nil, errs.E("fake", errs.NotFound, "repo %d", id)
}

// UpdateRepo implements api.Actions.
func (f *Fake) UpdateRepo(_ context.Context, orgID, id int64, in api.RepoUpdate) (*store.Repo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.repos {
		if r.OrgID != orgID || r.ID != id {
			continue
		}
		if in.RunTestDeliveries != nil {
			r.RunTestDeliveries = *in.RunTestDeliveries
		}
		if in.EnvMap != nil {
			r.EnvMap = *in.EnvMap
		}
		if in.SkipForkApproval != nil {
			r.SkipForkApproval = *in.SkipForkApproval
		}
		if in.NetworkPolicy != nil {
			r.NetworkPolicy = *in.NetworkPolicy
		}
		if in.Runtime != nil {
			r.Runtime = *in.Runtime
		}
		c := *r
		return &c, nil
	}
	return nil, errs.E("fake", errs.NotFound, "repo %d", id)
}

// RepoByName implements api.RepoReader.
func (f *Fake) RepoByName(_ context.Context, orgID int64, name string) (*store.Repo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := find(f.repos, func(r *store.Repo) bool { return r.OrgID == orgID && r.Name == name }); ok {
		return r, nil
	}
	return nil, errs.E("fake", errs.NotFound, "repo %s", name)
}

// ListRepos implements api.RepoReader.
func (f *Fake) ListRepos(_ context.Context, orgID int64) ([]*store.Repo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*store.Repo
	for _, r := range f.repos {
		if r.OrgID == orgID {
			c := *r
			out = append(out, &c)
		}
	}
	return out, nil
}

// GetEvent implements api.EventReader.
func (f *Fake) GetEvent(_ context.Context, orgID, id int64) (*store.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := find(f.events, func(e *store.Event) bool { return e.OrgID == orgID && e.ID == id }); ok {
		return e, nil
	}
	return nil, errs.E("fake", errs.NotFound, "event %d", id)
}

// GetRun implements api.RunReader.
func (f *Fake) GetRun(_ context.Context, orgID, id int64) (*store.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.run(orgID, id)
}

func (f *Fake) run(orgID, id int64) (*store.Run, error) {
	if r, ok := find(f.runs, func(r *store.Run) bool { return r.OrgID == orgID && r.ID == id }); ok {
		return r, nil
	}
	return nil, errs.E("fake", errs.NotFound, "run %d", id)
}

// ListRuns implements api.RunReader: newest first.
func (f *Fake) ListRuns(_ context.Context, orgID int64, flt store.RunFilter) ([]*store.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*store.Run
	for _, r := range slices.Backward(f.runs) {
		if r.OrgID != orgID || (flt.RepoID != 0 && r.RepoID != flt.RepoID) ||
			(flt.Status != "" && r.Status != flt.Status) || (flt.Before != 0 && r.ID >= flt.Before) {
			continue
		}
		if flt.Limit > 0 && len(out) == flt.Limit {
			break
		}
		c := *r
		out = append(out, &c)
	}
	return out, nil
}

// LatestRuns implements api.RunReader: the newest run of each
// repository, newest first.
func (f *Fake) LatestRuns(_ context.Context, orgID int64) ([]*store.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[int64]bool{}
	var out []*store.Run
	for _, r := range slices.Backward(f.runs) {
		if r.OrgID == orgID && !seen[r.RepoID] {
			seen[r.RepoID] = true
			c := *r
			out = append(out, &c)
		}
	}
	return out, nil
}

// Jobs implements api.RunReader.
func (f *Fake) Jobs(_ context.Context, orgID, runID int64) ([]*store.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*store.Job
	for _, j := range f.jobs {
		if j.OrgID == orgID && j.RunID == runID {
			c := *j
			out = append(out, &c)
		}
	}
	return out, nil
}

// GetJob implements api.RunReader.
func (f *Fake) GetJob(_ context.Context, orgID, jobID int64) (*store.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if j, ok := find(f.jobs, func(j *store.Job) bool { return j.OrgID == orgID && j.ID == jobID }); ok {
		return j, nil
	}
	return nil, errs.E("fake", errs.NotFound, "job %d", jobID)
}

// Attempts implements api.RunReader.
func (f *Fake) Attempts(_ context.Context, orgID, jobID int64) ([]*store.Attempt, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := find(f.jobs, func(j *store.Job) bool { return j.OrgID == orgID && j.ID == jobID }); !ok {
		return nil, errs.E("fake", errs.NotFound, "job %d", jobID)
	}
	return slices.Clone(f.attempts[jobID]), nil
}

// ReadLog implements api.LogReader.
func (f *Fake) ReadLog(_ context.Context, orgID, jobID, after int64, limit int) ([]store.LogChunk, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := find(f.jobs, func(j *store.Job) bool { return j.OrgID == orgID && j.ID == jobID }); !ok {
		return nil, errs.E("fake", errs.NotFound, "job %d", jobID)
	}
	var out []store.LogChunk
	size := 0
	for _, c := range f.chunks[jobID] {
		if c.Seq > after && len(out) < limit && size < store.LogReadBytes {
			out = append(out, c)
			size += len(c.Data)
		}
	}
	return out, nil
}

// AddRepo implements api.Actions with the real rules that matter to
// callers: known forge, URL given, unique name, generated secret.
func (f *Fake) AddRepo(_ context.Context, orgID int64, in api.RepoInput) (*store.Repo, error) {
	switch {
	case in.URL == "":
		return nil, errs.E("add repo", errs.Invalid, "url is required")
	case in.Forge != "github" && in.Forge != "gitlab" && in.Forge != "gitea":
		return nil, errs.E("add repo", errs.Invalid, "forge %q is not github, gitlab or gitea", in.Forge)
	}
	name := in.Name
	if name == "" {
		parts := strings.Split(strings.TrimSuffix(strings.TrimRight(in.URL, "/"), ".git"), "/")
		if len(parts) < 2 {
			return nil, errs.E("add repo", errs.Invalid, "cannot derive owner/name from %q", in.URL)
		}
		name = parts[len(parts)-2] + "/" + parts[len(parts)-1]
	}
	secret := in.Secret
	if secret == "" {
		secret = rand.Text()
	}
	branch := in.Branch
	if branch == "" {
		branch = "main"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := find(f.repos, func(r *store.Repo) bool { return r.OrgID == orgID && r.Name == name }); ok {
		return nil, errs.E("add repo", errs.Conflict, "repository %s is already registered", name)
	}
	r := &store.Repo{ID: f.id(), OrgID: orgID, Name: name, URL: in.URL, Forge: in.Forge,
		Secret: secret, Branch: branch, AllowSHA1: in.AllowSHA1, RunTestDeliveries: in.RunTestDeliveries, StatusToken: in.StatusToken,
		APIURL: in.APIURL, CloneUser: in.CloneUser, ClonePassword: in.ClonePassword, Created: time.Now()}
	f.repos = append(f.repos, r)
	c := *r
	return &c, nil
}

// Dispatch implements api.Actions: it stores a pending workflow_dispatch
// event. A workflow named "missing.yml" is refused as the real one would.
func (f *Fake) Dispatch(_ context.Context, orgID, repoID int64, in api.DispatchInput) (int64, error) {
	if in.Workflow == "missing.yml" {
		return 0, errs.E("dispatch", errs.Invalid, "workflow %s not found at %s", in.Workflow, in.Ref)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := json.Marshal(in)
	ev := &store.Event{ID: f.id(), OrgID: orgID, RepoID: repoID, Source: "api", Name: "workflow_dispatch",
		Body: body, Received: time.Now(), State: store.EventPending}
	f.events = append(f.events, ev)
	return ev.ID, nil
}

// Cancel implements api.Actions: unfinished jobs and the run end cancelled.
func (f *Fake) Cancel(_ context.Context, orgID, runID int64) (*store.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.runs {
		if r.OrgID != orgID || r.ID != runID {
			continue
		}
		if store.Terminal(r.Status) {
			return nil, errs.E("cancel", errs.Conflict, "run %d already finished (%s)", runID, r.Status)
		}
		for _, j := range f.jobs {
			if j.RunID == runID && !store.Terminal(j.Status) {
				j.Status = store.StatusCancelled
			}
		}
		r.Status = store.StatusCancelled
		c := *r
		return &c, nil
	}
	return nil, errs.E("cancel", errs.NotFound, "run %d", runID)
}

// Rerun implements api.Actions: a copy of the run with attempt+1; with
// failedOnly, successful jobs are kept (ReusedFrom) and the others queued.
func (f *Fake) Rerun(_ context.Context, orgID, runID int64, failedOnly bool) (*store.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old, err := f.run(orgID, runID)
	if err != nil {
		return nil, err
	}
	if !store.Terminal(old.Status) {
		return nil, errs.E("rerun", errs.Conflict, "run %d is still %s", runID, old.Status)
	}
	r := *old
	r.ID, r.Attempt, r.RerunOf, r.Trigger, r.Status = f.id(), old.Attempt+1, old.ID, "rerun", store.StatusQueued
	r.Created, r.Started, r.Finished = time.Now(), time.Time{}, time.Time{}
	f.runs = append(f.runs, &r)
	for _, j := range slices.Clone(f.jobs) {
		if j.RunID != runID {
			continue
		}
		n := *j
		n.ID, n.RunID, n.Status, n.Attempt = f.id(), r.ID, store.StatusQueued, 0
		if failedOnly && j.Status == store.StatusSuccess {
			n.Status, n.ReusedFrom = store.StatusSuccess, j.ID
		}
		f.jobs = append(f.jobs, &n)
	}
	c := r
	return &c, nil
}

// SetRetention implements api.RetentionStore with the store's rules.
func (f *Fake) SetRetention(_ context.Context, orgID, repoID int64, r store.Retention) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range []*int{r.RunsDays, r.LogsDays, r.ArtifactsDays} {
		if d != nil && (*d < 0 || *d > 36500) {
			return errs.E("fake", errs.Invalid, "retention of %d days is not between 0 and 36500", *d)
		}
	}
	if _, ok := find(f.repos, func(x *store.Repo) bool { return x.OrgID == orgID && x.ID == repoID }); repoID != 0 && !ok {
		return errs.E("fake", errs.NotFound, "repo %d", repoID)
	}
	f.keep[[2]int64{orgID, repoID}] = r
	return nil
}

// GetRetention implements api.RetentionStore.
func (f *Fake) GetRetention(_ context.Context, orgID, repoID int64) (store.Retention, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := find(f.repos, func(x *store.Repo) bool { return x.OrgID == orgID && x.ID == repoID }); repoID != 0 && !ok {
		return store.Retention{}, errs.E("fake", errs.NotFound, "repo %d", repoID)
	}
	return f.keep[[2]int64{orgID, repoID}], nil
}
