package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/conveyor-ci/conveyor/internal/artifact"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// Artifact is an artifact of a run (upload-artifact). Size is the
// compressed size of its content (tar.gz).
type Artifact artifact.Info

// ArtifactList is the answer of GET /api/runs/{id}/artifacts.
type ArtifactList struct {
	Artifacts []Artifact `json:"artifacts"`
}

// ArtifactOf is the API view of a stored artifact.
func ArtifactOf(a *store.Artifact) Artifact {
	return Artifact{ID: a.ID, Name: a.Name, Size: a.Size, Job: a.Job, RetentionDays: a.RetentionDays, Created: a.Created}
}

// JobFencer is an optional ability of an AgentProtocol: the job a fenced
// call is about (Conflict unless it is leased to a under token now). The
// artifact routes of agents need it.
type JobFencer interface {
	FenceJob(ctx context.Context, a *store.Agent, jobID, token int64) (*store.Job, error)
}

// DefaultMaxArtifactSize is the cap of one upload when Deps gives none.
const DefaultMaxArtifactSize = 256 << 20

func (a *server) maxArtifact() int64 {
	if a.MaxArtifactSize > 0 {
		return a.MaxArtifactSize
	}
	return DefaultMaxArtifactSize
}

func (a *server) artifactsReady(w http.ResponseWriter) bool {
	if a.Artifacts == nil {
		writeErrorMsg(w, errs.Unavailable, "this server does not store artifacts")
		return false
	}
	return true
}

func (a *server) listArtifacts(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	if !a.artifactsReady(w) {
		return
	}
	id, err := pathID(r, "id")
	if err != nil {
		a.fail(w, "", err)
		return
	}
	a.writeArtifactList(w, r, tok.OrgID, id)
}

func (a *server) writeArtifactList(w http.ResponseWriter, r *http.Request, orgID, runID int64) {
	list, err := a.Artifacts.ListArtifacts(r.Context(), orgID, runID)
	if err != nil {
		a.fail(w, fmt.Sprintf("run %d", runID), err)
		return
	}
	out := ArtifactList{Artifacts: []Artifact{}}
	for _, x := range list {
		out.Artifacts = append(out.Artifacts, ArtifactOf(x))
	}
	writeJSON(w, http.StatusOK, out)
}

// downloadArtifact answers an artifact's content as application/gzip
// (a .tar.gz of its files).
func (a *server) downloadArtifact(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	if !a.artifactsReady(w) {
		return
	}
	id, err := pathID(r, "id")
	if err != nil {
		a.fail(w, "", err)
		return
	}
	a.sendArtifact(w, r, tok.OrgID, id)
}

func (a *server) sendArtifact(w http.ResponseWriter, r *http.Request, orgID, runID int64) {
	name := r.PathValue("name")
	art, rc, err := a.Artifacts.OpenArtifact(r.Context(), orgID, runID, name)
	if err != nil {
		a.fail(w, fmt.Sprintf("artifact %q of run %d", name, runID), err)
		return
	}
	defer rc.Close()
	h := w.Header()
	h.Set("Content-Type", "application/gzip")
	h.Set("Content-Length", strconv.FormatInt(art.Size, 10))
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", art.Name+".tar.gz"))
	h.Set("X-Content-Type-Options", "nosniff")
	if _, err := io.Copy(w, rc); err != nil {
		a.Log.Warn("sending an artifact", "run", runID, "artifact", name, "err", err)
		panic(http.ErrAbortHandler) // cut the stream: a truncated artifact must not pass for whole
	}
}

// agentArtifactJob fences an agent's artifact call and returns its job.
func (a *server) agentArtifactJob(w http.ResponseWriter, r *http.Request) (*store.Job, bool) {
	if !a.artifactsReady(w) {
		return nil, false
	}
	f, ok := a.Agents.(JobFencer)
	if !ok {
		writeErrorMsg(w, errs.Unavailable, "this server does not store artifacts of agents")
		return nil, false
	}
	id, token, err := fence(r)
	if err != nil {
		a.fail(w, "", err)
		return nil, false
	}
	j, err := f.FenceJob(r.Context(), agentOf(r), id, token)
	if err != nil {
		a.fail(w, fmt.Sprintf("job %d", id), err)
		return nil, false
	}
	return j, true
}

// agentPutArtifact stores the raw body (tar.gz) as an artifact of the
// job's run; ?overwrite=true replaces one of the same name.
func (a *server) agentPutArtifact(w http.ResponseWriter, r *http.Request, _ *store.Token) {
	j, ok := a.agentArtifactJob(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	if err := artifact.ValidName(name); err != nil {
		a.fail(w, "", err)
		return
	}
	q := r.URL.Query()
	overwrite := q.Get("overwrite") == "true"
	days := 0
	if s := q.Get("retention_days"); s != "" {
		var err error
		if days, err = strconv.Atoi(s); err != nil || days < 0 {
			a.fail(w, "", errs.E("", errs.Invalid, "retention_days %q is not a number of days", s))
			return
		}
	}
	max := a.maxArtifact()
	if r.ContentLength > max {
		a.fail(w, "", errs.E("", errs.TooLarge, "artifact %q: %d bytes is over the server's limit of %s (--max-artifact-size)",
			name, r.ContentLength, artifact.FormatSize(max)))
		return
	}
	job := r.Header.Get(ArtifactJobHeader)
	if job == "" || len(job) > 255 {
		job = j.Name
	}
	art := &store.Artifact{OrgID: j.OrgID, RunID: j.RunID, Name: name, Job: job, RetentionDays: days}
	if err := a.Artifacts.PutArtifact(r.Context(), art, overwrite, artifact.LimitReader(r.Body, max)); err != nil {
		if errs.Is(err, errs.TooLarge) {
			err = errs.E("", errs.TooLarge, "artifact %q is over the server's limit of %s (--max-artifact-size)", name, artifact.FormatSize(max))
		}
		a.fail(w, "", err)
		return
	}
	writeJSON(w, http.StatusCreated, ArtifactOf(art))
}

// ArtifactJobHeader names the job (its display name, with matrix values)
// that uploads an artifact from an agent; the job's name when absent.
const ArtifactJobHeader = "Conveyor-Artifact-Job"

func (a *server) agentListArtifacts(w http.ResponseWriter, r *http.Request, _ *store.Token) {
	if j, ok := a.agentArtifactJob(w, r); ok {
		a.writeArtifactList(w, r, j.OrgID, j.RunID)
	}
}

func (a *server) agentGetArtifact(w http.ResponseWriter, r *http.Request, _ *store.Token) {
	if j, ok := a.agentArtifactJob(w, r); ok {
		a.sendArtifact(w, r, j.OrgID, j.RunID)
	}
}
