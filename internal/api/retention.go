package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// RetentionStore keeps retention settings (see store.Retainer).
type RetentionStore interface {
	SetRetention(ctx context.Context, orgID, repoID int64, r store.Retention) error
	GetRetention(ctx context.Context, orgID, repoID int64) (store.Retention, error)
}

// retentionRoutes are the retention settings of the caller's organisation
// and of its repositories.
func retentionRoutes() []route {
	return []route{
		{"GET", "/api/retention", viewer, 200, nil, store.Retention{}, (*server).getRetention},
		{"PUT", "/api/retention", orgAdmin, 200, store.Retention{}, store.Retention{}, (*server).setRetention},
		{"GET", "/api/repos/{id}/retention", viewer, 200, nil, store.Retention{}, (*server).getRetention},
		{"PUT", "/api/repos/{id}/retention", orgAdmin, 200, store.Retention{}, store.Retention{}, (*server).setRetention},
	}
}

// retentionTarget is the repository of the path (0: the organisation).
func (a *server) retentionTarget(w http.ResponseWriter, r *http.Request) (int64, bool) {
	if a.Retention == nil {
		writeErrorMsg(w, errs.Unavailable, "this server does not keep retention settings")
		return 0, false
	}
	if r.PathValue("id") == "" {
		return 0, true
	}
	id, err := pathID(r, "id")
	if err != nil {
		a.fail(w, "", err)
		return 0, false
	}
	return id, true
}

func (a *server) getRetention(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	repo, ok := a.retentionTarget(w, r)
	if !ok {
		return
	}
	ret, err := a.Retention.GetRetention(r.Context(), tok.OrgID, repo)
	if err != nil {
		a.fail(w, fmt.Sprintf("repo %d", repo), err)
		return
	}
	writeJSON(w, http.StatusOK, ret)
}

func (a *server) setRetention(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	repo, ok := a.retentionTarget(w, r)
	if !ok {
		return
	}
	var in store.Retention
	if err := decode(r, &in, false); err != nil {
		a.fail(w, "", err)
		return
	}
	target := "organisation"
	if repo != 0 {
		target = fmt.Sprintf("repo %d", repo)
	}
	detail := fmt.Sprintf("runs %s, logs %s, artifacts %s, caches %s days",
		daysText(in.RunsDays), daysText(in.LogsDays), daysText(in.ArtifactsDays), daysText(in.CachesDays))
	err := a.audited(r, tok.OrgID, "retention.set", fixed(target, detail), func(ctx context.Context) error {
		return a.Retention.SetRetention(ctx, tok.OrgID, repo, in)
	})
	if err != nil {
		a.fail(w, fmt.Sprintf("repo %d", repo), err)
		return
	}
	writeJSON(w, http.StatusOK, in)
}

func daysText(d *int) string {
	if d == nil {
		return "inherited"
	}
	return fmt.Sprint(*d)
}
