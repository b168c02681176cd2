package server

import (
	"context"
	"fmt"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/forge"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// maxStatusAttempts bounds how often a commit status is tried before it is
// given up (recorded on the report, never blocking the run).
const maxStatusAttempts = 8

// statusLoop sends commit statuses from the outbox to the forges, with
// exponential backoff per report.
func (s *Server) statusLoop(ctx context.Context) {
	for {
		reps, err := s.store.ClaimStatuses(ctx, time.Now(), 32, time.Minute)
		if err != nil && ctx.Err() == nil {
			s.log.Error("claiming commit statuses", "err", err)
		}
		for _, r := range s.giveUpUnsendable(ctx, reps) {
			s.sendStatus(ctx, r)
		}
		if len(reps) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake.status:
		case <-time.After(s.cfg.Poll):
		}
	}
}

func (s *Server) sendStatus(ctx context.Context, r *store.StatusReport) {
	repo, err := s.store.RepoForHook(ctx, r.RepoID)
	if err != nil {
		_ = s.store.StatusSent(ctx, r.ID, "repository gone: "+err.Error(), time.Now(), true)
		return
	}
	if repo.StatusToken == "" {
		_ = s.store.StatusSent(ctx, r.ID, "no status token configured for the repository", time.Now(), true)
		return
	}
	api := repo.APIURL
	if api == "" {
		api = forge.DefaultAPIURL(repo.Forge, repo.URL)
	}
	target := r.TargetURL
	if target == "" {
		// The run's page in the UI (which signs the visitor in first).
		target = fmt.Sprintf("%s/runs/%d", s.cfg.BaseURL, r.RunID)
	}
	c, err := forge.NewStatusClient(repo.Forge, api, repo.StatusToken, s.http)
	if err != nil {
		_ = s.store.StatusSent(ctx, r.ID, err.Error(), time.Now(), true)
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = c.SetStatus(sctx, repo.Name, r.SHA, forge.Status{State: forge.State(r.State), Context: r.Context, Description: r.Description, TargetURL: target})
	cancel()
	if err == nil {
		s.metrics.statuses.WithLabelValues("sent").Inc()
		_ = s.store.StatusSent(ctx, r.ID, "", time.Now(), false)
		return
	}
	attempt := r.Attempts + 1
	giveUp := attempt >= maxStatusAttempts
	switch errs.KindOf(err) {
	case errs.Invalid, errs.Unauthorized, errs.NotFound, errs.Forbidden:
		giveUp = true // a retry would get the same answer
	}
	backoff := s.cfg.StatusBackoff << min(attempt-1, 10)
	s.metrics.statuses.WithLabelValues("failed").Inc()
	s.log.Warn("commit status failed", "run", r.RunID, "attempt", attempt, "give_up", giveUp, "err", err)
	_ = s.store.StatusSent(ctx, r.ID, err.Error(), time.Now().Add(backoff), giveUp)
}

// giveUpUnsendable marks the reports of repositories without a status
// token done together (one write for the batch, not one each) and returns
// the others.
func (s *Server) giveUpUnsendable(ctx context.Context, reps []*store.StatusReport) []*store.StatusReport {
	var none []int64
	var rest []*store.StatusReport
	tokens := map[int64]bool{}
	for _, r := range reps {
		has, ok := tokens[r.RepoID]
		if !ok {
			repo, err := s.store.RepoForHook(ctx, r.RepoID)
			has = err != nil || repo.StatusToken != "" // a lookup error: sendStatus says why
			tokens[r.RepoID] = has
		}
		if has {
			rest = append(rest, r)
		} else {
			none = append(none, r.ID)
		}
	}
	if err := s.store.GiveUpStatuses(ctx, none, "no status token configured for the repository"); err != nil && ctx.Err() == nil {
		s.log.Error("commit statuses", "err", err)
	}
	return rest
}
