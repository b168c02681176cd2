package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// QuotaStore is what the quota and usage routes use; a store.Store is one.
type QuotaStore interface {
	store.Quotas
	OrgByName(ctx context.Context, name string) (*store.Org, error)
	GetOrg(ctx context.Context, id int64) (*store.Org, error)
}

var _ QuotaStore = store.Store(nil)

// Quota is an organisation's limits; 0 is no limit.
type Quota struct {
	Org string `json:"org"`
	// MaxConcurrentJobs caps the organisation's running jobs; extra jobs
	// wait, shown as "queued: quota".
	MaxConcurrentJobs int `json:"max_concurrent_jobs"`
	// MaxTimeoutMinutes caps every job's timeout-minutes.
	MaxTimeoutMinutes int `json:"max_timeout_minutes"`
	// MonthlyBuildSeconds: once the month's build seconds reach it, new
	// runs are refused until the month (UTC) ends.
	MonthlyBuildSeconds int64      `json:"monthly_build_seconds"`
	Updated             *time.Time `json:"updated,omitempty"`
}

// QuotaInput changes an organisation's limits (server admin); a field left
// out keeps its value, 0 removes the limit.
type QuotaInput struct {
	MaxConcurrentJobs   *int   `json:"max_concurrent_jobs,omitempty"`
	MaxTimeoutMinutes   *int   `json:"max_timeout_minutes,omitempty"`
	MonthlyBuildSeconds *int64 `json:"monthly_build_seconds,omitempty"`
}

// Usage is an organisation's metered build time in one month (UTC): each
// completed job's sandbox time, from sandbox start to teardown.
type Usage struct {
	Org          string  `json:"org"`
	Month        string  `json:"month"`
	BuildSeconds float64 `json:"build_seconds"`
	Jobs         int64   `json:"jobs"`
	// MonthlyBuildSeconds is the organisation's limit (0: none).
	MonthlyBuildSeconds int64 `json:"monthly_build_seconds"`
}

func quotaRoutes() []route {
	return []route{
		{"GET", "/api/orgs/{org}/quota", viewer, 200, nil, Quota{}, (*server).getQuota},
		{"PUT", "/api/orgs/{org}/quota", serverAdm, 200, QuotaInput{}, Quota{}, (*server).setQuota},
		{"GET", "/api/usage", viewer, 200, nil, Usage{}, (*server).getUsage},
	}
}

// quotaOrg is the organisation a quota or usage request names: the token's
// own, or any for a server admin. Another organisation is not found.
func (a *server) quotaOrg(w http.ResponseWriter, r *http.Request, tok *store.Token, name string) (QuotaStore, *store.Org, bool) {
	if a.Quotas == nil {
		writeErrorMsg(w, errs.Unavailable, "this server does not keep quotas")
		return nil, nil, false
	}
	var o *store.Org
	var err error
	if name == "" {
		o, err = a.Quotas.GetOrg(r.Context(), tok.OrgID)
	} else {
		o, err = a.Quotas.OrgByName(r.Context(), name)
	}
	if err == nil && o.ID != tok.OrgID && !callerOf(r).serverAdmin {
		err = errs.E("", errs.NotFound, "not found")
	}
	if err != nil {
		a.fail(w, "organisation "+name, err)
		return nil, nil, false
	}
	return a.Quotas, o, true
}

func toQuota(o *store.Org, q *store.Quota) Quota {
	return Quota{Org: o.Name, MaxConcurrentJobs: q.MaxConcurrentJobs, MaxTimeoutMinutes: q.MaxTimeoutMinutes,
		MonthlyBuildSeconds: q.MonthlyBuildSeconds, Updated: optTime(q.Updated)}
}

func (a *server) getQuota(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	st, o, ok := a.quotaOrg(w, r, tok, r.PathValue("org"))
	if !ok {
		return
	}
	q, err := st.Quota(r.Context(), o.ID)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	writeJSON(w, http.StatusOK, toQuota(o, q))
}

func (a *server) setQuota(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	st, o, ok := a.quotaOrg(w, r, tok, r.PathValue("org"))
	if !ok {
		return
	}
	var in QuotaInput
	if err := decode(r, &in, false); err != nil {
		a.fail(w, "", err)
		return
	}
	q, err := st.Quota(r.Context(), o.ID)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	before := *q
	if in.MaxConcurrentJobs != nil {
		q.MaxConcurrentJobs = *in.MaxConcurrentJobs
	}
	if in.MaxTimeoutMinutes != nil {
		q.MaxTimeoutMinutes = *in.MaxTimeoutMinutes
	}
	if in.MonthlyBuildSeconds != nil {
		q.MonthlyBuildSeconds = *in.MonthlyBuildSeconds
	}
	err = a.audited(r, o.ID, "quota.set", fixed("org "+o.Name, fmt.Sprintf("%s (was %s)", quotaText(q), quotaText(&before))),
		func(ctx context.Context) error { return st.SetQuota(ctx, q) })
	if err != nil {
		a.fail(w, "", err)
		return
	}
	writeJSON(w, http.StatusOK, toQuota(o, q))
}

// quotaText is a quota for the audit log.
func quotaText(q *store.Quota) string {
	return fmt.Sprintf("max_concurrent_jobs %d, max_timeout_minutes %d, monthly_build_seconds %d",
		q.MaxConcurrentJobs, q.MaxTimeoutMinutes, q.MonthlyBuildSeconds)
}

func (a *server) getUsage(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	st, o, ok := a.quotaOrg(w, r, tok, r.URL.Query().Get("org"))
	if !ok {
		return
	}
	month := r.URL.Query().Get("month")
	if month == "" {
		month = store.Month(time.Now())
	}
	u, err := st.Usage(r.Context(), o.ID, month)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	q, err := st.Quota(r.Context(), o.ID)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	writeJSON(w, http.StatusOK, Usage{Org: o.Name, Month: u.Month, BuildSeconds: u.Build.Seconds(), Jobs: u.Jobs,
		MonthlyBuildSeconds: q.MonthlyBuildSeconds})
}
