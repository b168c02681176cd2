package sqlstore

import (
	"fmt"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/store"
)

// BenchmarkListRuns: a page of the runs list, unfiltered and by status,
// at 1k and 100k runs of history (one run in 10 failed): with the indexes
// the cost is flat.
//
//	go test -run '^$' -bench ListRuns ./internal/store/sql/
func BenchmarkListRuns(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		s, repo, _ := repoSQLite(b)
		tx, err := s.w.Begin()
		must(b, err)
		stmt, err := tx.Prepare(`INSERT INTO runs (org_id, repo_id, event_id, number, workflow, name, event,
			ref, sha, trigger_source, status, inputs, event_json, workflow_yaml, concurrency_group, cancel_in_progress,
			attempt, rerun_of, created) VALUES ($1, $2, 0, $3, 'ci.yml', 'ci', 'push', 'refs/heads/main', 'abc', 'webhook',
			$4, '{}', $5, $5, '', 0, 1, 0, 1)`)
		must(b, err)
		for i := range n {
			status := store.StatusSuccess
			if i%10 == 0 {
				status = store.StatusFailure
			}
			_, err := stmt.Exec(repo.OrgID, repo.ID, i+1, status, []byte{})
			must(b, err)
		}
		must(b, stmt.Close())
		must(b, tx.Commit())
		for _, f := range []struct {
			name string
			f    store.RunFilter
		}{{"all", store.RunFilter{Limit: 50}}, {"status", store.RunFilter{Status: store.StatusFailure, Limit: 50}}} {
			b.Run(fmt.Sprintf("%s/runs=%d", f.name, n), func(b *testing.B) {
				for b.Loop() {
					rs, err := s.ListRuns(b.Context(), repo.OrgID, f.f)
					if err != nil || len(rs) != 50 {
						b.Fatalf("%d runs, %v", len(rs), err)
					}
				}
			})
		}
	}
}

// BenchmarkLatestRuns: the latest run of each of 100 repositories (the
// UI's home page) at 10 and 1,000 runs of history each: one LatestRuns
// query against the 100 one-run ListRuns it replaced.
//
//	go test -run '^$' -bench LatestRuns ./internal/store/sql/
func BenchmarkLatestRuns(b *testing.B) {
	const repos = 100
	for _, per := range []int{10, 1_000} {
		s, first, _ := repoSQLite(b)
		ids := []int64{first.ID}
		for i := 1; i < repos; i++ {
			r := &store.Repo{OrgID: first.OrgID, Name: fmt.Sprintf("acme/r%d", i)}
			must(b, s.CreateRepo(b.Context(), r))
			ids = append(ids, r.ID)
		}
		tx, err := s.w.Begin()
		must(b, err)
		stmt, err := tx.Prepare(`INSERT INTO runs (org_id, repo_id, event_id, number, workflow, name, event,
			ref, sha, trigger_source, status, inputs, event_json, workflow_yaml, concurrency_group, cancel_in_progress,
			attempt, rerun_of, created) VALUES ($1, $2, 0, $3, 'ci.yml', 'ci', 'push', 'refs/heads/main', 'abc', 'webhook',
			'success', '{}', $4, $4, '', 0, 1, 0, 1)`)
		must(b, err)
		for i := range per { // interleaved, as pushes to many repositories come
			for _, id := range ids {
				_, err := stmt.Exec(first.OrgID, id, i+1, []byte{})
				must(b, err)
			}
		}
		must(b, stmt.Close())
		must(b, tx.Commit())
		b.Run(fmt.Sprintf("LatestRuns/runs=%d", per*repos), func(b *testing.B) {
			for b.Loop() {
				rs, err := s.LatestRuns(b.Context(), first.OrgID)
				if err != nil || len(rs) != repos {
					b.Fatalf("%d runs, %v", len(rs), err)
				}
			}
		})
		b.Run(fmt.Sprintf("ListRunsEach/runs=%d", per*repos), func(b *testing.B) {
			for b.Loop() {
				for _, id := range ids {
					rs, err := s.ListRuns(b.Context(), first.OrgID, store.RunFilter{RepoID: id, Limit: 1})
					if err != nil || len(rs) != 1 {
						b.Fatalf("%d runs, %v", len(rs), err)
					}
				}
			}
		})
	}
}
