package server

import (
	"context"
	"encoding/json"

	"github.com/conveyor-ci/conveyor/internal/jobrun"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// jobValues are the secrets and variables a leased job gets: its
// repository's and organisation's, and those of its environment:, the
// narrowest winning. A run of a pull request from a fork gets no secrets
// (its code is the fork author's); pull_request_target runs the base
// repository's workflow and gets them, as on GitHub.
func (s *Server) jobValues(ctx context.Context, run *store.Run, job *store.Job) (secrets, vars map[string]string, err error) {
	env := jobrun.Environment(run.WorkflowYAML, run.Workflow, job.Key)
	secrets, vars, err = s.store.JobValues(ctx, run.OrgID, run.RepoID, env)
	if err != nil {
		return nil, nil, err
	}
	if fromFork(run) {
		secrets = nil
	}
	return secrets, vars, nil
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
	return re.Event.PullRequest != nil && re.Event.PullRequest.Fork
}
