package server

import (
	"encoding/json"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/cache"
)

// agentCacheTTL bounds an agent job's cache token: the server does not
// see the job's end the way it sees its own jobs'.
const agentCacheTTL = 24 * time.Hour

// agentCacheToken issues the cache token of a job run by an agent, scoped
// to the run's repository and ref (reading the default branch's caches
// too); "" when the server serves no cache.
func (s *Server) agentCacheToken(orgID int64, run api.AgentRun) string {
	if s.kit.cacheTokens == nil {
		return ""
	}
	scope := cache.Scope{Repo: cache.TenantRepo(orgID, run.Repository), Ref: run.Ref}
	var ev struct {
		Payload struct {
			Repository struct {
				DefaultBranch string `json:"default_branch"`
			} `json:"repository"`
		} `json:"payload"`
	}
	if json.Unmarshal(run.EventJSON, &ev) == nil && ev.Payload.Repository.DefaultBranch != "" {
		scope.DefaultRef = "refs/heads/" + ev.Payload.Repository.DefaultBranch
	}
	tok, _ := s.kit.cacheTokens.IssueUntil(scope, time.Now().Add(agentCacheTTL))
	return tok
}
