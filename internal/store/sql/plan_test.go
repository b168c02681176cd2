package sqlstore

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/store"
)

// TestQueryPlans pins the indexes of the hot queries on SQLite, whose
// planner has no statistics to go by: a full scan here grows with history.
func TestQueryPlans(t *testing.T) {
	s, _ := openTestSQLite(t, Options{})
	lease, _ := s.leaseQuery(store.LeaseRequest{Backends: []string{""}, RepoLimit: 2}, []int64{7}, 3)
	agentLease, _ := s.leaseQuery(store.LeaseRequest{OrgID: 1, Labels: []string{"linux"}}, nil)
	byStatus, _ := listRunsQuery(1, store.RunFilter{Status: store.StatusFailure, Before: 100})
	runsPage, _ := listRunsQuery(1, store.RunFilter{Before: 100})
	cases := []struct {
		name, query string
		want        []string // each must appear in the plan
	}{
		{"Accept by delivery", qEventsByDelivery(3), []string{"INDEX events_delivery (repo_id=? AND delivery_id=?)"}},
		{"Accept by body", qEventsByBody(3), []string{"INDEX events_body (repo_id=? AND body_hash=? AND received>?)"}},
		{"ClaimEvents", s.claimEventsQuery(), []string{"INDEX events_open"}},
		{"Lease", lease, []string{"SCAN j USING INDEX jobs_queue", "INDEX jobs_repo (repo_id=? AND status=?)"}},
		{"Lease by org and labels", agentLease, []string{"SEARCH j USING INDEX jobs_queue_org (org_id=?)"}},
		{"Expire", qExpired, []string{"INDEX jobs_lease"}},
		{"quota wait", qQuotaWait, []string{"INDEX jobs_run (run_id=?)", "INDEX jobs_org_running (org_id=?)"}},
		{"RunningJobs", qRunningJobs, []string{"INDEX jobs_owner (lease_owner=?)"}},
		{"ClaimStatuses", s.claimStatusesQuery(), []string{"INDEX statuses_due"}},
		{"concurrency group", qBlockedRun, []string{"INDEX runs_group"}},
		{"run number", qNextRunNumber, []string{"(repo_id=?)"}},
		{"log seq", qAppendLog, []string{"(job_id=?)"}},
		{"metrics: live jobs", qLiveJobs, []string{"INDEX jobs_live"}},
		{"runs by status", byStatus, []string{"INDEX runs_org_status (org_id=? AND status=? AND id<?)"}},
		{"runs page", runsPage, []string{"INDEX runs_org (org_id=? AND id<?)"}},
	}
	for _, c := range cases {
		args := make([]any, maxParam(c.query))
		for i := range args {
			args[i] = int64(i + 1)
		}
		rows, err := s.r.Query("EXPLAIN QUERY PLAN "+c.query, args...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			must(t, rows.Scan(&id, &parent, &unused, &detail))
			plan = append(plan, detail)
		}
		rows.Close()
		all := strings.Join(plan, "\n")
		for _, w := range c.want {
			if !strings.Contains(all, w) {
				t.Errorf("%s: plan lacks %q:\n%s", c.name, w, all)
			}
		}
	}
}

// maxParam is the highest $N in query.
func maxParam(query string) int {
	n := 0
	for _, m := range regexp.MustCompile(`\$(\d+)`).FindAllStringSubmatch(query, -1) {
		v, _ := strconv.Atoi(m[1])
		n = max(n, v)
	}
	return n
}

// TestLiveJobsIgnoreHistory: with 100,000 finished jobs in the database,
// the metrics' count still reads the live jobs' index (after ANALYZE, so
// the planner knows the history), and counts only them.
func TestLiveJobsIgnoreHistory(t *testing.T) {
	s, repo, _ := repoSQLite(t)
	ctx := t.Context()
	var runs []store.NewRun
	for i := range 100 {
		jobs := make([]*store.Job, 1000)
		for j := range jobs {
			jobs[j] = &store.Job{Key: fmt.Sprintf("j%d", j), Name: "j"}
		}
		runs = append(runs, store.NewRun{Run: &store.Run{RepoID: repo.ID, OrgID: repo.OrgID, Workflow: fmt.Sprintf("w%d.yml", i),
			Name: "w", Event: "push", Ref: "refs/heads/main", SHA: "abc", Trigger: "webhook"}, Jobs: jobs})
	}
	_, err := s.CreateRuns(ctx, runs)
	must(t, err)
	_, err = s.w.ExecContext(ctx, `UPDATE jobs SET status = 'success' WHERE id > 10`)
	must(t, err)
	_, err = s.w.ExecContext(ctx, `ANALYZE`)
	must(t, err)
	var plan []string
	rows, err := s.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+qLiveJobs)
	must(t, err)
	for rows.Next() {
		var id, parent, unused int
		var detail string
		must(t, rows.Scan(&id, &parent, &unused, &detail))
		plan = append(plan, detail)
	}
	rows.Close()
	if all := strings.Join(plan, "\n"); !strings.Contains(all, "INDEX jobs_live") {
		t.Errorf("the live jobs' count does not read jobs_live:\n%s", all)
	}
	got, err := s.Stats(ctx)
	must(t, err)
	if got[store.StatusQueued] != 10 || got[store.StatusSuccess] != 0 {
		t.Errorf("Stats = %v, want 10 queued and nothing else", got)
	}
}
