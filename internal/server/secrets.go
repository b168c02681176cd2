package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/conveyor-ci/conveyor/internal/event"
	"github.com/conveyor-ci/conveyor/internal/jobrun"
	"github.com/conveyor-ci/conveyor/internal/jobspec"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// jobTokenTTL bounds a job token's life; it ends earlier, with its job.
const jobTokenTTL = 24 * time.Hour

// jobValues are the secrets and variables a leased job gets: its
// repository's and organisation's, and those of its environment:, the
// narrowest winning, plus its own GITHUB_TOKEN. A run of a pull request
// from a fork gets no other secret (its code is the fork author's);
// pull_request_target runs the base repository's workflow and gets them,
// as on GitHub.
func (s *Server) jobValues(ctx context.Context, run *store.Run, job *store.Job, spec *jobspec.Job) (secrets, vars map[string]string, err error) {
	st := jobrun.SettingsOf(spec)
	if job.Deploy != nil { // evaluated when planned (expressions too)
		st.Environment = job.Deploy.Environment
	}
	secrets, vars, err = s.store.JobValues(ctx, run.OrgID, run.RepoID, st.Environment)
	if err != nil {
		return nil, nil, err
	}
	if vars == nil {
		vars = map[string]string{}
	}
	if err := s.mappedVar(ctx, run, vars); err != nil {
		return nil, nil, err
	}
	if fromFork(run) {
		secrets = map[string]string{}
	}
	tok, err := s.newJobToken(ctx, run, job, st.ReadRun)
	if err != nil {
		return nil, nil, err
	}
	// No stored secret is named GITHUB_TOKEN: the GITHUB_ prefix is refused.
	secrets["GITHUB_TOKEN"] = tok
	return secrets, vars, nil
}

// newJobToken makes the job's GITHUB_TOKEN: 24 random bytes, stored as
// their SHA-256, valid while the job runs under this lease.
func (s *Server) newJobToken(ctx context.Context, run *store.Run, job *store.Job, readRun bool) (string, error) {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	secret := "cvj_" + hex.EncodeToString(b)
	sum := sha256.Sum256([]byte(secret))
	err := s.store.CreateJobToken(ctx, &store.JobToken{Hash: sum[:], OrgID: run.OrgID, RunID: run.ID, JobID: job.ID,
		Lease: job.LeaseToken, ReadRun: readRun, Expires: time.Now().Add(jobTokenTTL)})
	return secret, err
}

// revokeJobTokens ends a job's tokens (they no longer work once the job
// is not running under their lease anyway; this removes the rows).
func (s *Server) revokeJobTokens(ctx context.Context, jobID int64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.store.RevokeJobTokens(ctx, jobID); err != nil {
		s.log.Warn("revoking a job's tokens", "job", jobID, "err", err)
	}
}

// fromFork reports whether run is of a pull request whose head is in
// another repository, triggered by anything but pull_request_target. A
// run whose event cannot be read counts as one (no secrets).
func fromFork(run *store.Run) bool {
	if run.Event == "pull_request_target" {
		return false
	}
	var re jobrun.RunEvent
	if err := json.Unmarshal(run.EventJSON, &re); err != nil || re.Event == nil {
		return true
	}
	return eventFromFork(re.Event, run.Event)
}

// eventFromFork is fromFork of a run of event name, read from its event
// model (what the processor has at hand before the run's event is stored).
func eventFromFork(ev *event.Event, name string) bool {
	return name != "pull_request_target" && ev.PullRequest != nil && ev.PullRequest.Fork
}
