package agent

import (
	"context"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/artifact"
	"github.com/conveyor-ci/conveyor/internal/client"
)

// jobArtifacts is the artifact store of a leased job's run: the server's,
// through the agent API with the job's fencing token. A refused token
// fails the step (409); the next heartbeat then finds the lease lost and
// stops the job. (A 409 also means "the name exists", so it cannot stop
// the job by itself.)
type jobArtifacts struct {
	cl     *client.Client
	job    client.Job
	server string
	runID  int64
}

var (
	_ artifact.Store  = (*jobArtifacts)(nil)
	_ artifact.Linker = (*jobArtifacts)(nil)
)

func (s *jobArtifacts) Put(ctx context.Context, u artifact.Upload, r io.Reader) (*artifact.Info, error) {
	a, err := s.cl.PutArtifact(ctx, s.job, u, r)
	if err != nil {
		return nil, err
	}
	info := artifact.Info(*a)
	return &info, nil
}

func (s *jobArtifacts) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	rc, err := s.cl.JobArtifact(ctx, s.job, name)
	return rc, err
}

func (s *jobArtifacts) List(ctx context.Context) ([]artifact.Info, error) {
	list, err := s.cl.JobArtifacts(ctx, s.job)
	if err != nil {
		return nil, err
	}
	out := make([]artifact.Info, len(list))
	for i, a := range list {
		out[i] = artifact.Info(a)
	}
	return out, nil
}

func (s *jobArtifacts) URL(name string) string {
	return strings.TrimRight(s.server, "/") + "/api/runs/" + strconv.FormatInt(s.runID, 10) + "/artifacts/" + url.PathEscape(name)
}
