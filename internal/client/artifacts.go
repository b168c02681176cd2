package client

import (
	"context"
	"encoding/json"
	"io"
	"net/url"
	"strconv"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/artifact"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// RunArtifacts lists the artifacts of a run.
func (c *Client) RunArtifacts(ctx context.Context, runID int64) ([]api.Artifact, error) {
	var out api.ArtifactList
	return out.Artifacts, c.call(ctx, "GET", "/api/runs/"+itoa(runID)+"/artifacts", nil, &out)
}

// DownloadArtifact returns an artifact's content (tar.gz); close it.
func (c *Client) DownloadArtifact(ctx context.Context, runID int64, name string) (io.ReadCloser, error) {
	resp, err := c.send(ctx, "GET", "/api/runs/"+itoa(runID)+"/artifacts/"+url.PathEscape(name), nil, "application/gzip", nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// PutArtifact uploads an artifact of the job's run (agent protocol).
func (c *Client) PutArtifact(ctx context.Context, j Job, u artifact.Upload, body io.Reader) (*api.Artifact, error) {
	q := url.Values{}
	if u.Overwrite {
		q.Set("overwrite", "true")
	}
	if u.RetentionDays > 0 {
		q.Set("retention_days", strconv.Itoa(u.RetentionDays))
	}
	p := j.path("artifacts/" + url.PathEscape(u.Name))
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	h := j.header()
	h.Set("Content-Type", "application/gzip")
	if u.Job != "" {
		h.Set(api.ArtifactJobHeader, u.Job)
	}
	resp, err := c.send(ctx, "PUT", p, body, "application/json", h)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out api.Artifact
	if err := decodeJSON(resp.Body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// JobArtifacts lists the artifacts of the job's run (agent protocol).
func (c *Client) JobArtifacts(ctx context.Context, j Job) ([]api.Artifact, error) {
	var out api.ArtifactList
	return out.Artifacts, c.callHeader(ctx, "GET", j.path("artifacts"), nil, &out, j.header())
}

// JobArtifact returns the content of an artifact of the job's run (agent
// protocol); close it.
func (c *Client) JobArtifact(ctx context.Context, j Job, name string) (io.ReadCloser, error) {
	resp, err := c.send(ctx, "GET", j.path("artifacts/"+url.PathEscape(name)), nil, "application/gzip", j.header())
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

func decodeJSON(r io.Reader, v any) error {
	if err := json.NewDecoder(r).Decode(v); err != nil {
		return errs.E("", errs.Unavailable, "reading the answer: %v", err)
	}
	return nil
}
