package server

import (
	"context"
	"io"
	"net/url"
	"strconv"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/artifact"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// runArtifacts is the artifact store of one run for the jobs this replica
// runs: the database, as the API and agents see it.
type runArtifacts struct {
	db           store.Artifacts
	orgID, runID int64
	max          int64
	baseURL      string
}

var (
	_ artifact.Store  = (*runArtifacts)(nil)
	_ artifact.Linker = (*runArtifacts)(nil)
	_ api.JobFencer   = (*agentService)(nil)
)

func (s *Server) runArtifacts(run *store.Run) *runArtifacts {
	return &runArtifacts{db: s.store, orgID: run.OrgID, runID: run.ID, max: s.cfg.MaxArtifactSize, baseURL: s.cfg.BaseURL}
}

func (r *runArtifacts) Put(ctx context.Context, u artifact.Upload, body io.Reader) (*artifact.Info, error) {
	if err := artifact.ValidName(u.Name); err != nil {
		return nil, err
	}
	a := &store.Artifact{OrgID: r.orgID, RunID: r.runID, Name: u.Name, Job: u.Job, RetentionDays: u.RetentionDays}
	if err := r.db.PutArtifact(ctx, a, u.Overwrite, artifact.LimitReader(body, r.max)); err != nil {
		return nil, err
	}
	info := artifact.Info(api.ArtifactOf(a))
	return &info, nil
}

func (r *runArtifacts) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	_, rc, err := r.db.OpenArtifact(ctx, r.orgID, r.runID, name)
	return rc, err
}

func (r *runArtifacts) List(ctx context.Context) ([]artifact.Info, error) {
	list, err := r.db.ListArtifacts(ctx, r.orgID, r.runID)
	if err != nil {
		return nil, err
	}
	out := make([]artifact.Info, len(list))
	for i, a := range list {
		out[i] = artifact.Info(api.ArtifactOf(a))
	}
	return out, nil
}

// URL is where people download the artifact through the API.
func (r *runArtifacts) URL(name string) string {
	return r.baseURL + "/api/runs/" + strconv.FormatInt(r.runID, 10) + "/artifacts/" + url.PathEscape(name)
}

// FenceJob is the job of a fenced agent call (api.JobFencer): the
// artifact routes store under its run.
func (g *agentService) FenceJob(ctx context.Context, a *store.Agent, jobID, token int64) (*store.Job, error) {
	return g.fence(ctx, a, jobID, token)
}
